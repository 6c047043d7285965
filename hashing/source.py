"""Opening a recorder's file safely, and the narrow interface the engine reads through.

The engine reads only through :class:`SourceFile`, so a test can put a reader that
fails at a chosen offset (a dying USB stick) in front of a real file; the station uses
:func:`open_source`, which refuses everything but a regular file. Given the volume's
root (``beneath``), it opens every folder below the root relative to the one above it
with ``O_NOFOLLOW``: a folder swapped for a link after the scan cannot lead the copy
out of the recorder, and no path is too long to open.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from hashing.diskio import close_fd, open_direct, read_direct
from hashing.errors import HashingError, NotRegularFileError, SourceReadError


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
                self._direct = close_fd(self._direct)
            else:
                if got is not None:
                    return got
        return os.preadv(self.fd, [buffer], offset)

    def close(self) -> None:
        self._direct = close_fd(self._direct)
        self.fd = close_fd(self.fd)


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


_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_source(path: Path, *, beneath: Path | None = None) -> FileSource:
    """Open ``path`` for reading if, and only if, it is a regular file.

    ``O_NOFOLLOW`` refuses a symlink (a recorder must not point us at station files);
    ``O_NONBLOCK`` keeps a FIFO from hanging the open; it is cleared once ``fstat``
    shows a regular file, whose reads then block as usual.

    With ``beneath`` (the volume's root, which must hold ``path``) the root is opened
    as given and each name below it relative to its folder's descriptor, with
    ``O_NOFOLLOW`` on every one: a link anywhere below the root is refused. Without it
    only the last name is guarded (files of the station's own disk).
    """
    fd = _open_file(path) if beneath is None else _open_beneath(path, beneath)
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


def _open_file(path: Path) -> int:
    try:
        return os.open(path, _FILE_FLAGS)
    except OSError as exc:
        raise _open_error(path, exc) from exc


def _open_error(path: Path, exc: OSError) -> HashingError:
    if exc.errno == errno.ELOOP:
        return NotRegularFileError(
            f"{path} is a symlink; evidock copies only regular files, copy the file "
            "it points to if it is footage"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return SourceReadError(
            f"cannot open {path}: its path is too long to open at once; copy it from "
            "its volume (evidock ingest opens each folder of a volume on its own)"
        )
    return SourceReadError(
        f"cannot open {path}: {exc.strerror}; check that the recorder is still docked "
        "and dock it again"
    )


def _open_beneath(path: Path, root: Path) -> int:
    """``openat`` name by name from ``root``'s descriptor, never through a link."""
    try:
        # Either may be relative (``evidock ingest REC``): compared as absolute, unresolved.
        parts = os.fsencode(path.absolute().relative_to(root.absolute())).split(b"/")
    except ValueError:
        raise ValueError(f"{path} is not inside {root}") from None
    if any(part in (b"", b".", b"..") for part in parts):
        raise ValueError(f"{path} does not name a file below {root}")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceReadError(
            f"cannot open the recorder's folder {root}: {exc.strerror}; check that the "
            "recorder is still docked and dock it again"
        ) from exc
    try:
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            try:
                child = os.open(part, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _beneath_error(path, fd, parts[: depth + 1], last, exc) from exc
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _beneath_error(
    path: Path, dir_fd: int, parts: list[bytes], last: bool, exc: OSError
) -> HashingError:
    """The error for ``parts[-1]``, a name below the root that could not be opened."""
    try:
        mode: int | None = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = None
    where = os.fsdecode(b"/".join(parts))
    if mode is not None and stat.S_ISLNK(mode):
        what = (
            f"it is a symbolic link ({where!r})"
            if last
            else (
                f"the folder {where!r} on its way is now a symbolic link (it was a folder when "
                "the recorder was scanned)"
            )
        )
        return NotRegularFileError(
            f"{path} was not copied: {what}; evidock never follows a link out of a "
            "recorder, nothing outside it was read: keep the recorder as it is and report it"
        )
    if exc.errno == errno.ENOTDIR:
        return NotRegularFileError(
            f"{path} was not copied: {where!r} is no longer a folder (the recorder changed "
            "after it was scanned); dock the recorder again"
        )
    return SourceReadError(
        f"cannot open {path} ({where!r}: {exc.strerror}); check that the recorder is still "
        "docked and dock it again"
    )
