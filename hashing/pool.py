"""One small pool of hashing threads shared by every copy on the station.

At shift change 24 recorders copy at once on a 2-core station. Hashing is the only
CPU-bound work of a copy (reads and writes wait on devices), so instead of hashing
threads per copy (72+ busy threads for 24 recorders, all fighting over 2 cores) every
copy hands its chunks to one pool of ``os.cpu_count()`` threads.

Each copy is a :class:`HashLane`: its chunks are hashed in order (a hash is a running
state), one chunk at a time, and lanes take turns: a worker hashes one chunk of a lane
and puts the lane at the back of the queue if it has more, so a recorder with one 4 GB
clip never makes the sidecars of another wait behind it. Workers start when there is
work and end after a short idle spell, so an idle station runs no hashing thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import ClassVar

#: How long an idle worker waits for more work before it ends (seconds).
LINGER_SECONDS = 0.25

Work = Callable[[memoryview], None]
Done = Callable[[], None]


class HashLane:
    """The chunks of one stream, hashed in order by the pool's workers.

    ``work`` runs for every chunk in the order they were put, never two at once; after
    it, the chunk's ``done`` runs (the buffer may go back to the budget). After a failed
    ``work`` the lane keeps calling ``done`` for the chunks left but hashes nothing more,
    and keeps the failure in ``error``.
    """

    def __init__(self, pool: HashPool, work: Work) -> None:
        self._pool = pool
        self._work = work
        self._pending: deque[tuple[memoryview, Done]] = deque()
        self._queued = False  # in the pool's queue or being worked on
        self.error: BaseException | None = None

    def put(self, chunk: memoryview, done: Done) -> None:
        """Hash ``chunk`` after every chunk put before it, then call ``done``."""
        self._pool._put(self, chunk, done)

    def drain(self) -> None:
        """Wait until every chunk put so far was hashed (a failure stays in ``error``)."""
        self._pool._drain(self)


class HashPool:
    """``workers`` threads hashing the chunks of every lane, taking lanes in turn."""

    _shared: ClassVar[HashPool | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, workers: int | None = None, *, linger: float = LINGER_SECONDS) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 1:
            raise ValueError(f"a hash pool needs at least 1 worker, got {workers}")
        self.workers = workers
        self._linger = linger
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._lane_idle = threading.Condition(self._lock)
        self._queue: deque[HashLane] = deque()
        self._alive = 0
        self._waiting = 0
        self.peak_workers = 0

    @classmethod
    def shared(cls) -> HashPool:
        """The process's pool (one per station process: the cores are shared too)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def lane(self, work: Work) -> HashLane:
        return HashLane(self, work)

    @property
    def alive(self) -> int:
        """Worker threads running now (for tests and benchmarks)."""
        with self._lock:
            return self._alive

    def _put(self, lane: HashLane, chunk: memoryview, done: Done) -> None:
        with self._lock:
            lane._pending.append((chunk, done))
            if not lane._queued:
                lane._queued = True
                self._queue.append(lane)
                self._wake_or_start()

    def _wake_or_start(self) -> None:
        # Called with the lock held, after a lane joined the queue.
        if self._waiting:
            self._work_ready.notify()
        elif self._alive < self.workers:
            self._alive += 1
            self.peak_workers = max(self.peak_workers, self._alive)
            thread = threading.Thread(target=self._run, name="evidock-hash", daemon=True)
            try:
                thread.start()
            except BaseException:
                self._alive -= 1
                raise

    def _drain(self, lane: HashLane) -> None:
        with self._lock:
            while lane._queued:
                self._lane_idle.wait()

    def _run(self) -> None:
        self._lock.acquire()
        try:
            while True:
                if not self._queue:
                    self._waiting += 1
                    self._work_ready.wait(self._linger)
                    self._waiting -= 1
                    if not self._queue:
                        return
                lane = self._queue.popleft()
                chunk, done = lane._pending.popleft()
                self._lock.release()
                try:
                    if lane.error is None:
                        lane._work(chunk)
                except BaseException as exc:  # kept for the lane's owner
                    lane.error = exc
                try:
                    done()
                except BaseException as exc:
                    lane.error = lane.error or exc
                self._lock.acquire()
                if lane._pending:
                    # Back of the queue: every other lane gets a chunk hashed first.
                    self._queue.append(lane)
                else:
                    lane._queued = False
                    self._lane_idle.notify_all()
        finally:
            self._alive -= 1
            if self._queue and self._alive == 0:
                # Work arrived as this worker gave up: never leave it without a worker.
                self._wake_or_start()
            self._lock.release()
