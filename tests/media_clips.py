"""Clips for the media tests, made by real ffmpeg from test patterns (lavfi testsrc2 and
sine, 1-2 s, 160x120), each one thing a recorder writes or leaves behind."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from docking.simulated import nmea_track, truncate_clip, write_audio, write_photo, write_stub

PLACE = (31.2304, 121.4737)  # Shanghai, People's Square
FIX_START = datetime(2026, 11, 22, 0, 30, 15, tzinfo=UTC)


def ffmpeg(*args: str) -> None:
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {done.stderr.decode(errors='replace')[-500:]}")


def clip(
    path: Path,
    *,
    seconds: int = 2,
    tags: dict[str, str] | None = None,
    faststart: bool = False,
    subtitles: Path | None = None,
) -> Path:
    """H.264 (15 fps) + AAC in MP4, with ``tags`` as the file's metadata (QuickTime keys
    too: ``-movflags use_metadata_tags``) and ``subtitles`` (an SRT file) as a mov_text
    stream."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=15:duration={seconds}"]
    args += ["-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=16000:duration={seconds}"]
    maps = ["-map", "0:v", "-map", "1:a"]
    if subtitles is not None:
        args += ["-i", os.fspath(subtitles)]
        maps += ["-map", "2:s", "-c:s", "mov_text"]
    args += [*maps, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "32k", "-fflags", "+bitexact"]
    for key, value in (tags or {}).items():
        args += ["-metadata", f"{key}={value}"]
    args += ["-movflags", "+use_metadata_tags" + ("+faststart" if faststart else "")]
    ffmpeg(*args, "-f", "mp4", os.fspath(path))
    return path


def nmea_subtitles(path: Path, seconds: int = 2) -> Path:
    """An SRT file whose cues are the $GPRMC sentences of a fixed place, one a second."""
    sentences = nmea_track(FIX_START, PLACE, seconds).splitlines()
    cues = [
        f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i + 1:02d},000\n{line}\n"
        for i, line in enumerate(sentences)
    ]
    path.write_text("\n".join(cues), encoding="ascii")
    return path


def sidecar_nmea(clip_path: Path, suffix: str = ".NMEA", seconds: int = 2) -> Path:
    """The recording's GPS track beside it, as recorders write it: a void fix while the
    receiver searches, then one valid fix a second."""
    body = "GPRMC,003014.00,V,,,,,,,221126,,,N"
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    void = f"${body}*{checksum:02X}\r\n"
    side = clip_path.with_suffix(suffix)
    side.write_text(void + nmea_track(FIX_START, PLACE, seconds), encoding="ascii")
    return side


def live_playlist(path: Path) -> Path:
    """A live HLS playlist (no ``#EXT-X-ENDLIST``) whose one segment never arrives:
    ffprobe reloads it and waits for the stream to go on, forever. Eighty bytes that
    make a real ffprobe hang."""
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nmissing.ts\n",
        encoding="ascii",
    )
    return path


def damaged(source: Path, dest: Path) -> Path:
    """``source`` with garbage over the middle of its media data: every packet is still
    where the index says (ffprobe counts them all), but the pictures do not decode."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 3
    noise = base64.b64decode(b"/////wAAAAH/////AAAAAf////8=") * 200
    data[middle : middle + len(noise)] = noise
    dest.write_bytes(bytes(data))
    return dest


def make_all(folder: Path) -> dict[str, Path]:
    """Every test clip, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    utc = clip(
        folder / "utc.MP4",
        tags={"creation_time": "2026-11-22T00:30:15.000000Z", "location": "+31.2304+121.4737/"},
    )
    plus8 = clip(
        folder / "plus8.MP4",
        tags={
            "com.apple.quicktime.creationdate": "2026-11-22T08:30:15+0800",
            "serial_number": "RX-0042",
        },
    )
    fast = clip(folder / "fast.MP4", tags={"creation_time": "2026-11-22T00:30:15Z"}, faststart=True)
    gps_stream = clip(folder / "gps_stream.MP4", subtitles=nmea_subtitles(folder / "gps.srt"))
    with_sidecar = clip(folder / "FILE0001.MP4")
    sidecar_nmea(with_sidecar)
    text = folder / "notes.MP4"
    text.write_text("shift notes: nothing happened\n" * 20, encoding="ascii")
    return {
        "utc": utc,
        "plus8": plus8,
        "gps_stream": gps_stream,
        "sidecar": with_sidecar,
        "truncated_faststart": truncate_clip(fast, folder / "truncated_fast.MP4"),
        "truncated_moov_at_end": truncate_clip(utc, folder / "truncated.MP4"),
        "stub": write_stub(folder / "stub.MP4"),
        "audio": write_audio(folder / "voice.WAV", seconds=1),
        "photo": write_photo(folder / "IMG0001.JPG"),
        "hang": live_playlist(folder / "hang.MP4"),
        "damaged": damaged(utc, folder / "damaged.MP4"),
        "text": text,
    }


def copy_to(source: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest
