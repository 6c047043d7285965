"""The resume journal of an interrupted copy: which windows of the staged file are done.

``staging/<key>.part`` holds the bytes copied so far and ``staging/<key>.journal`` a
header (the source's size and mtime, the window size and hash) then one line per window
written: ``w <index> <hash>``. A journal whose header differs (another source, window
size or window hash, as after an upgrade) is started again. Lines are appended after the
window's bytes were written, without fsync: a killed process leaves both in the page
cache, and after a power cut a resumed copy re-hashes the staged prefix and checks every
window against its line, so a journal that got ahead of its data is caught, never
trusted.

The journal is locked (``flock``) while a copy runs, so two engines never share one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from pathlib import Path

from hashing.errors import HashingError

_KEY = re.compile(r"^[0-9a-f]{1,128}$")
_LINE = re.compile(r"^w (\d+) ([0-9a-f]{64})$")
_VERSION = 1


def check_resume_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"resume_key must be 1-128 lowercase hex digits, got {key!r}")
    return key


class ResumeJournal:
    """Windows already staged for one source file, keyed by the caller's resume key."""

    def __init__(
        self, path: Path, fd: int, header: dict[str, int | str], windows: list[str]
    ) -> None:
        self.path = path
        self._fd = fd
        self._header = header
        self.windows = windows

    @classmethod
    def open(
        cls,
        staging_dir: Path,
        key: str,
        *,
        size: int,
        mtime_ns: int,
        window_size: int,
        window_hash: str,
    ) -> ResumeJournal:
        """Open (or start) the journal of ``key``; a stale or corrupt one is emptied."""
        path = staging_dir / f"{check_resume_key(key)}.journal"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise HashingError(
                    f"another copy of the same file (resume key {key}) is running; wait for "
                    "it to finish instead of copying the file twice at once"
                ) from None
            raise
        header: dict[str, int | str] = {
            "v": _VERSION,
            "size": size,
            "mtime_ns": mtime_ns,
            "window_size": window_size,
            "window_hash": window_hash,
        }
        journal = cls(path, fd, header, [])
        journal.windows = journal._read_windows()
        if not journal.windows:
            journal.reset()
        return journal

    def _read_windows(self) -> list[str]:
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            text = handle.read(1 << 24)
        lines = text.split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            return []
        if header != self._header:
            return []
        windows: list[str] = []
        # The last element is what follows the final newline: a torn line, never trusted.
        for raw in lines[1:-1]:
            match = _LINE.match(raw.decode("ascii", "replace"))
            if match is None or int(match.group(1)) != len(windows):
                break
            windows.append(match.group(2))
        return windows

    def reset(self) -> None:
        """Forget every window: the next copy starts from zero."""
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps(self._header, sort_keys=True).encode() + b"\n")
        self.windows = []

    def truncate(self, keep: int) -> None:
        """Keep only the first ``keep`` windows."""
        kept = self.windows[:keep]
        self.reset()
        for digest in kept:
            self.append(digest)

    def append(self, digest: str) -> None:
        os.write(self._fd, f"w {len(self.windows)} {digest}\n".encode())
        self.windows.append(digest)

    def close(self) -> None:
        """Unlock and keep the journal for a later resume."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Remove the journal (the copy was committed or cannot be resumed)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.close()
