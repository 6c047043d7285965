"""A docked recorder volume: who it is (device-info file) and what footage it holds.

The scan never follows a symbolic link and never opens anything but folders and the
device-info file: links, pipes, sockets and device nodes are reported as refusals, so a
hostile volume can neither point the copy at files outside itself nor block it on a FIFO.
Every folder and the device-info file are opened relative to the folder above them, with
``O_NOFOLLOW`` on each name, starting from the volume root: a link anywhere on the way is
never followed, and no path is ever too long (the walk holds no full paths, and no
recursion, so a thousand nested folders are listed like three). Names are kept as raw
bytes end to end, so a name that is not UTF-8 is copied and recorded exactly.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from docking.errors import NotARecorderError, VolumeError, VolumeNotFoundError
from docking.names import display_path, path_b64
from docking.profiles import FootageKind, RecorderProfile, get_profile, load_profiles
from docking.profiles import profile_for_model as _profile_for_model

DEFAULT_PROFILE = "generic"
DEVICE_INFO_MAX_BYTES = 64 * 1024  # a real one is a few hundred bytes; more is not a device file
_SERIAL_OK = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")

SerialSource = Literal["device-info", "derived"]
Layout = Literal["recorder", "plain"]


@dataclass(frozen=True)
class FootageFile:
    """A regular file on the volume, as seen by ``lstat`` during the scan."""

    rel_path: bytes
    path: Path
    size: int
    mtime_ns: int
    kind: FootageKind
    recorder_time: str | None = None  # naive ISO text from the name: the recorder's own clock

    @property
    def display_path(self) -> str:
        return display_path(self.rel_path)

    @property
    def path_b64(self) -> str | None:
        return path_b64(self.rel_path)


@dataclass(frozen=True)
class Refusal:
    """Something on the volume that was reported and left alone (never followed, never read)."""

    rel_path: bytes
    reason: str

    @property
    def display_path(self) -> str:
        return display_path(self.rel_path)


@dataclass(frozen=True)
class VolumeScan:
    files: list[FootageFile]
    refused: list[Refusal]
    # "recorder" when the profile's footage globs matched; "plain" when every regular file
    # was taken because the folder is not laid out like a recorder (`ingest SOURCE`).
    layout: Layout = "recorder"


@dataclass(frozen=True)
class RecorderVolume:
    root: Path
    label: str
    serial: str
    serial_source: SerialSource
    profile: RecorderProfile
    model: str | None = None
    firmware: str | None = None
    officer: str | None = None
    device_info: dict[str, str] = field(default_factory=dict)
    device_info_path: bytes | None = None
    device_info_problem: str | None = None

    def scan(self) -> VolumeScan:
        """List every regular file and the refusals; read nothing but directory entries.

        Every regular file is taken, footage or not: a recorder that writes somewhere
        its profile does not expect must not lose those files by being docked. The
        profile's footage globs only tell a recorder layout from a plain folder.
        """
        regular: list[tuple[bytes, os.stat_result]] = []
        refused: list[Refusal] = []
        try:
            root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise VolumeError(
                f"cannot list the volume {str(self.root)!r} ({exc.strerror}); "
                "check that it is mounted and readable"
            ) from None
        try:
            _walk(root_fd, str(self.root), regular, refused)
        finally:
            os.close(root_fd)
        matcher = self.profile.footage_matcher()
        footage = any(matcher.match(os.fsdecode(rel)) for rel, _st in regular)
        layout: Layout = "recorder" if footage else "plain"
        files = [self._footage(rel, st) for rel, st in regular]
        return VolumeScan(files=files, refused=refused, layout=layout)

    def _footage(self, rel: bytes, st: os.stat_result) -> FootageFile:
        name = os.fsdecode(rel.rpartition(b"/")[2])
        return FootageFile(
            rel_path=rel,
            path=self.root / os.fsdecode(rel),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            kind=self.profile.kind_of(name),
            recorder_time=self.profile.recorder_time(name),
        )


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


def _walk(
    root_fd: int,
    root_name: str,
    regular: list[tuple[bytes, os.stat_result]],
    refused: list[Refusal],
) -> None:
    """Depth first, in name order, with an explicit stack (never recursion)."""
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
                refused.append(Refusal(rel, _refusal_reason(top.fd, name, st.st_mode)))
    finally:
        for folder in stack[1:]:
            if folder.fd >= 0:
                os.close(folder.fd)


def _list(fd: int, rel: bytes, refused: list[Refusal]) -> list[tuple[bytes, os.stat_result]]:
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
            refused.append(Refusal(child, f"cannot be examined ({exc.strerror}); not copied"))
    entries.sort(key=lambda e: e[0], reverse=True)
    return entries


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _enter(parent: _Folder, name: bytes, rel: bytes, refused: list[Refusal]) -> _Folder | None:
    """Open the folder ``name`` of ``parent``, never through a link, and list it."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
    except OSError as exc:
        why = _changed(parent.fd, name) if exc.errno in (errno.ENOTDIR, errno.ELOOP) else None
        refused.append(Refusal(rel, why or f"folder cannot be read ({exc.strerror}); not copied"))
        return None
    try:
        return _Folder(rel, fd, _ident(fd), _list(fd, rel, refused))
    except OSError as exc:
        os.close(fd)
        refused.append(Refusal(rel, f"folder cannot be read ({exc.strerror}); not copied"))
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


def open_volume(
    path: os.PathLike[str] | str, profile: str | RecorderProfile | None = None
) -> RecorderVolume:
    """Open a docked volume (or any folder) and identify the recorder.

    ``profile`` is the one used when the device-info file names no known model (the
    station's ``docking.recorder_profile``). A volume without a usable serial gets one
    derived from its path, flagged ``serial_source="derived"``.
    """
    root = Path(os.path.abspath(path))
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise VolumeNotFoundError(
            f"{str(root)!r} does not exist: give the folder where the recorder is mounted"
        ) from None
    except OSError as exc:
        raise VolumeError(
            f"cannot examine {str(root)!r} ({exc.strerror}); check permissions"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotARecorderError(
            f"{str(root)!r} is not a folder: give the folder where the recorder is mounted, "
            "not a file inside it"
        )
    default = (
        get_profile(profile or DEFAULT_PROFILE)
        if not isinstance(profile, RecorderProfile)
        else profile
    )
    info, info_path, problem = _read_device_info(root, default)
    model = _lookup(info, default.model_key)
    chosen = _profile_for_model(model, default)
    serial = _lookup(info, chosen.serial_key)
    serial_source: SerialSource = "device-info"
    if serial is None or not _SERIAL_OK.match(serial):
        if serial is not None:
            problem = f"serial {serial!r} in the device-info file is not usable; derived one"
        serial, serial_source = derive_serial(root), "derived"
    return RecorderVolume(
        root=root,
        label=root.name,
        serial=serial,
        serial_source=serial_source,
        profile=chosen,
        model=model,
        firmware=_lookup(info, chosen.firmware_key),
        officer=_lookup(info, chosen.officer_key),
        device_info=info,
        device_info_path=info_path,
        device_info_problem=problem,
    )


def derive_serial(root: Path) -> str:
    """A stable stand-in serial for a volume without one: its label plus a path hash."""
    raw = os.fsencode(root)
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", os.fsdecode(os.path.basename(raw)))[:32].strip("_")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return f"derived-{label or 'volume'}-{digest}"


def _lookup(info: dict[str, str], key: str) -> str | None:
    value = info.get(key.casefold())
    return value or None


def _read_device_info(
    root: Path, default: RecorderProfile
) -> tuple[dict[str, str], bytes | None, str | None]:
    candidates = list(default.device_info)
    for other in load_profiles().values():
        candidates += [c for c in other.device_info if c not in candidates]
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return {}, None, None  # the scan says why the volume cannot be read
    try:
        for candidate in candidates:
            try:
                found = _read_casefold(root_fd, os.fsencode(candidate))
            except _Unreadable as exc:
                where = display_path(exc.rel)
                if exc.folder:
                    return (
                        {},
                        exc.rel,
                        (
                            f"device-info file {candidate!r} not read: the folder {where!r} on "
                            f"its way: {exc}; serial derived"
                        ),
                    )
                return {}, exc.rel, f"device-info file {where!r} not read: {exc}"
            if found is not None:
                rel, raw = found
                return _parse_key_values(raw, default.device_info_separator), rel, None
    finally:
        os.close(root_fd)
    return {}, None, None


class _Unreadable(Exception):
    """``rel`` (the device-info file, or a ``folder`` on its way) cannot be read."""

    def __init__(self, rel: bytes, why: str, *, folder: bool) -> None:
        super().__init__(why)
        self.rel = rel
        self.folder = folder


def _read_casefold(root_fd: int, rel: bytes) -> tuple[bytes, bytes] | None:
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
                raise _Unreadable(found, why, folder=not last) from None
            if fd != root_fd:
                os.close(fd)
            fd = child
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Unreadable(found, "not a regular file", folder=False)
        return found, os.read(fd, DEVICE_INFO_MAX_BYTES)
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


def _parse_key_values(raw: bytes, separator: str) -> dict[str, str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Recorders sold in China often write GB18030 text (officer names, unit names).
        text = raw.decode("gb18030", errors="replace")
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or separator not in line:
            continue
        key, _, value = line.partition(separator)
        info.setdefault(key.strip().casefold(), value.strip())
    return info
