"""What ffprobe says about a clip: duration, codecs, capture time and place, and its
integrity class (``ok``, ``truncated``, ``undecodable``, ``not_media``; docs/media.md).

A broken clip is a fact to record, not an error: :func:`probe_media` returns its class
and the reason for every clip ffprobe cannot fully read, and raises only when ffprobe
itself is missing. The exit code alone is not enough: a 100-byte stub exits 0 with no
streams, and a truncated faststart file exits 0 with its full duration, caught only by
counting the packets that can really be read.

One ffprobe per clip (``-count_packets``: every packet is demuxed, none decoded). A
second process runs only for a clip with a subtitle or data stream (its NMEA track is
read, that stream alone) or when a full decode is asked for (``decode=True``); every
process shares the clip's one deadline and stops with the station.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.media_info import INTEGRITY_CLASSES, MediaInfo
from agent.media_integrity import read_structure
from agent.media_places import MAX_TRACK_BYTES, Track, nmea_track
from agent.media_streams import int_or_none, read_probe

# "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5648fc8821c0] ": the address differs on every run.
__all__ = [
    "INTEGRITY_CLASSES",
    "FfprobeMissingError",
    "MediaInfo",
    "ProbeStopped",
    "probe_media",
    "probe_timeout",
]

_CONTEXT_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
# Stream codecs that can carry NMEA sentences as text or bytes.
_TRACK_CODECS = frozenset({"mov_text", "subrip", "text", "ass", "webvtt", "bin_data"})


class FfprobeMissingError(RuntimeError):
    """ffprobe is not installed, so no clip can be probed."""

    def __init__(self) -> None:
        super().__init__(
            "ffprobe was not found: install ffmpeg (apt-get install -y ffmpeg) and restart"
        )


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
    ffmpeg: str = "ffmpeg",
    decode: bool = False,
    sidecar: Track | None = None,
) -> MediaInfo:
    """Probe ``path`` with ffprobe, reading every packet; never raises for a bad clip.

    ffprobe runs as a child process with a deadline (:func:`probe_timeout` unless
    ``timeout`` is given), shared by every process run for this clip: one that does not
    finish is killed and the clip classed ``undecodable`` ("did not finish"). ``stop``
    set while it runs gives it ``PROBE_STOP_GRACE_SECONDS`` more, then
    :class:`ProbeStopped` is raised. ``decode``: also decode every frame (ffmpeg to the
    null muxer); errors make the clip ``undecodable``. ``sidecar``: the GPS track of the
    recording's sidecar file (media_places.sidecar_track), the place when no tag or
    stream of the clip gives one.
    """
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return MediaInfo("not_media", problem=f"cannot be opened: {exc.strerror}")
    if size == 0:
        return MediaInfo("not_media", problem="empty file (0 bytes)")
    limit = probe_timeout(size) if timeout is None else timeout
    deadline = time.monotonic() + limit
    # "file:" and an absolute path: a name starting with "-" or holding "proto:" is
    # read as a plain file, never as an option or a protocol.
    name = "file:" + os.path.abspath(os.fspath(path))
    command = [ffprobe, "-v", "error", "-count_packets", "-show_format", "-show_streams"]
    command += ["-of", "json", name]
    code, out, err = _run_tool(command, deadline, stop)
    if code is None:
        return MediaInfo("undecodable", problem=_did_not_finish("ffprobe", limit))
    if code != 0:
        return _unreadable(path, f"ffprobe cannot read it: {_reason(err, name)}")
    try:
        probe = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _unreadable(path, f"ffprobe output not understood: {exc}")
    if not isinstance(probe, dict):
        return _unreadable(path, "ffprobe output not understood: not an object")
    info = read_probe(probe, lambda: read_structure(path).cut)
    streams: list[dict[str, Any]] = probe.get("streams") or []
    track = _stream_track(name, streams, deadline, stop, ffmpeg) or sidecar
    info = _placed(info, track)
    if decode and info.integrity == "ok" and info.kind in ("video", "audio"):
        info = _decoded(info, name, deadline, limit, stop, ffmpeg)
    return info


def _did_not_finish(tool: str, limit: float) -> str:
    return f"{tool} did not finish within {limit:.3g} s (killed): not fully read"


def _run_tool(
    command: list[str], deadline: float, stop: threading.Event | None
) -> tuple[int | None, bytes, bytes]:
    try:
        return _run(command, max(0.0, deadline - time.monotonic()), stop)
    except FileNotFoundError:
        raise FfprobeMissingError() from None


def _unreadable(path: Path, reason: str) -> MediaInfo:
    """ffprobe could not read it: truncated if its own structure ends early, undecodable
    if it looks like media, else not media at all."""
    structure = read_structure(path)
    if structure.cut is not None:
        return MediaInfo("truncated", problem=f"truncated: {structure.cut} ({reason})")
    if structure.container is not None:
        return MediaInfo(
            "undecodable", problem=f"{reason} (a {structure.container} file by its signature)"
        )
    return MediaInfo("not_media", problem=f"not a media file: {reason}")


def _stream_track(
    name: str,
    streams: list[dict[str, Any]],
    deadline: float,
    stop: threading.Event | None,
    ffmpeg: str,
) -> Track | None:
    """The NMEA track of the clip's first subtitle or data stream that holds one: that
    stream alone is copied out by ffmpeg (only clips that have such a stream)."""
    for stream in streams:
        if stream.get("codec_type") not in ("subtitle", "data"):
            continue
        if stream.get("codec_name") not in _TRACK_CODECS:
            continue
        index = int_or_none(stream.get("index"))
        if index is None:
            continue
        command = [ffmpeg, "-nostdin", "-v", "error", "-i", name, "-map", f"0:{index}"]
        # -fs: ffmpeg stops at the limit, so a hostile stream of gigabytes is not piped
        # into the station's memory.
        command += ["-c", "copy", "-fs", str(MAX_TRACK_BYTES), "-f", "data", "-"]
        try:
            code, out, _err = _run_tool(command, deadline, stop)
        except FfprobeMissingError:
            return None  # ffmpeg missing: the place is left unknown, the clip still probed
        if code is None:
            return None
        track = nmea_track(out[:MAX_TRACK_BYTES], "stream")
        if track is not None:
            return track
    return None


def _placed(info: MediaInfo, track: Track | None) -> MediaInfo:
    """The place: the ISO 6709 tag, else the track's first valid fix."""
    location, source = info.location, info.location_source
    if location is None and track is not None:
        location = track.location
        source = "nmea-stream" if track.source == "stream" else "nmea-sidecar"
    return replace(info, location=location, location_source=source, track=track)


def _decoded(
    info: MediaInfo,
    name: str,
    deadline: float,
    limit: float,
    stop: threading.Event | None,
    ffmpeg: str,
) -> MediaInfo:
    """Decode every frame (ffmpeg to the null muxer): any error makes it undecodable."""
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", name, "-f", "null", "-"]
    code, _out, err = _run_tool(command, deadline, stop)
    if code is None:
        return replace(info, integrity="undecodable", problem=_did_not_finish("ffmpeg", limit))
    if code != 0 or err.strip():
        reason = _reason(err, name) if err.strip() else f"ffmpeg exit code {code}"
        return replace(info, integrity="undecodable", problem=f"full decode failed: {reason}")
    return info


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


def _reason(error_output: bytes, name: str) -> str:
    """ffprobe's messages without the run-specific parts (pointer addresses, our path),
    so the same broken clip always gets the same problem text in the ledger."""
    stderr = error_output.decode("utf-8", "replace")
    reasons: list[str] = []
    for line in stderr.splitlines():
        line = _CONTEXT_PREFIX.sub("", line.replace(name + ": ", "")).strip()
        if line and line not in reasons and not line.startswith("Last message repeated"):
            reasons.append(line)
    return "; ".join(reasons[-2:]) if reasons else "ffprobe failed without a message"
