"""A recorder's USB link, simulated: files read at the speed of the recorder's bus.

There is no USB here, so a benchmark or a training station docks folders; read as they
are, they come at the station disk's speed, which no recorder reaches. A :class:`UsbLink`
stands for one recorder's bus: every file read from that recorder shares it (a USB
mass-storage device serves one request at a time), so two files on one link together get
the link's rate, and two recorders on two links do not slow each other.

Each request of ``n`` bytes costs ``latency_s`` (command and status of a small read, about
0.2-1 ms on real devices) plus ``n`` over the current rate. The link keeps the time at
which it is next free (a token bucket one request deep, in the GCRA form): a request
starts when it is made or when the link is free, whichever is later, so an idle link
earns no credit and the link never delivers faster than its rate on average. The rate
varies over time by up to ``±jitter`` (drawn from ``seed``, once per ``jitter_period_s``
of transfer at the nominal rate): runs with the same seed and the same reads take the
same modeled time. Memory per link is a few numbers, however much is read.

The file itself is read by the station's own opener (``hashing.open_source``, which the
agent passes in; the rooms do not import each other), so ``O_NOFOLLOW`` below the volume's
root and ``O_DIRECT`` hold as they do for a real recorder; the wrapper then waits, in
``time.sleep`` (no busy loop, the GIL released), until the link would have delivered the
bytes. The time the read itself took counts as link time: a slow disk is not slowed twice.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from docking.errors import SimulatorError

MB = 1_000_000
USB2_RATE = 35 * MB  # bytes/s a USB 2.0 recorder delivers in practice
USB3_RATE = 150 * MB
DEFAULT_LATENCY_S = 0.0005
DEFAULT_JITTER = 0.15
DEFAULT_JITTER_PERIOD_S = 0.25


class ReadableFile(Protocol):
    """What the engine reads through (the shape of ``hashing.SourceFile``)."""

    def stat(self) -> os.stat_result: ...

    def read_into(self, buffer: memoryview, offset: int) -> int: ...

    def close(self) -> None: ...


class BeneathOpener(Protocol):
    """Opens a file of a volume, every name below ``beneath`` without following links
    (the shape of ``hashing.open_source``)."""

    def __call__(self, path: Path, *, beneath: Path) -> ReadableFile: ...


class UsbLink:
    """One recorder's bus: a rate in bytes per second, a latency per request, and jitter.

    ``clock`` and ``sleep`` are injectable so a test can drive the link's time exactly;
    ``sleep=stop.wait`` (a ``threading.Event``) ends the waits at once when ``stop`` is set.
    """

    def __init__(
        self,
        rate_bytes_per_s: float,
        *,
        latency_s: float = DEFAULT_LATENCY_S,
        jitter: float = DEFAULT_JITTER,
        jitter_period_s: float = DEFAULT_JITTER_PERIOD_S,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not rate_bytes_per_s > 0:
            raise ValueError(f"a USB link needs a rate above 0 bytes/s, got {rate_bytes_per_s}")
        if not latency_s >= 0:
            raise ValueError(f"a USB link's latency must be 0 s or more, got {latency_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter is a fraction of the rate, from 0 to below 1, got {jitter}")
        if not jitter_period_s > 0:
            raise ValueError(f"jitter_period_s must be above 0, got {jitter_period_s}")
        self.rate = float(rate_bytes_per_s)
        self.latency_s = latency_s
        self.jitter = jitter
        self.clock = clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._segment_bytes = max(1, round(self.rate * jitter_period_s))
        self._segment_left = 0
        self._factor = 1.0
        self._free_at = float("-inf")
        self._lock = threading.Lock()
        self.bytes = 0  # delivered so far
        self.requests = 0
        self.busy_s = 0.0  # modeled transfer time, latency included

    def _transfer_s(self, n: int) -> float:
        """Seconds to move ``n`` bytes at the jittered rate (the caller holds the lock)."""
        seconds = 0.0
        while n > 0:
            if self._segment_left == 0:
                self._factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter)
                self._segment_left = self._segment_bytes
            part = min(n, self._segment_left)
            seconds += part / (self.rate * self._factor)
            self._segment_left -= part
            n -= part
        return seconds

    def book(self, n: int, asked_at: float) -> float:
        """Book the link for one request of ``n`` bytes made at ``asked_at``; returns the
        time (on ``clock``) at which its bytes have been delivered."""
        with self._lock:
            cost = self.latency_s + self._transfer_s(n)
            self._free_at = max(asked_at, self._free_at) + cost
            self.bytes += n
            self.requests += 1
            self.busy_s += cost
            return self._free_at

    def wait_until(self, deadline: float) -> None:
        delay = deadline - self.clock()
        if delay > 0:
            self._sleep(delay)


class LinkedFile:
    """A recorder file read through its link: the inner file's bytes, at the link's pace.

    A read that returns nothing (end of file: the kernel answers it without asking the
    device) costs no link time; an ``OSError`` of the inner read is raised unchanged.
    """

    def __init__(self, inner: ReadableFile, link: UsbLink) -> None:
        self.inner = inner
        self.link = link

    def stat(self) -> os.stat_result:
        return self.inner.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        asked_at = self.link.clock()
        got = self.inner.read_into(buffer, offset)
        if got > 0:
            self.link.wait_until(self.link.book(got, asked_at))
        return got

    def close(self) -> None:
        self.inner.close()


def link_opener(
    links_by_volume_root: Mapping[Path, UsbLink], inner: BeneathOpener
) -> Callable[[Path], LinkedFile]:
    """An opener for ``Station.source_opener``: each file through its recorder's link.

    A file is opened with ``inner(path, beneath=root)``, ``root`` being the deepest volume
    root that holds it, and read through that root's link. A path under no root is
    refused (:class:`SimulatorError`) rather than read at disk speed: a benchmark whose
    recorder was left off the map would otherwise report a rate no recorder has.
    """
    roots = sorted(
        ((root.absolute(), link) for root, link in links_by_volume_root.items()),
        key=lambda item: len(item[0].parts),
        reverse=True,
    )

    def open_linked(path: Path) -> LinkedFile:
        where = path.absolute()
        for root, link in roots:
            if where.is_relative_to(root):
                return LinkedFile(inner(path, beneath=root), link)
        raise SimulatorError(
            f"{path} is on none of the simulated recorders' links "
            f"({', '.join(str(root) for root, _ in roots) or 'no links given'}): "
            "give link_opener a UsbLink for its recorder's volume root"
        )

    return open_linked
