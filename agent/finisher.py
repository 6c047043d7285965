"""A session's second hand: the files just read off the recorder are verified, committed
and probed in the background while the session reads the next ones.

Reading a recorder is limited by its USB link (35 MB/s for USB 2.0); re-reading the
copy from the station's disk and running ffprobe on it are not. Done one after the
other, they leave the link idle for a fifth of a 100 MB clip's time at USB 2.0 speed
and for over a third at USB 3; done here, the link is read without pause and the
recorder is safe that much earlier.

Files wait here in the order they were read, at most ``DEPTH`` of them (a clip's small
sidecars are read in no time: with room for one file only, the session would wait for
the clip's verification before reading the sidecar's next clip). A staged file holds
no read buffer, only its staging file. Results are taken in reading order, so the
ledger gets its leaves in that order, from the session's own thread and connection.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from agent import metadata
from agent.outcomes import FileOutcome
from docking import FootageFile
from hashing import CopyResult, StagedCopy

#: Files read but not yet taken back by the session.
DEPTH = 4


@dataclass(frozen=True)
class Finished:
    """A staged copy's end: committed (``result``, ``media``) or not (``problem``)."""

    result: CopyResult | None
    problem: str | None
    media: metadata.MediaInfo | None


@dataclass
class _Job:
    item: FootageFile
    outcome: FileOutcome
    staged: StagedCopy
    finished: Finished | None = None
    committed: CopyResult | None = None
    error: BaseException | None = None
    done: bool = False

    def set_committed(self, result: CopyResult) -> None:
        self.committed = result


class Finisher:
    """Runs ``finish(item, staged)`` for the files handed over, one at a time, in order,
    in a thread of its own.

    :meth:`take` waits for the oldest file handed over and returns ``(item, outcome,
    finished)``, or None when none is waiting; an exception of ``finish`` is raised
    there; the caller takes results before :meth:`submit` when :meth:`full`. Leaving the
    ``with`` block ends the thread. After an error, :meth:`abort` abandons the files not
    yet verified (their staging kept for a resume) and returns the copies committed but
    never recorded, for the session to set aside (no leaf names them; the recorder,
    never wiped, still has the files).
    """

    def __init__(
        self,
        finish: Callable[[FootageFile, StagedCopy, Callable[[CopyResult], None]], Finished],
        depth: int = DEPTH,
    ) -> None:
        self._finish = finish
        self._depth = depth
        self._jobs: deque[_Job] = deque()
        self._todo: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._abort = False

    def __enter__(self) -> Finisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._cond:
            self._closing = True
            # Ending with an error: the files not finished yet are kept for a resume.
            self._abort = exc is not None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def abort(self) -> list[CopyResult]:
        """End after an error: the files not finished yet are abandoned (their staging
        kept for a resume); returns the copies committed but never taken (no leaf)."""
        self.__exit__(RuntimeError, RuntimeError("aborted"), None)
        with self._cond:
            jobs, self._jobs = list(self._jobs), deque()
        return [job.committed for job in jobs if job.committed is not None]

    def ready(self) -> bool:
        """Whether the oldest file handed over is finished."""
        with self._cond:
            return bool(self._jobs) and self._jobs[0].done

    def full(self) -> bool:
        with self._cond:
            return len(self._jobs) >= self._depth

    def submit(self, item: FootageFile, outcome: FileOutcome, staged: StagedCopy) -> None:
        """Hand a staged file over (the caller takes results first when :meth:`full`)."""
        job = _Job(item, outcome, staged)
        with self._cond:
            if len(self._jobs) >= self._depth:
                raise RuntimeError("take() the oldest file before handing over another")
            self._jobs.append(job)
            self._todo.append(job)
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="evidock-finish", daemon=True
                )
                self._thread.start()

    def take(self) -> tuple[FootageFile, FileOutcome, Finished] | None:
        with self._cond:
            if not self._jobs:
                return None
            job = self._jobs[0]
            while not job.done:
                self._cond.wait()
            if job.error is None:
                self._jobs.popleft()  # a failed one stays: abort() sees what it committed
        if job.error is not None:
            raise job.error
        assert job.finished is not None
        return job.item, job.outcome, job.finished

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._todo and not self._closing:
                    self._cond.wait()
                if not self._todo:
                    return
                job = self._todo.popleft()
                abort = self._abort
            try:
                if abort:
                    job.staged.abandon()
                    raise RuntimeError("the session ended before this file was verified")
                job.finished = self._finish(job.item, job.staged, job.set_committed)
            except BaseException as exc:  # raised again by take(), in the session's thread
                job.error = exc
            with self._cond:
                job.done = True
                self._cond.notify_all()
