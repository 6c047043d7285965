"""What a clip is, as recorded: :class:`MediaInfo`, the ``media`` object of its
``clip.ingested`` leaf and its ``clip_media`` catalogue row (docs/media.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.media_places import Track

#: ok: every audio/video packet the file promises can be read (a still photo too);
#: truncated: the file ends before its own index or structure does; undecodable: it
#: looks like media but ffprobe cannot read it, did not finish, or a full decode failed;
#: not_media: no audio, video or picture in it.
INTEGRITY_CLASSES = ("ok", "truncated", "undecodable", "not_media")


@dataclass(frozen=True)
class MediaInfo:
    """ffprobe's view of one file. ``integrity`` is one of :data:`INTEGRITY_CLASSES`
    (None: not probed, the station was stopping); ``problem`` says why it is not ok."""

    integrity: str | None
    problem: str | None = None
    kind: str | None = None  # "video", "audio" or "image" (a still photo)
    duration_ms: int | None = None
    codec: str | None = None  # video codec
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: str | None = None  # a rational, "30000/1001": no floats in leaves
    creation_time: str | None = None  # the tag, as the file spells it
    start: str | None = None  # recorder's clock: UTC "...Z", or naive local (media_times)
    end: str | None = None  # start + duration
    location: str | None = None  # ISO 6709, e.g. "+31.2304+121.4737/"
    location_source: str | None = None  # "tag", "nmea-stream" or "nmea-sidecar"
    track: Track | None = None
    recorder_serial: str | None = None
    container: str | None = None  # ffprobe's format_name

    @property
    def readable(self) -> bool:
        """Fully readable (class ``ok``): what ingest, wipe and the outcome report check."""
        return self.integrity == "ok"

    def as_leaf_body(self) -> dict[str, Any]:
        """The ``media`` object of a ``clip.ingested`` leaf (ledger JSON forbids floats)."""
        return {
            "integrity": self.integrity,
            "readable": self.readable,
            "problem": self.problem,
            "kind": self.kind,
            "duration_ms": self.duration_ms,
            "codec": self.codec,
            "audio_codec": self.audio_codec,
            "width": self.width,
            "height": self.height,
            "frame_rate": self.frame_rate,
            "creation_time": self.creation_time,
            "start": self.start,
            "end": self.end,
            "location": self.location,
            "location_source": self.location_source,
            "track": self.track.as_leaf_body() if self.track is not None else None,
            "recorder_serial": self.recorder_serial,
            "container": self.container,
        }
