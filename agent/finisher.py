"""A session's second hand: the file just read off the recorder is verified, committed
and probed in the background while the session reads the next one.

Reading a recorder is limited by its USB link (35 MB/s for USB 2.0); re-reading the
copy from the station's disk and running ffprobe on it are not. Done one after the
other, they leave the link idle for a fifth of a 100 MB clip's time at USB 2.0 speed
and for over a third at USB 3; done by this finisher, the link is read without pause
and the recorder is safe that much earlier.

At most one file waits here (the session waits for it before it hands over the next),
so a session holds at most two files' buffers, and the finisher's results are taken in
the order the files were read: the ledger gets its leaves in that order, from the
session's own thread and SQLite connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from agent import metadata
from agent.outcomes import FileOutcome
from docking import FootageFile
from hashing import CopyResult, StagedCopy


@dataclass(frozen=True)
class Finished:
    """A staged copy's end: committed (``result``, ``media``) or not (``problem``)."""

    result: CopyResult | None
    problem: str | None
    media: metadata.MediaInfo | None


class Finisher:
    """Runs ``finish(item, staged)`` for one file at a time in a thread of its own.

    :meth:`take` waits for the file handed over last and returns ``(item, outcome,
    finished)``, or None when nothing was handed over; an exception of ``finish`` is
    raised there. Leaving the ``with`` block waits for the file in hand (a copy is never
    left half-committed by a session that ends with an error).
    """

    def __init__(self, finish: Callable[[FootageFile, StagedCopy], Finished]) -> None:
        self._finish = finish
        self._thread: threading.Thread | None = None
        self._held: tuple[FootageFile, FileOutcome] | None = None
        self._finished: Finished | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> Finisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._join()

    def ready(self) -> bool:
        """Whether a file was handed over and its finish has ended."""
        return self._held is not None and (self._thread is None or not self._thread.is_alive())

    def submit(self, item: FootageFile, outcome: FileOutcome, staged: StagedCopy) -> None:
        if self._held is not None:
            raise RuntimeError("take() the file in hand before handing over the next")
        self._held, self._finished, self._error = (item, outcome), None, None

        def run() -> None:
            try:
                self._finished = self._finish(item, staged)
            except BaseException as exc:  # raised again by take(), in the session's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="evidock-finish", daemon=True)
        self._thread.start()

    def take(self) -> tuple[FootageFile, FileOutcome, Finished] | None:
        if self._held is None:
            return None
        self._join()
        held, finished, error = self._held, self._finished, self._error
        self._held, self._finished, self._error = None, None, None
        if error is not None:
            raise error
        assert finished is not None
        return held[0], held[1], finished

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
