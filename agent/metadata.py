"""What ffprobe says about a clip: duration, codecs, capture time and place, readability.

A broken clip is a fact to record, not an error: :func:`probe_media` returns
``readable=False`` with the reason for every clip ffprobe cannot fully read, and raises
only when ffprobe itself is missing. The exit code alone is not enough (see
docs/notes): a 100-byte stub exits 0 with no streams, and a truncated faststart file exits
0 with its full duration, caught only by counting the packets that can really be read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import ffmpeg

# Tag names under which recorders and muxers store the capture place, first found wins.
# "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5648fc8821c0] ": the address differs on every run.
_CONTEXT_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
_LOCATION_TAGS = ("location", "location-eng", "com.apple.quicktime.location.ISO6709")


class FfprobeMissingError(RuntimeError):
    """ffprobe is not installed, so no clip can be probed."""

    def __init__(self) -> None:
        super().__init__(
            "ffprobe was not found: install ffmpeg (apt-get install -y ffmpeg) and restart"
        )


@dataclass(frozen=True)
class MediaInfo:
    """ffprobe's view of one file. Times and places are kept as the file spells them."""

    readable: bool
    problem: str | None = None
    duration_ms: int | None = None
    codec: str | None = None  # video codec
    audio_codec: str | None = None
    creation_time: str | None = None
    location: str | None = None  # ISO 6709, e.g. "+31.2304+121.4737/"
    width: int | None = None
    height: int | None = None

    def as_leaf_body(self) -> dict[str, int | str | bool | None]:
        """The ``media`` object of a ``clip.ingested`` leaf (ledger JSON forbids floats)."""
        return {
            "duration_ms": self.duration_ms,
            "codec": self.codec,
            "audio_codec": self.audio_codec,
            "creation_time": self.creation_time,
            "location": self.location,
            "readable": self.readable,
            "problem": self.problem,
        }


def probe_media(path: Path) -> MediaInfo:
    """Probe ``path`` with ffprobe, reading every packet; never raises for a bad clip."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return MediaInfo(readable=False, problem=f"cannot be opened: {exc.strerror}")
    if size == 0:
        return MediaInfo(readable=False, problem="empty file (0 bytes)")
    try:
        # "file:" and an absolute path: a name starting with "-" or holding "proto:" is
        # read as a plain file, never as an option or a protocol.
        name = "file:" + os.path.abspath(os.fspath(path))
        probe = ffmpeg.probe(name, v="error", count_packets=None)
    except FileNotFoundError:
        raise FfprobeMissingError() from None
    except ffmpeg.Error as exc:
        return MediaInfo(readable=False, problem=f"ffprobe cannot read it: {_reason(exc, name)}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return MediaInfo(readable=False, problem=f"ffprobe output not understood: {exc}")
    return _media_info(probe)


def _media_info(probe: dict[str, Any]) -> MediaInfo:
    streams: list[dict[str, Any]] = probe.get("streams") or []
    fmt: dict[str, Any] = probe.get("format") or {}
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    tags: dict[str, str] = {str(k): str(v) for k, v in (fmt.get("tags") or {}).items()}
    for stream in (video, audio):
        for key, value in ((stream or {}).get("tags") or {}).items():
            tags.setdefault(str(key), str(value))
    duration = _duration_ms(fmt.get("duration"))
    if duration is None:
        durations = [_duration_ms(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    problem = _problem(video, audio, len(streams))
    return MediaInfo(
        readable=problem is None,
        problem=problem,
        duration_ms=duration,
        codec=_text(video, "codec_name"),
        audio_codec=_text(audio, "codec_name"),
        creation_time=tags.get("creation_time"),
        location=next((tags[k] for k in _LOCATION_TAGS if k in tags), None),
        width=_int((video or {}).get("width")),
        height=_int((video or {}).get("height")),
    )


def _problem(
    video: dict[str, Any] | None, audio: dict[str, Any] | None, stream_count: int
) -> str | None:
    if video is None and audio is None:
        return f"no audio or video stream ({stream_count} streams): not a playable clip"
    for stream in (video, audio):
        if stream is None:
            continue
        kind = stream.get("codec_type")
        read = _int(stream.get("nb_read_packets"))
        promised = _int(stream.get("nb_frames"))
        if read == 0:
            return f"truncated: no {kind} packet can be read"
        if read is not None and promised is not None and read < promised:
            return f"truncated: {read} of {promised} {kind} packets can be read"
    return None


def _duration_ms(value: Any) -> int | None:
    # Decimal, not float: the value goes into ledger leaves, and must not depend on rounding
    # of binary floating point.
    try:
        seconds = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not seconds.is_finite() or seconds < 0:
        return None
    return int((seconds * 1000).to_integral_value(rounding=ROUND_HALF_UP))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(stream: dict[str, Any] | None, key: str) -> str | None:
    value = (stream or {}).get(key)
    return str(value) if value is not None else None


def _reason(error: Any, name: str) -> str:
    """ffprobe's messages without the run-specific parts (pointer addresses, our path),
    so the same broken clip always gets the same problem text in the ledger."""
    stderr = bytes(getattr(error, "stderr", b"") or b"").decode("utf-8", "replace")
    reasons: list[str] = []
    for line in stderr.splitlines():
        line = _CONTEXT_PREFIX.sub("", line.replace(name + ": ", "")).strip()
        if line and line not in reasons:
            reasons.append(line)
    return "; ".join(reasons[-2:]) if reasons else "ffprobe failed without a message"
