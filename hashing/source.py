"""Opening a recorder's file safely, and the narrow interface the engine reads through.

The engine reads only through :class:`SourceFile`, so a test can put a reader that
fails at a chosen offset (a dying USB stick) in front of a real file; the station uses
:func:`open_source`, which refuses everything but a regular file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from hashing.diskio import open_direct, read_direct
from hashing.errors import NotRegularFileError, SourceReadError


class SourceFile(Protocol):
    """A file opened for reading at explicit offsets (what a file descriptor offers)."""

    def stat(self) -> os.stat_result: ...

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Read up to ``len(buffer)`` bytes at ``offset``; 0 means end of file."""
        ...

    def close(self) -> None: ...


SourceOpener = Callable[[Path], SourceFile]


class FileSource:
    """A regular file read with ``preadv`` (no shared file position, no seek).

    With ``direct=True``, block-aligned reads into page-aligned buffers (the budget's)
    go through ``O_DIRECT``: the disk writes into the buffer, the CPU copies nothing,
    and nothing comes from the page cache. Unaligned pieces (a file's tail, a small
    test buffer) and file systems that refuse ``O_DIRECT`` use ordinary reads.
    """

    def __init__(self, fd: int, *, direct: bool = False) -> None:
        self.fd = fd
        self._direct = open_direct(fd) if direct else -1

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if self._direct >= 0:
            try:
                got = read_direct(self._direct, buffer, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._close_direct()
            else:
                if got is not None:
                    return got
        return os.preadv(self.fd, [buffer], offset)

    def _close_direct(self) -> None:
        if self._direct >= 0:
            os.close(self._direct)
            self._direct = -1

    def close(self) -> None:
        self._close_direct()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_synced(path: Path) -> FileSource:
    """Open a file of the station's own disk to read it back from the disk itself."""
    return FileSource(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW), direct=True)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_source(path: Path) -> FileSource:
    """Open ``path`` for reading if, and only if, it is a regular file.

    ``O_NOFOLLOW`` refuses a symlink (a recorder must not point us at station files);
    ``O_NONBLOCK`` keeps a FIFO from hanging the open; it is cleared once ``fstat``
    shows a regular file, whose reads then block as usual.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(
                f"{path} is a symlink; evidock copies only regular files, copy the file "
                "it points to if it is footage"
            ) from None
        raise SourceReadError(
            f"cannot open {path}: {exc.strerror}; check that the recorder is still docked "
            "and dock it again"
        ) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(
                f"{path} is {_kind(mode)}; evidock copies only regular files, it was skipped"
            )
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        # Recorder files are read once from start to end: unaligned pieces (and file
        # systems without O_DIRECT) read buffered, with a large read-ahead.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return FileSource(fd, direct=True)
    except BaseException:
        os.close(fd)
        raise
