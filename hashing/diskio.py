"""Linux disk calls the standard library lacks, and the write path's error mapping.

``sync_file_range`` starts writeback of a stretch just written, so a copy streams to
disk while it reads instead of piling gigabytes of dirty pages up for the final fsync
(that overlap is what lets a copy+hash beat ``cp`` + ``sync``). ``renameat2`` with
``RENAME_NOREPLACE`` commits a staged file without ever replacing an existing object.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from hashing.errors import HashingError, StoreFullError

_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

_libc = ctypes.CDLL(None, use_errno=True)
_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    _sync_file_range.restype = ctypes.c_int
_renameat2 = getattr(_libc, "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    _renameat2.restype = ctypes.c_int


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a stretch out now (a hint; fsync is the guarantee)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def finish_writeback(fd: int, offset: int, length: int) -> None:
    """Wait until a stretch is on disk, then drop it from the page cache."""
    if _sync_file_range is not None:
        flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
        _sync_file_range(fd, offset, length, flags)
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def drop_cache(fd: int) -> None:
    """Evict a (synced) file's pages, so the next read comes from the disk."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class Writeback:
    """Keeps one copy's dirty pages bounded: starts writeback of every ``unit`` written
    and waits for the stretch ``lag`` units behind."""

    def __init__(self, fd: int, start: int, *, unit: int = 8 << 20, lag: int = 4) -> None:
        self._fd = fd
        self._unit = unit
        self._lag = lag
        self._started = start - start % unit
        self._settled = self._started

    def wrote_up_to(self, end: int) -> None:
        while end - self._started >= self._unit:
            start_writeback(self._fd, self._started, self._unit)
            self._started += self._unit
            if self._started - self._settled > self._lag * self._unit:
                finish_writeback(self._fd, self._settled, self._unit)
                self._settled += self._unit


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in _DISK_FULL


def store_error(exc: OSError, what: str) -> HashingError:
    """The typed error for a failed write to the station's own disk."""
    if is_disk_full(exc):
        return StoreFullError(
            f"the evidence store is full while {what} ({exc.strerror}); free space on the "
            "station's data disk (deliver and purge confirmed clips), then dock the recorder "
            "again; the recorder was not touched"
        )
    return HashingError(
        f"writing to the evidence store failed while {what} ({exc.strerror}); check the "
        "station's data disk, then dock the recorder again; the recorder was not touched"
    )


def write_all(fd: int, data: memoryview, offset: int) -> None:
    """Write every byte of ``data`` at ``offset`` (short writes continue)."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def rename_noreplace(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target`` unless ``target`` exists; False if it existed."""
    if _renameat2 is not None:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if result == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            return False
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(err, os.strerror(err), str(target))
    # A file system without RENAME_NOREPLACE: link() refuses an existing name as well.
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    os.unlink(source)
    return True


_BLOCK = 4096


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def close_fd(fd: int) -> int:
    """Close ``fd`` unless it is -1 (none); returns -1, for ``self.fd = close_fd(self.fd)``."""
    if fd >= 0:
        os.close(fd)
    return -1


def open_direct(fd: int, *, write: bool = False) -> int:
    """A second, ``O_DIRECT`` descriptor of the file open as ``fd`` (for reading, or for
    writing with ``write``), or -1.

    Reopened through ``/proc/self/fd`` rather than by name, so it is the same inode
    even if the name was swapped meanwhile (checked); -1 where the file system or a
    missing ``/proc`` refuses it, and reads stay buffered.
    """
    try:
        mode = os.O_WRONLY if write else os.O_RDONLY
        direct = os.open(f"/proc/self/fd/{fd}", mode | os.O_CLOEXEC | os.O_DIRECT)
    except OSError:
        return -1
    mine, other = os.fstat(fd), os.fstat(direct)
    if (mine.st_dev, mine.st_ino) != (other.st_dev, other.st_ino):
        os.close(direct)
        return -1
    return direct


def read_direct(direct: int, buffer: memoryview, offset: int) -> int | None:
    """Read the block-aligned part of ``buffer`` with ``O_DIRECT``; None if unaligned.

    The disk's DMA lands in ``buffer`` itself: no page-cache copy (the biggest CPU cost
    of a buffered read), and the bytes come from the disk, never from the page cache.
    An ``OSError`` (``EINVAL``: the file system wants another alignment) is the
    caller's to handle.
    """
    aligned = len(buffer) - len(buffer) % _BLOCK
    if not aligned or offset % _BLOCK or _address(buffer) % _BLOCK:
        return None
    return os.preadv(direct, [buffer[:aligned]], offset)


def _aligned(buffer: memoryview, offset: int) -> bool:
    return not (len(buffer) % _BLOCK or offset % _BLOCK or _address(buffer) % _BLOCK)


class StagingWriter:
    """Writes a copy to its staging file, around the page cache where it can.

    Whole blocks from the budget's page-aligned buffers go through ``O_DIRECT``: the
    disk takes the bytes from the buffer itself, so the kernel neither copies them into
    the page cache nor writes them back and evicts them later (a third of the copy's
    system CPU). A file's unaligned tail, and file systems that refuse ``O_DIRECT``
    (tmpfs), are written through the page cache with bounded writeback. The final
    ``fsync`` is the durability guarantee either way.
    """

    def __init__(self, fd: int, start: int) -> None:
        self._fd = fd
        self._direct = open_direct(fd, write=True)
        self._writeback = Writeback(fd, start)

    @property
    def direct(self) -> bool:
        return self._direct >= 0

    def write(self, data: memoryview, offset: int) -> None:
        if self._direct >= 0 and _aligned(data, offset):
            try:
                write_all(self._direct, data, offset)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # The file system wants another alignment: the page cache from here on.
                self._direct = close_fd(self._direct)
        write_all(self._fd, data, offset)
        self._writeback.wrote_up_to(offset + len(data))

    def close(self) -> None:
        self._direct = close_fd(self._direct)
