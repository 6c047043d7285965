"""A recorder's file, checked and removed below the volume's root, never through a link.

Every folder on the way is opened relative to the one above it with ``O_NOFOLLOW``,
starting from the volume root's descriptor, and the file itself likewise: a link
anywhere (a file or a folder swapped for one after the copy) is refused, never followed,
so nothing outside the recorder is read or removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass

from config.common import describe_mode
from config.window_hash import window_digest

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_MIB = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    """The recorder's file as it was checked, so its removal takes that file and no other."""

    dev: int
    ino: int
    size: int
    mtime_ns: int


def open_parent(root_fd: int, rel: bytes) -> tuple[int, bytes]:
    """The folder holding ``rel`` opened below ``root_fd`` name by name, never through a
    link, and the file's name in it. The caller closes the descriptor."""
    parts = rel.split(b"/")
    if any(part in (b"", b".", b"..") for part in parts):
        raise OSError(errno.EINVAL, "not a name below the recorder's root")
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _read_at(fd: int, offset: int, length: int) -> bytes:
    data = b""
    while len(data) < length:
        got = os.pread(fd, length - len(data), offset + len(data))
        if not got:
            break
        data += got
    return data


def _size_text(window_size: int) -> str:
    return f"{window_size // _MIB} MiB" if window_size % _MIB == 0 else f"{window_size} bytes"


def check_file(
    root_fd: int,
    rel: bytes,
    size: int,
    mtime_ns: int,
    windows: tuple[int, str],
    first: str,
    last: str,
) -> FileState | str:
    """The file's state if it is still the one copied, else why it is not: ``windows``
    is the (size, hash) of the windows ``first`` and ``last`` are hashes of."""
    window_size, window_hash = windows
    try:
        parent, name = open_parent(root_fd, rel)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return "a folder on its way is no longer a folder (a link?): never followed"
        return f"cannot be opened ({exc.strerror})"
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "it is now a symbolic link: never followed, never removed"
        return f"cannot be opened ({exc.strerror})"
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return f"it is now {describe_mode(st.st_mode)}: never removed"
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return changed_reason(size, st.st_size)
        last_offset = (size - 1) // window_size * window_size
        for what, offset, expected in (("first", 0, first), ("last", last_offset, last)):
            piece = _read_at(fd, offset, min(window_size, size - offset))
            if window_digest(window_hash, piece) != expected:
                return (
                    f"its content changed on the recorder after it was copied (its {what} "
                    f"{_size_text(window_size)} differ from the copy's, though its size and "
                    "time did not): report it"
                )
        return FileState(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    finally:
        os.close(fd)


def changed_reason(copied: int, now: int) -> str:
    what = f"size {copied} -> {now} bytes" if copied != now else "modification time differs"
    return (
        f"changed on the recorder since it was copied ({what}): docking the recorder again "
        "copies this version"
    )


def remove_file(root_fd: int, rel: bytes, checked: FileState | None) -> str | None:
    """Remove the file ``rel`` if it is still the one ``checked``; else say why not."""
    again = "the wipe leaf lists it as going: run `evidock wipe` again"
    try:
        parent, name = open_parent(root_fd, rel)
    except OSError as exc:
        return f"its folder cannot be opened ({exc.strerror}); it stays; {again}"
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        now = FileState(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if not stat.S_ISREG(st.st_mode) or now != checked:
            return f"it changed after it was checked; it stays; {again}"
        os.unlink(name, dir_fd=parent)
        with contextlib.suppress(OSError):  # a folder fsync some file systems refuse
            os.fsync(parent)
    except OSError as exc:
        return f"could not be removed ({exc.strerror}); it stays; {again}"
    finally:
        os.close(parent)
    return None
