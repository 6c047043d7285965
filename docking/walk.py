"""Walking a volume below its root's descriptor, never through a link.

Every folder is opened relative to the folder above it with ``O_NOFOLLOW``, starting
from the volume root's descriptor, so a link anywhere on the way is reported instead of
followed, and no full path is ever built for the kernel: a tree deeper than ``PATH_MAX``
(4,096 bytes) or than Python's recursion limit is walked like a shallow one. A folder
swapped for a link between two steps is refused, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from docking.errors import VolumeError
from docking.names import display_path

Refused = tuple[bytes, str]  # (path below the root, why it was left alone)

# Folders whose descriptors stay open during the walk (the deepest ones); a folder
# further up is closed and opened again through ``..`` of its child when the walk
# climbs back to it, so a deep tree cannot run the process out of descriptors.
_OPEN_FOLDERS = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


@dataclass
class _Folder:
    """A folder being walked: its entries not yet taken, last first."""

    rel: bytes
    fd: int  # -1 while closed (see _OPEN_FOLDERS)
    ident: tuple[int, int]  # (st_dev, st_ino), to tell it again when it is reopened
    entries: list[tuple[bytes, os.stat_result]]


def walk(
    root_fd: int,
    root_name: str,
    regular: list[tuple[bytes, os.stat_result]],
    refused: list[Refused],
) -> None:
    """Every entry below the open folder ``root_fd``: regular files with their ``lstat``
    into ``regular``, everything else (links, pipes, devices, unreadable folders) with
    the reason into ``refused``. Depth first, in name order, with an explicit stack."""
    try:
        entries = _list(root_fd, b"", refused)
    except OSError as exc:
        raise VolumeError(
            f"cannot list the volume {root_name!r} ({exc.strerror}); "
            "check that it is mounted and readable"
        ) from None
    stack = [_Folder(b"", root_fd, _ident(root_fd), entries)]
    try:
        while stack:
            top = stack[-1]
            if not top.entries:
                _climb(stack, root_name)
                continue
            name, st = top.entries.pop()
            rel = top.rel + b"/" + name if top.rel else name
            if stat.S_ISDIR(st.st_mode):
                child = _enter(top, name, rel, refused)
                if child is not None:
                    stack.append(child)
                    if len(stack) > _OPEN_FOLDERS + 1 and stack[-_OPEN_FOLDERS - 1].fd >= 0:
                        os.close(stack[-_OPEN_FOLDERS - 1].fd)
                        stack[-_OPEN_FOLDERS - 1].fd = -1
            elif stat.S_ISREG(st.st_mode):
                regular.append((rel, st))
            else:
                refused.append((rel, _refusal_reason(top.fd, name, st.st_mode)))
    finally:
        for folder in stack[1:]:
            if folder.fd >= 0:
                os.close(folder.fd)


def _list(fd: int, rel: bytes, refused: list[Refused]) -> list[tuple[bytes, os.stat_result]]:
    """The entries of the open folder ``fd`` with their ``lstat``, last name first.

    Raises ``OSError`` when the folder cannot be listed at all.
    """
    entries: list[tuple[bytes, os.stat_result]] = []
    with os.scandir(fd) as it:
        listed = list(it)
    for entry in listed:
        name = os.fsencode(entry.name)  # scandir of a descriptor gives str; exact bytes back
        try:
            entries.append((name, entry.stat(follow_symlinks=False)))
        except OSError as exc:
            child = rel + b"/" + name if rel else name
            refused.append((child, f"cannot be examined ({exc.strerror}); not copied"))
    entries.sort(key=lambda e: e[0], reverse=True)
    return entries


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _enter(parent: _Folder, name: bytes, rel: bytes, refused: list[Refused]) -> _Folder | None:
    """Open the folder ``name`` of ``parent``, never through a link, and list it."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
    except OSError as exc:
        why = _changed(parent.fd, name) if exc.errno in (errno.ENOTDIR, errno.ELOOP) else None
        refused.append((rel, why or f"folder cannot be read ({exc.strerror}); not copied"))
        return None
    try:
        return _Folder(rel, fd, _ident(fd), _list(fd, rel, refused))
    except OSError as exc:
        os.close(fd)
        refused.append((rel, f"folder cannot be read ({exc.strerror}); not copied"))
        return None
    except BaseException:
        os.close(fd)
        raise


def _changed(dir_fd: int, name: bytes) -> str | None:
    """Why ``name``, a folder when it was listed, could not be opened as one now."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return (
            "became a symbolic link while the volume was scanned: refused and not followed; "
            "nothing in it was copied"
        )
    if not stat.S_ISDIR(mode):
        return "stopped being a folder while the volume was scanned; nothing in it was copied"
    return None


def _climb(stack: list[_Folder], root_name: str) -> None:
    """Leave the finished folder on top; reopen its parent through ``..`` if it was closed."""
    done = stack.pop()
    parent = stack[-1] if stack else None
    try:
        if parent is not None and parent.fd < 0:
            fd = os.open(b"..", _DIR_FLAGS, dir_fd=done.fd)
            if _ident(fd) != parent.ident:
                os.close(fd)
                raise VolumeError(
                    f"the volume {root_name!r} changed while it was scanned (folder "
                    f"{display_path(parent.rel)!r} was moved or replaced); "
                    "nothing was copied: leave the recorder alone and dock it again"
                )
            parent.fd = fd
    finally:
        if done.rel:  # the root's descriptor belongs to the caller
            os.close(done.fd)


def _refusal_reason(dir_fd: int, name: bytes, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            target = display_path(os.readlink(name, dir_fd=dir_fd))
        except OSError as exc:
            target = f"<unreadable link: {exc.strerror}>"
        return f"symbolic link to {target!r}: refused and not followed"
    what = {
        stat.S_IFIFO: "named pipe (FIFO)",
        stat.S_IFSOCK: "socket",
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
    }.get(stat.S_IFMT(mode), f"special file (mode {stat.S_IFMT(mode):o})")
    return f"{what}: refused, never opened"


class Unreadable(Exception):
    """``rel`` (the device-info file, or a ``folder`` on its way) cannot be read."""

    def __init__(self, rel: bytes, why: str, *, folder: bool) -> None:
        super().__init__(why)
        self.rel = rel
        self.folder = folder


def read_casefold(root_fd: int, rel: bytes, limit: int) -> tuple[bytes, bytes] | None:
    """Read the regular file ``rel`` below ``root_fd``, ignoring case as FAT does.

    Each folder on the way and the file itself are opened relative to the one above,
    with ``O_NOFOLLOW``: a link anywhere on the way is never followed (the scan
    reports it), so nothing outside the volume can name the recorder. None: not there.
    """
    parts = rel.split(b"/")
    fd, found = root_fd, b""
    try:
        for index, part in enumerate(parts):
            try:
                with os.scandir(fd) as it:
                    names = [os.fsencode(e.name) for e in it]
            except OSError:
                return None
            matches = sorted(n for n in names if n.lower() == part.lower())
            if not matches:
                return None
            name = matches[0]
            found = found + b"/" + name if found else name
            last = index == len(parts) - 1
            try:
                child = os.open(name, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                why = _why_unreadable(fd, name, exc)
                raise Unreadable(found, why, folder=not last) from None
            if fd != root_fd:
                os.close(fd)
            fd = child
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unreadable(found, "not a regular file", folder=False)
        return found, os.read(fd, limit)
    finally:
        if fd != root_fd:
            os.close(fd)


def _why_unreadable(dir_fd: int, name: bytes, exc: OSError) -> str:
    try:
        link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        link = False
    if link or exc.errno == errno.ELOOP:
        return "it is a symbolic link (not followed)"
    if exc.errno == errno.ENOTDIR:
        return "not a folder"
    return exc.strerror or str(exc)
