"""Reading ffprobe's JSON: streams, tags, packet counts, into a :class:`MediaInfo`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from agent import media_times
from agent.media_info import MediaInfo
from agent.media_places import parse_iso6709

# Tag names under which recorders and muxers store the capture place, first found wins.
_LOCATION_TAGS = ("location", "location-eng", "com.apple.quicktime.location.ISO6709")
# A tag naming the recorder's serial number ends in one of these (case-insensitive):
# serial_number, com.apple.quicktime.camera.serialnumber, device_serial...
_SERIAL_SUFFIXES = ("serial_number", "serialnumber", "serial")


def read_probe(probe: dict[str, Any], cut: Callable[[], str | None]) -> MediaInfo:
    """The clip as ffprobe read it. ``cut()`` says why the file's own structure ends
    early (media_integrity), asked only when no stream could be read."""
    streams: list[dict[str, Any]] = probe.get("streams") or []
    fmt: dict[str, Any] = probe.get("format") or {}
    pictures = [s for s in streams if _is_picture(s)]
    video = next((s for s in streams if s.get("codec_type") == "video" and s not in pictures), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    container = _text(fmt, "format_name")
    tags: dict[str, str] = {str(k): str(v) for k, v in (fmt.get("tags") or {}).items()}
    for stream in (video, audio):
        for key, value in ((stream or {}).get("tags") or {}).items():
            tags.setdefault(str(key), str(value))
    image = video is not None and audio is None and _is_still(container)
    kind = "image" if image else "video" if video else "audio" if audio else None
    duration = None if image else _duration_ms(fmt.get("duration"))
    if duration is None and not image:
        durations = [_duration_ms(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    _tag, start = media_times.recorded_start(tags)
    location = next((tags[k] for k in _LOCATION_TAGS if parse_iso6709(tags.get(k))), None)
    if image:
        integrity, problem = "ok", None
    elif video is None and audio is None:  # (a cover picture alone is no clip)
        why = cut()
        if why is not None:
            integrity, problem = "truncated", f"truncated: {why} ({len(streams)} streams)"
        else:
            integrity = "not_media"
            problem = f"no audio or video stream ({len(streams)} streams): not a playable clip"
    else:
        problem = _packets_missing(video, audio)
        integrity = "ok" if problem is None else "truncated"
    return MediaInfo(
        integrity,
        problem=problem,
        kind=kind,
        duration_ms=duration,
        codec=_text(video, "codec_name"),
        audio_codec=_text(audio, "codec_name"),
        width=int_or_none((video or {}).get("width")),
        height=int_or_none((video or {}).get("height")),
        frame_rate=None if image else _rate(video),
        creation_time=next(
            (tags[k] for k in media_times.CREATION_TAGS if k in tags), tags.get("creation_time")
        ),
        start=start,
        end=media_times.end_of(start, duration),
        location=location,
        location_source="tag" if location else None,
        recorder_serial=_serial(tags),
        container=container,
    )


def _is_picture(stream: dict[str, Any]) -> bool:
    """A cover picture of an audio file (not a video of its own)."""
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _is_still(container: str | None) -> bool:
    """Read by one of ffprobe's picture demuxers: a photo, not a clip."""
    return container is not None and (container == "image2" or container.endswith("_pipe"))


def _packets_missing(video: dict[str, Any] | None, audio: dict[str, Any] | None) -> str | None:
    for stream in (video, audio):
        if stream is None:
            continue
        kind = stream.get("codec_type")
        read = int_or_none(stream.get("nb_read_packets"))
        promised = int_or_none(stream.get("nb_frames"))
        if read == 0:
            return f"truncated: no {kind} packet can be read"
        if read is not None and promised is not None and read < promised:
            return f"truncated: {read} of {promised} {kind} packets can be read"
    return None


def _rate(video: dict[str, Any] | None) -> str | None:
    """The video's frame rate as a reduced fraction ("15/1", "30000/1001")."""
    for key in ("avg_frame_rate", "r_frame_rate"):
        text = _text(video, key)
        try:
            rate = Fraction(text) if text else None
        except (ValueError, ZeroDivisionError):
            rate = None
        if rate is not None and rate > 0:
            return f"{rate.numerator}/{rate.denominator}"
    return None


def _serial(tags: dict[str, str]) -> str | None:
    for key, value in tags.items():
        if key.casefold().endswith(_SERIAL_SUFFIXES) and value.strip():
            return value.strip()
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


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(stream: dict[str, Any] | None, key: str) -> str | None:
    value = (stream or {}).get(key)
    return str(value) if value is not None else None
