"""Recorder profiles: where a recorder family keeps footage and how it names files.

Profiles are data, kept in ``config/recorders.toml`` beside the station config and read
with :mod:`importlib.resources`, so that a new recorder family needs no code change: its
footage globs, name pattern and time format, device-info keys, the marks of "important"
clips, how its clock is read at docking, how its sidecars pair with clips, and how strict
its wipe must be. Each profile also describes its own file names (``layout``), which the
simulated recorder writes and a test reads back through the rest of the profile.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from docking.errors import ProfileError
from docking.profile_fields import (
    SAMPLE_TIME,
    ClockRule,
    ClockSyncFile,
    Layout,
    NoClock,
    check_time_format,
)

PROFILES_RESOURCE = "recorders.toml"

FootageKind = Literal["video", "audio", "photo", "sidecar", "other"]
WipePolicy = Literal["never", "after_verified", "after_central_confirmed"]
SidecarRule = Literal["stem", "stem-same-folder", "none"]
ClockMethod = Literal["device-info", "newest-file", "none"]

# From the most to the least permissive: a profile may only move a station's policy right.
_WIPE_ORDER: tuple[WipePolicy, ...] = ("after_verified", "after_central_confirmed", "never")
_PRIMARY_ORDER: tuple[FootageKind, ...] = ("video", "audio", "photo")


class UsbId(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor_id: int = Field(ge=0, le=0xFFFF, description="USB idVendor.")
    product_id: int = Field(ge=0, le=0xFFFF, description="USB idProduct.")
    example: bool = Field(
        default=False, description="True when the ids are placeholders, not a real device's."
    )


class RecorderProfile(BaseModel):
    """One recorder family, as described by a ``[profiles.NAME]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Profile key in recorders.toml.")
    model: str = Field(description="Display name of the recorder family.")
    models: tuple[str, ...] = Field(
        default=(), description="Device-info model names that select this profile."
    )
    usb: tuple[UsbId, ...] = Field(default=(), description="USB ids of the family.")
    footage: tuple[str, ...] = Field(min_length=1, description="Globs of footage files.")
    video: frozenset[str] = Field(description="Video file extensions.")
    audio: frozenset[str] = Field(description="Audio file extensions.")
    photo: frozenset[str] = Field(description="Photo file extensions.")
    sidecar: frozenset[str] = Field(description="Sidecar (GPS, log) file extensions.")
    device_info: tuple[str, ...] = Field(description="Candidate device-info file paths.")
    device_info_separator: str = Field(min_length=1, description="Key/value separator.")
    serial_key: str = Field(description="Device-info key of the serial number.")
    model_key: str = Field(description="Device-info key of the model name.")
    firmware_key: str = Field(description="Device-info key of the firmware version.")
    officer_key: str = Field(description="Device-info key of the officer id.")
    time_pattern: str = Field(description="Regex on the file name; group 1 is the time.")
    time_format: str = Field(description="strptime format of the time group.")
    important: tuple[str, ...] = Field(
        default=(),
        description="Regexes (case-insensitive) searched in a file's path below the volume "
        "root; a match marks a clip the officer flagged as important.",
    )
    clock: ClockRule = Field(
        default=NoClock(method="none"),
        description='How the recorder\'s clock is read at docking: { method = "device-info", '
        'key, format }, { method = "newest-file" } or "none".',
    )
    clock_sync_file: ClockSyncFile | None = Field(
        default=None,
        description="A time-sync file the station may write to the recorder; off unless set.",
    )
    wipe: WipePolicy | None = Field(
        default=None,
        description="When files may be removed from this recorder; unset follows the "
        "station's docking.wipe, and a profile can only make it stricter.",
    )
    sidecar_of: SidecarRule = Field(
        default="stem-same-folder",
        description="How a sidecar (GPS track, log) finds its clip: the same stem in the same "
        "folder, the same stem in any folder ('stem'), or not at all ('none').",
    )
    layout: Layout | None = Field(
        default=None,
        description="How this recorder names its files; the simulated recorder writes it.",
    )

    @field_validator("video", "audio", "photo", "sidecar", mode="after")
    @classmethod
    def _lower_extensions(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(ext.lower().lstrip(".") for ext in value)

    @field_validator("time_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("needs one group holding the time text")
        return value

    _time_format = field_validator("time_format")(check_time_format)

    @field_validator("important")
    @classmethod
    def _check_important(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("clock", mode="before")
    @classmethod
    def _clock_by_name(cls, value: object) -> object:
        return {"method": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_layout(self) -> RecorderProfile:
        """The layout's names must be read back by this very profile (kind, time, mark)."""
        layout = self.layout
        if layout is None:
            return self
        primaries = [("video", layout.video), ("audio", layout.audio), ("photo", layout.photo)]
        for kind, template in primaries:
            if template is None:
                continue
            marked = self.important and "{mark" in template
            for important in (False, True) if marked else (False,):
                try:
                    self._check_name(layout, template, kind, important)
                except ValueError as exc:
                    raise ValueError(f"layout.{kind}: {exc}") from None
        return self

    def _check_name(self, layout: Layout, template: str, kind: str, important: bool) -> None:
        path = layout.render(template, mark=layout.mark if important else "")
        folder, _, name = path.rpartition("/")
        if self.kind_of(name) != kind:
            raise ValueError(f"{path!r} is not a {kind} file by this profile's extensions")
        if not self.footage_matcher().match(path):
            raise ValueError(f"{path!r} is outside the footage globs")
        if self.recorder_time(name) != SAMPLE_TIME.isoformat():
            raise ValueError(f"time_pattern and time_format do not read the time in {name!r}")
        if self.is_important(path) != important:
            state = "is not" if important else "is"
            raise ValueError(f"{path!r} {state} marked important by the important patterns")
        for sidecar in layout.sidecars if kind == "video" else ():
            side = layout.render(sidecar, folder=folder, stem=name.rpartition(".")[0] or name)
            if self.kind_of(side) != "sidecar":
                raise ValueError(f"sidecar {side!r} is not a sidecar by this profile's extensions")

    def kind_of(self, name: str) -> FootageKind:
        """The kind of a file, from its extension (``other`` when the profile lists none)."""
        _, dot, ext = name.rpartition(".")
        ext = ext.lower() if dot else ""
        if ext in self.video:
            return "video"
        if ext in self.audio:
            return "audio"
        if ext in self.photo:
            return "photo"
        if ext in self.sidecar:
            return "sidecar"
        return "other"

    def recorder_time(self, name: str) -> str | None:
        """The recorder's clock reading in a file name, as naive ISO text, or None.

        Recorders stamp names with their local clock and no zone, so the result has no
        offset on purpose: it is what the recorder believed, kept beside the station's
        own UTC time and never instead of it.
        """
        match = _compiled(self.time_pattern).search(name)
        if match is None:
            return None
        try:
            return datetime.strptime(match.group(1), self.time_format).isoformat()
        except ValueError:
            return None

    def footage_matcher(self) -> re.Pattern[str]:
        """One case-insensitive regex matching every footage glob (FAT ignores case)."""
        return _compiled("|".join(f"(?:{_glob_to_regex(g)})" for g in self.footage), re.I)

    def is_important(self, rel_path: str | bytes) -> bool:
        """Whether the officer marked this file important (a mark in its name or folder)."""
        text = os.fsdecode(rel_path) if isinstance(rel_path, bytes) else rel_path
        return any(_compiled(p, re.I).search(text) for p in self.important)

    def wipe_policy(self, station: WipePolicy) -> WipePolicy:
        """The stricter of the station's policy and this profile's (never the looser)."""
        if self.wipe is None:
            return station
        return max(station, self.wipe, key=_WIPE_ORDER.index)

    def pair_sidecars(self, rel_paths: Iterable[bytes]) -> dict[bytes, bytes]:
        """Each sidecar's clip: ``{sidecar path: clip path}`` by ``sidecar_of``.

        Stems compare case-insensitively (FAT). A clip in the sidecar's own folder wins;
        under ``stem`` a single clip elsewhere is taken; several candidates in other
        folders leave the sidecar unpaired rather than guessed. Among files of one stem
        in one folder, video is preferred over audio over photo.
        """
        if self.sidecar_of == "none":
            return {}
        by_stem: dict[bytes, list[tuple[int, bytes, bytes]]] = {}
        sidecars: list[tuple[bytes, bytes, bytes]] = []
        for rel in rel_paths:
            folder, _, name = rel.rpartition(b"/")
            stem = name.rpartition(b".")[0] or name
            key = os.fsdecode(stem).casefold().encode("utf-8", "surrogateescape")
            kind = self.kind_of(os.fsdecode(name))
            if kind == "sidecar":
                sidecars.append((rel, folder, key))
            elif kind in _PRIMARY_ORDER:
                by_stem.setdefault(key, []).append((_PRIMARY_ORDER.index(kind), folder, rel))
        pairs: dict[bytes, bytes] = {}
        for rel, folder, key in sidecars:
            candidates = sorted(by_stem.get(key, []))
            here = [c for c in candidates if c[1] == folder]
            if here:
                pairs[rel] = here[0][2]
            elif self.sidecar_of == "stem" and len({c[1] for c in candidates}) == 1:
                pairs[rel] = candidates[0][2]
        return pairs


@cache
def _compiled(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _glob_to_regex(glob: str) -> str:
    """``**`` spans folders, ``*`` and ``?`` stay inside one name; anchored both ends."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "^" + "".join(out) + "$"


def parse_profiles(text: str, source: str = PROFILES_RESOURCE) -> dict[str, RecorderProfile]:
    """Validate a recorders.toml text; raise :class:`ProfileError` naming each bad key."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc}); fix the file") from None
    tables = data.get("profiles")
    if not isinstance(tables, dict) or not tables:
        raise ProfileError(f"{source}: add at least one [profiles.NAME] table")
    profiles: dict[str, RecorderProfile] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: profiles.{name} must be a table")
        try:
            profiles[name] = RecorderProfile.model_validate({**table, "name": name})
        except ValidationError as exc:
            problems = "; ".join(
                ".".join(["profiles", name, *(str(p) for p in err["loc"])]) + f": {err['msg']}"
                for err in exc.errors()
            )
            raise ProfileError(f"{source}: fix these keys: {problems}") from None
    return profiles


@cache
def load_profiles() -> dict[str, RecorderProfile]:
    """The profiles shipped in the ``config`` package (read once per process)."""
    text = resources.files("config").joinpath(PROFILES_RESOURCE).read_text("utf-8")
    return parse_profiles(text)


def get_profile(name: str) -> RecorderProfile:
    """The profile called ``name``; :class:`ProfileError` lists the known ones otherwise."""
    profiles = load_profiles()
    try:
        return profiles[name]
    except KeyError:
        known = ", ".join(sorted(profiles))
        raise ProfileError(
            f"unknown recorder profile {name!r}: set docking.recorder_profile to one of {known}"
        ) from None


def profile_for_model(model: str | None, default: RecorderProfile) -> RecorderProfile:
    """The profile listing ``model`` (case-insensitive), else ``default``."""
    if model:
        wanted = model.strip().casefold()
        for profile in load_profiles().values():
            if any(m.casefold() == wanted for m in profile.models):
                return profile
    return default


def profile_for_usb(
    vendor_id: int, product_id: int, *, profiles: Mapping[str, RecorderProfile] | None = None
) -> RecorderProfile | None:
    """The profile claiming these USB ids; example ids never match a real device.

    ``profiles`` defaults to the shipped ones (a test may pass its own table).
    """
    for profile in (load_profiles() if profiles is None else profiles).values():
        for usb in profile.usb:
            if not usb.example and (usb.vendor_id, usb.product_id) == (vendor_id, product_id):
                return profile
    return None
