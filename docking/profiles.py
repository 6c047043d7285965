"""Recorder profiles: where a recorder family keeps footage and how it names files.

Profiles are data, kept in ``config/recorders.toml`` beside the station config and read
with :mod:`importlib.resources`, so that a new recorder family needs no code change.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from docking.errors import ProfileError

PROFILES_RESOURCE = "recorders.toml"

FootageKind = Literal["video", "audio", "photo", "sidecar", "other"]


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
                f"profiles.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
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


def profile_for_usb(vendor_id: int, product_id: int) -> RecorderProfile | None:
    """The profile claiming these USB ids; example ids never match a real device."""
    for profile in load_profiles().values():
        for usb in profile.usb:
            if not usb.example and (usb.vendor_id, usb.product_id) == (vendor_id, product_id):
                return profile
    return None
