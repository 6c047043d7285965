"""Live progress of long CLI work on a terminal: files, bytes, rate, time left.

Progress goes to stderr, and only when stderr is a terminal, so ``--json`` output on
stdout stays machine-readable and logs stay clean.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_REDRAW_SECONDS = 0.2


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


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
        self.stream.write("\r\x1b[K" + self.line())
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
