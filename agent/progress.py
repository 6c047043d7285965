"""Live progress of long CLI work on a terminal: files, bytes, rate, time left.

Progress goes to stderr, and only when stderr is a terminal, so ``--json`` output on
stdout stays machine-readable and logs stay clean. A redrawn line is cleared first and
cut to the terminal's width, so a shorter line leaves nothing of a longer one behind and
a narrow terminal does not wrap. What a line shows (a label, a stage) may one day name a
recorder's file, so it goes through ``printable``: only the redraw's own ``\r\x1b[K``
reaches the terminal as a control sequence.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Collection
from typing import TextIO

from config.common import printable

_REDRAW_SECONDS = 0.2
_CLEAR = "\r\x1b[K"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal ``stream`` writes to (``COLUMNS`` first, then 80)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size().columns


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width - 1`` columns: the cursor never reaches the last column,
    where some terminals wrap at once."""
    return line[: max(width - 1, 1)]


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def plan(self, files: int, nbytes: int) -> None:
        with self._lock:
            self.files_total += files
            self.bytes_total += nbytes
        self._draw(force=True)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_done += nbytes
        self._draw()

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1
        self._draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes_done / elapsed
        left = (self.bytes_total - self.bytes_done) / rate if rate > 0 else 0.0
        return (
            f"{self.label}: {self.files_done}/{self.files_total} files  "
            f"{_mb(self.bytes_done)}/{_mb(self.bytes_total)}  {_mb(rate)}/s  "
            f"left {_clock(max(left, 0.0))}"
        )

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < _REDRAW_SECONDS:
            return
        self._drawn = now
        self.stream.write(_CLEAR + fit(printable(self.line()), terminal_width(self.stream)))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


class StageProgress:
    """Progress of work done in stages, called as ``progress(stage, done, total)``.

    Each stage gets one redrawn line with its rate and time left; a finished stage's
    line stays, the next starts below it. Stages named in ``counted`` count items
    (leaves); every other stage counts bytes.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        counted: Collection[str] = ("leaves",),
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.counted = frozenset(counted)
        self.stage = ""
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            if self.stage:
                self._draw()
                self.stream.write("\n")
            self.stage, self.started, self._drawn = stage, time.monotonic(), 0.0
        self.done, self.total = done, total
        now = time.monotonic()
        if done >= total or now - self._drawn >= _REDRAW_SECONDS:
            self._drawn = now
            self._draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        if self.stage in self.counted:
            amount = f"{self.done:,}/{self.total:,}  {rate:,.0f}/s"
        else:
            amount = f"{_mb(self.done)}/{_mb(self.total)}  {_mb(rate)}/s"
        return f"{self.stage}: {amount}  left {_clock(max(left, 0.0))}"

    def _draw(self) -> None:
        self.stream.write(_CLEAR + fit(printable(self.line()), terminal_width(self.stream)))
        self.stream.flush()

    def finish(self) -> None:
        """End the last stage's line, so what follows starts on a fresh one."""
        if self.enabled and self.stage:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
            self.stage = ""
