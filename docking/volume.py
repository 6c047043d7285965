"""A docked recorder volume: who it is (device-info file) and what footage it holds.

The scan never follows a symbolic link and never opens anything but the device-info file:
links, pipes, sockets and device nodes are reported as refusals, so a hostile volume can
neither point the copy at files outside itself nor block it on a FIFO. Names are kept as
raw bytes end to end, so a name that is not UTF-8 is copied and recorded exactly.
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
        _walk(os.fsencode(self.root), b"", regular, refused)
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


def _walk(
    root: bytes,
    prefix: bytes,
    regular: list[tuple[bytes, os.stat_result]],
    refused: list[Refusal],
) -> None:
    try:
        with os.scandir(os.path.join(root, prefix) if prefix else root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        if not prefix:
            raise VolumeError(
                f"cannot list the volume {os.fsdecode(root)!r} ({exc.strerror}); "
                "check that it is mounted and readable"
            ) from None
        refused.append(Refusal(prefix, f"folder cannot be read ({exc.strerror}); not copied"))
        return
    for entry in entries:
        rel = prefix + b"/" + entry.name if prefix else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            refused.append(Refusal(rel, f"cannot be examined ({exc.strerror}); not copied"))
            continue
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            _walk(root, rel, regular, refused)
        elif stat.S_ISREG(mode):
            regular.append((rel, st))
        else:
            refused.append(Refusal(rel, _refusal_reason(entry.path, mode)))


def _refusal_reason(path: bytes, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            target = display_path(os.readlink(path))
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
    for candidate in candidates:
        rel = _find_casefold(os.fsencode(root), os.fsencode(candidate))
        if rel is None:
            continue
        try:
            raw = _read_regular(os.path.join(os.fsencode(root), rel))
        except OSError as exc:
            why = (
                "it is a symbolic link (not followed)" if exc.errno == errno.ELOOP else exc.strerror
            )
            return {}, rel, f"device-info file {display_path(rel)!r} not read: {why}"
        return _parse_key_values(raw, default.device_info_separator), rel, None
    return {}, None, None


def _find_casefold(root: bytes, rel: bytes) -> bytes | None:
    """Find ``rel`` below ``root`` ignoring case, as FAT does; never through a link."""
    current, found = root, b""
    for part in rel.split(b"/"):
        try:
            with os.scandir(current) as it:
                names = [e.name for e in it if e.name.lower() == part.lower()]
        except OSError:
            return None
        if not names:
            return None
        current = os.path.join(current, names[0])
        found = found + b"/" + names[0] if found else names[0]
    return found


def _read_regular(path: bytes) -> bytes:
    # O_NOFOLLOW: a link is never followed; O_NONBLOCK: a FIFO cannot hang the open.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return os.read(fd, DEVICE_INFO_MAX_BYTES)
    finally:
        os.close(fd)


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
