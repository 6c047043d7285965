"""A docked recorder volume: who it is (device-info file) and what footage it holds.

The scan never follows a symbolic link and never opens anything but folders and the
device-info file: links, pipes, sockets and device nodes are reported as refusals, so a
hostile volume can neither point the copy at files outside itself nor block it on a FIFO.
Every folder and the device-info file are opened relative to the folder above them, with
``O_NOFOLLOW`` on each name, starting from the volume root (:mod:`docking.walk`). Names
are kept as raw bytes end to end, so a name that is not UTF-8 is copied and recorded
exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from config.common import printable
from docking.errors import NotARecorderError, VolumeError, VolumeNotFoundError
from docking.names import display_path, path_b64
from docking.profiles import FootageKind, RecorderProfile, get_profile, load_profiles
from docking.profiles import profile_for_model as _profile_for_model
from docking.walk import Unreadable, read_casefold, walk

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
        refusals: list[tuple[bytes, str]] = []
        try:
            root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise VolumeError(
                f"cannot list the volume {str(self.root)!r} ({exc.strerror}); "
                "check that it is mounted and readable"
            ) from None
        try:
            walk(root_fd, str(self.root), regular, refusals)
        finally:
            os.close(root_fd)
        matcher = self.profile.footage_matcher()
        footage = any(matcher.match(os.fsdecode(rel)) for rel, _st in regular)
        layout: Layout = "recorder" if footage else "plain"
        files = [self._footage(rel, st) for rel, st in regular]
        refused = [Refusal(rel, reason) for rel, reason in refusals]
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
    model = _shown(_lookup(info, default.model_key))
    chosen = _profile_for_model(model, default)
    serial = _lookup(info, chosen.serial_key)
    serial_source: SerialSource = "device-info"
    if serial is None or not _SERIAL_OK.match(serial) or printable(serial) != serial:
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
        firmware=_shown(_lookup(info, chosen.firmware_key)),
        officer=_shown(_lookup(info, chosen.officer_key)),
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


def _shown(value: str | None) -> str | None:
    """A device-info value fit to be an identity (control or format characters, such as
    ESC or a right-to-left override, make a name that reads differently than it is)."""
    return value if value is None or printable(value) == value else None


def _lookup(info: dict[str, str], key: str) -> str | None:
    value = info.get(key.casefold())
    return value or None


def _read_device_info(
    root: Path, default: RecorderProfile
) -> tuple[dict[str, str], bytes | None, str | None]:
    # Each candidate path is read with the separator of the profile that names it (the
    # default profile first), so a recorder of another family is recognised by its model.
    separators = {c: default.device_info_separator for c in default.device_info}
    for other in load_profiles().values():
        for c in other.device_info:
            separators.setdefault(c, other.device_info_separator)
    candidates = list(separators)
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return {}, None, None  # the scan says why the volume cannot be read
    try:
        for candidate in candidates:
            try:
                found = read_casefold(root_fd, os.fsencode(candidate), DEVICE_INFO_MAX_BYTES)
            except Unreadable as exc:
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
                return _parse_key_values(raw, separators[candidate]), rel, None
    finally:
        os.close(root_fd)
    return {}, None, None


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
