"""The parts of a recorder profile that are tables of their own: how its clock is read,
the time-sync file the station may write, and the layout of its file names."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A time every format and layout is tried on when the profiles are loaded.
SAMPLE_TIME = datetime(2026, 11, 22, 8, 30, 15)


def check_time_format(value: str) -> str:
    """A strftime/strptime format that keeps the date and the time to the second."""
    try:
        back = datetime.strptime(SAMPLE_TIME.strftime(value), value)
    except ValueError as exc:
        raise ValueError(f"is not a usable time format ({exc})") from None
    if back != SAMPLE_TIME:
        raise ValueError(
            "must hold the date and the time to the second (%Y %m %d %H %M %S or equivalents)"
        )
    return value


def relative_path(value: str) -> str:
    """A path below a volume's root: no leading ``/``, no ``..``, no control characters."""
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError("must be a relative path below the volume root, without '..'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not hold control characters")
    return value


class DeviceInfoClock(BaseModel):
    """The recorder writes its clock into its device-info file when it is connected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["device-info"] = Field(description="Read the clock from device-info.")
    key: str = Field(min_length=1, description="Device-info key holding the clock.")
    format: str = Field(description="strptime format of its value (local clock, no zone).")

    _format = field_validator("format")(check_time_format)


class NewestFileClock(BaseModel):
    """The recorder's clock as its newest file shows it (see :mod:`docking.clock`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["newest-file"] = Field(
        description="The time in the newest file's name, moved on to its mtime when the "
        "mtime is in the recorder's own frame."
    )
    max_file_seconds: int = Field(
        default=3600,
        ge=0,
        le=86400,
        description="Longest a recorder writes one file: the newest file's mtime counts as "
        "the recorder's clock only when it falls this many seconds or less after its name "
        "time (otherwise the volume shows mtimes in another frame and only the name counts).",
    )


class NoClock(BaseModel):
    """The recorder's clock is not read; no clock offset is recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["none"] = Field(description="Do not read the clock.")


ClockRule = Annotated[DeviceInfoClock | NewestFileClock | NoClock, Field(discriminator="method")]


class ClockSyncFile(BaseModel):
    """A file the station may write so that the recorder sets its clock from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Where the recorder reads it, relative to the volume root.")
    format: str = Field(
        description="strftime format of the whole file text, from the station's local time."
    )

    _path = field_validator("path")(relative_path)
    _format = field_validator("format")(check_time_format)

    def content(self, station_local: datetime) -> bytes:
        """The file's bytes for the station's local time (naive, as the recorder shows it)."""
        return station_local.strftime(self.format).encode("utf-8")


class Layout(BaseModel):
    """How the recorder names its files, as ``str.format`` templates of a path.

    Fields: ``time`` (the recorder's local clock, a datetime: ``{time:%Y%m%d}``), ``seq``
    (file number), ``device`` (serial), ``officer``, ``mark`` (the profile's important
    mark on important files, else empty); sidecars also get ``folder`` and ``stem`` of
    their clip.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str = Field(description="Path template of a video clip.")
    audio: str | None = Field(default=None, description="Path template of an audio recording.")
    photo: str | None = Field(default=None, description="Path template of a photo.")
    sidecars: tuple[str, ...] = Field(
        default=(), description="Path templates of the sidecar files written with each clip."
    )
    mark: str = Field(default="", description="What {mark} becomes in an important file.")

    def render(self, template: str, **fields: object) -> str:
        """One path of this layout; :class:`ValueError` when the template is unusable."""
        values: dict[str, object] = {
            "time": SAMPLE_TIME, "seq": 1, "device": "DEV0001", "officer": "000123",
            "mark": "", "folder": "F", "stem": "S", **fields,
        }  # fmt: skip
        try:
            text = template.format(**values)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"template {template!r} cannot be filled ({exc!r})") from None
        return relative_path(text)
