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
import subprocess
import threading
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

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


# ffprobe reads every packet (-count_packets): allow a base time plus time per byte, so a
# clip ffprobe cannot finish (a hostile file, a failing disk) is recorded, not waited on.
PROBE_BASE_SECONDS = 20.0
PROBE_BYTES_PER_SECOND = 50 * 1024 * 1024
# When the station is stopping, a probe gets this much longer at most.
PROBE_STOP_GRACE_SECONDS = 3.0
_POLL_SECONDS = 0.1
_MAX_OUTPUT = 16 * 1024 * 1024


def probe_timeout(size: int) -> float:
    """Seconds a probe of a ``size``-byte clip may take (20 s + 1 s per 50 MiB)."""
    return PROBE_BASE_SECONDS + size / PROBE_BYTES_PER_SECOND


class ProbeStopped(Exception):
    """The station was stopping and the probe did not finish in its grace time."""


def probe_media(
    path: Path,
    *,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    ffprobe: str = "ffprobe",
) -> MediaInfo:
    """Probe ``path`` with ffprobe, reading every packet; never raises for a bad clip.

    ffprobe runs as a child process with a deadline (:func:`probe_timeout` unless
    ``timeout`` is given): a probe that does not finish is killed and the clip recorded as
    not readable, with that reason. ``stop`` set while it runs gives it
    ``PROBE_STOP_GRACE_SECONDS`` more, then :class:`ProbeStopped` is raised.
    """
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return MediaInfo(readable=False, problem=f"cannot be opened: {exc.strerror}")
    if size == 0:
        return MediaInfo(readable=False, problem="empty file (0 bytes)")
    limit = probe_timeout(size) if timeout is None else timeout
    # "file:" and an absolute path: a name starting with "-" or holding "proto:" is
    # read as a plain file, never as an option or a protocol.
    name = "file:" + os.path.abspath(os.fspath(path))
    command = [ffprobe, "-v", "error", "-count_packets", "-show_format", "-show_streams"]
    command += ["-of", "json", name]
    try:
        code, out, err = _run(command, limit, stop)
    except FileNotFoundError:
        raise FfprobeMissingError() from None
    if code is None:
        return MediaInfo(
            readable=False, problem=f"ffprobe did not finish within {limit:.3g} s: not probed"
        )
    if code != 0:
        return MediaInfo(readable=False, problem=f"ffprobe cannot read it: {_reason(err, name)}")
    try:
        probe = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return MediaInfo(readable=False, problem=f"ffprobe output not understood: {exc}")
    if not isinstance(probe, dict):
        return MediaInfo(readable=False, problem="ffprobe output not understood: not an object")
    return _media_info(probe)


def _run(
    command: list[str], limit: float, stop: threading.Event | None
) -> tuple[int | None, bytes, bytes]:
    """Run ``command``; (exit code, stdout, stderr), exit code None when it was killed at
    its deadline. Raises :class:`ProbeStopped` when ``stop`` cut it short."""
    deadline = time.monotonic() + limit
    stopping_at: float | None = None
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C is the station's to handle, not ffprobe's
    ) as child:
        while True:
            now = time.monotonic()
            if stop is not None and stop.is_set() and stopping_at is None:
                stopping_at = now + PROBE_STOP_GRACE_SECONDS
            until = min(deadline, stopping_at or deadline)
            try:
                out, err = child.communicate(timeout=min(_POLL_SECONDS, max(0.0, until - now)))
                return child.returncode, out[:_MAX_OUTPUT], err[-65536:]
            except subprocess.TimeoutExpired:
                if time.monotonic() < until:
                    continue
            child.kill()
            child.communicate()
            if stopping_at is not None and stopping_at <= deadline:
                raise ProbeStopped("the station stopped while ffprobe ran")
            return None, b"", b""


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


def _reason(error_output: bytes, name: str) -> str:
    """ffprobe's messages without the run-specific parts (pointer addresses, our path),
    so the same broken clip always gets the same problem text in the ledger."""
    stderr = error_output.decode("utf-8", "replace")
    reasons: list[str] = []
    for line in stderr.splitlines():
        line = _CONTEXT_PREFIX.sub("", line.replace(name + ": ", "")).strip()
        if line and line not in reasons:
            reasons.append(line)
    return "; ".join(reasons[-2:]) if reasons else "ffprobe failed without a message"
