"""Read buffers shared by every copy on the station, handed out first come, first served.

One budget serves all docked recorders: 24 recorders copying at once must not each
allocate their own read-ahead, and one fast recorder must not starve a slow one. A
copy takes one buffer per chunk in flight and gives it back as soon as the chunk is
hashed and written, so every waiting copy gets its turn at the next release.
"""

from __future__ import annotations

import mmap
import threading


class BufferBudget:
    """At most ``total_bytes // read_size`` buffers of ``read_size`` bytes, shared fairly.

    Buffers are anonymous page-aligned mappings, allocated on first use and reused
    afterwards, so an idle station does not hold the whole budget in memory.
    """

    def __init__(self, total_bytes: int, read_size: int) -> None:
        if read_size < 1:
            raise ValueError(f"read_size must be at least 1 byte, got {read_size}")
        if total_bytes < read_size:
            raise ValueError(
                f"a buffer budget of {total_bytes} bytes cannot hold one read of {read_size} "
                "bytes; raise hashing.buffer_budget_mib or lower hashing.read_size_kib"
            )
        self.read_size = read_size
        self.capacity = total_bytes // read_size
        self._free: list[mmap.mmap] = []
        self._allocated = 0
        self._cond = threading.Condition()
        # Tickets make waiting copies take buffers in arrival order (a plain Condition
        # lets whichever thread wakes first win, which starves slow recorders).
        self._next_ticket = 0
        self._serving = 0

    @property
    def allocated_bytes(self) -> int:
        with self._cond:
            return self._allocated * self.read_size

    def acquire(self) -> mmap.mmap:
        """A buffer of ``read_size`` bytes; waits, in arrival order, until one is free."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving or not self._can_hand_out():
                self._cond.wait()
            self._serving += 1
            if self._free:
                buffer = self._free.pop()
            else:
                buffer = mmap.mmap(-1, self.read_size)
                self._allocated += 1
            self._cond.notify_all()
            return buffer

    def release(self, buffer: mmap.mmap) -> None:
        """Give back a buffer from :meth:`acquire`."""
        with self._cond:
            self._free.append(buffer)
            self._cond.notify_all()

    def _can_hand_out(self) -> bool:
        return bool(self._free) or self._allocated < self.capacity
