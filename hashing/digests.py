"""Every digest of one byte stream, computed from the same buffers in one pass.

A chunk is handed to *lanes* (whole-file SHA-256, BLAKE3, SM3 when asked). In threaded
mode each lane is a thread of its own: hashlib and blake3 release the GIL on large
buffers, so on a 2-core station the lanes hash while the copying thread writes the
chunk and reads the next. The per-window SHA-256 is computed by the caller's thread
during ``feed``, so a window's hash is known the moment its last byte was fed: the
resume journal can record it right after the write, and a killed copy re-reads less
than one window. A chunk's buffer is returned (``ChunkRelease``) only after every lane
and the writer are done with it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import blake3


@dataclass(frozen=True)
class Digests:
    """The digests of one file: what the ledger records and what a court checks."""

    size: int
    sha256: str
    blake3: str
    sm3: str | None
    window_size: int
    windows: tuple[str, ...]


class ChunkRelease:
    """Calls ``on_done`` once ``users`` parties (lanes and the writer) are done."""

    def __init__(self, users: int, on_done: Callable[[], None]) -> None:
        self._users = users
        self._on_done = on_done
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self._on_done()


class _WindowHashes:
    """SHA-256 of each ``window_size`` stretch of the stream, like dcfldd's hashwindow."""

    def __init__(self, window_size: int) -> None:
        self.window_size = window_size
        self.done: list[str] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, chunk: memoryview) -> None:
        start = 0
        while start < len(chunk):
            take = min(len(chunk) - start, self.window_size - self._filled)
            self._current.update(chunk[start : start + take])
            self._filled += take
            start += take
            if self._filled == self.window_size:
                self.done.append(self._current.hexdigest())
                self._current = hashlib.sha256()
                self._filled = 0

    def finish(self) -> tuple[str, ...]:
        if self._filled:
            self.done.append(self._current.hexdigest())
            self._filled = 0
        return tuple(self.done)


_Lane = Callable[[memoryview], object]
_Item = tuple[memoryview, ChunkRelease] | None


class _LaneThread:
    def __init__(self, lane: _Lane, name: str) -> None:
        self._lane = lane
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, chunk: memoryview, release: ChunkRelease) -> None:
        self._queue.put((chunk, release))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            chunk, release = item
            try:
                if self.error is None:
                    self._lane(chunk)
            except BaseException as exc:  # re-raised by StreamDigests.finish
                self.error = exc
            finally:
                release.done()


class StreamDigests:
    """BLAKE3, and unless told otherwise SHA-256, SM3 and window hashes of one stream.

    ``sha256=False`` (the verify re-read) leaves ``Digests.sha256`` empty: one
    full-strength digest is enough to compare the disk with the read, and BLAKE3
    costs a quarter of SHA-256's CPU.
    """

    def __init__(
        self,
        window_size: int,
        *,
        sm3: bool,
        windows: bool = True,
        sha256: bool = True,
        threaded: bool = True,
    ) -> None:
        self.window_size = window_size
        self.size = 0
        self._sha256 = hashlib.sha256() if sha256 else None
        self._blake3 = blake3.blake3()
        self._sm3 = hashlib.new("sm3") if sm3 else None
        self._windows = _WindowHashes(window_size) if windows else None
        lanes: list[_Lane] = [self._blake3.update]
        if self._sha256 is not None:
            lanes.append(self._sha256.update)
        if self._sm3 is not None:
            lanes.append(self._sm3.update)
        self._lanes = lanes
        self._threads = (
            [_LaneThread(lane, f"evidock-hash-{i}") for i, lane in enumerate(lanes)]
            if threaded
            else []
        )
        self._finished = False

    @property
    def users(self) -> int:
        """How many lanes take each chunk (for :class:`ChunkRelease`)."""
        return len(self._lanes)

    @property
    def completed_windows(self) -> list[str]:
        """Hashes of the windows whose last byte was fed."""
        return self._windows.done if self._windows is not None else []

    def feed(self, chunk: memoryview, release: ChunkRelease) -> None:
        """Hash ``chunk``; ``release.done()`` is called once per lane when it is hashed."""
        self.size += len(chunk)
        if self._threads:
            for thread in self._threads:
                thread.put(chunk, release)
        else:
            for lane in self._lanes:
                try:
                    lane(chunk)
                finally:
                    release.done()
        if self._windows is not None:
            self._windows.update(chunk)

    def finish(self) -> Digests:
        """Wait for the lanes and return the digests of everything fed."""
        self.close()
        for thread in self._threads:
            if thread.error is not None:
                raise thread.error
        windows = self._windows.finish() if self._windows is not None else ()
        return Digests(
            size=self.size,
            sha256=self._sha256.hexdigest() if self._sha256 is not None else "",
            blake3=self._blake3.hexdigest(),
            sm3=self._sm3.hexdigest() if self._sm3 is not None else None,
            window_size=self.window_size,
            windows=windows,
        )

    def close(self) -> None:
        """Stop the lane threads (after they hashed what they were given); idempotent."""
        if self._finished:
            return
        self._finished = True
        for thread in self._threads:
            thread.stop()
