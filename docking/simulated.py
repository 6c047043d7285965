"""A simulated body-worn recorder: a folder laid out like a docked camera's volume.

There is no USB on the test machines, so tests and the demo dock this instead. The clips
are real H.264/AAC files made by ffmpeg, tagged the way recorders tag them (``creation_time``
in UTC, an ISO 6709 ``location``), named by the recorder's local clock, with an NMEA track
beside each clip and a ``DEVICE.INF`` holding the serial. Helpers at the end make the
hostile content that real recorders produce when a battery dies mid-write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from docking.errors import SimulatorError

DEFAULT_START = datetime(2026, 11, 22, 8, 30, 15)
DEFAULT_PLACE = (31.2304, 121.4737)
CLIP_GAP = timedelta(seconds=5)  # recorders start a new file after a short pause
MEDIA_DIR = "DCIM/100MEDIA"
AUDIO_DIR = "RECORD"
DEVICE_INFO = "DEVICE.INF"
_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]


@dataclass(frozen=True)
class SimulatedVolume:
    """What :func:`generate_volume` wrote, so tests can compare the scan against it."""

    root: Path
    serial: str
    model: str
    officer: str
    clips: list[Path] = field(default_factory=list)
    sidecars: list[Path] = field(default_factory=list)
    audio: list[Path] = field(default_factory=list)
    photos: list[Path] = field(default_factory=list)
    device_info: Path | None = None


def generate_volume(
    root: Path,
    *,
    serial: str = "SIM0001",
    clips: int = 2,
    seconds: float = 2,
    start: datetime = DEFAULT_START,
    place: tuple[float, float] | None = DEFAULT_PLACE,
    model: str = "EVIDOCK-SIM",
    size: tuple[int, int] = (320, 240),
    officer: str = "000123",
    firmware: str = "1.0.0",
    utc_offset: timedelta = timedelta(hours=8),
    audio: bool = False,
    photo: bool = False,
) -> SimulatedVolume:
    """Write a recorder volume under ``root`` (created if missing) and describe it.

    ``start`` is what the recorder's clock shows; ``utc_offset`` (or, for an aware
    ``start``, its own offset) turns it into the UTC ``creation_time`` tag, as a recorder
    set to Beijing time writes it. File names and
    contents depend only on the arguments, so two calls give byte-identical volumes.
    """
    offset = start.utcoffset()
    if offset is not None:
        # An aware start says both what the recorder's clock shows and its zone.
        start, utc_offset = start.replace(tzinfo=None), offset
    media = root / MEDIA_DIR
    media.mkdir(parents=True, exist_ok=True)
    made_clips: list[Path] = []
    sidecars: list[Path] = []
    audio_files: list[Path] = []
    photos: list[Path] = []
    length = timedelta(seconds=seconds)
    at = start
    for number in range(1, clips + 1):
        base = f"{at:%Y%m%d_%H%M%S}_{number:04d}"
        clip = media / f"{base}.MP4"
        location = iso6709(place) if place else None
        write_clip(clip, seconds=seconds, size=size, creation_time=_utc_text(at, utc_offset),
                   location=location)  # fmt: skip
        _stamp(clip, at + length, utc_offset)
        made_clips.append(clip)
        if place is not None:
            track = media / f"{base}.NMEA"
            track.write_text(nmea_track(at - utc_offset, place, seconds), "ascii")
            _stamp(track, at + length, utc_offset)
            sidecars.append(track)
        at += length + CLIP_GAP
    if audio:
        recording = root / AUDIO_DIR / f"{at:%Y%m%d_%H%M%S}_{clips + 1:04d}.WAV"
        recording.parent.mkdir(parents=True, exist_ok=True)
        write_audio(recording, seconds=seconds)
        _stamp(recording, at + length, utc_offset)
        audio_files.append(recording)
        at += length + CLIP_GAP
    if photo:
        picture = media / f"{at:%Y%m%d_%H%M%S}_{clips + 2:04d}.JPG"
        write_photo(picture, size=size)
        _stamp(picture, at, utc_offset)
        photos.append(picture)
    info = root / DEVICE_INFO
    info.write_text(
        f"# evidock simulated recorder\nserial={serial}\nmodel={model}\n"
        f"firmware={firmware}\nofficer={officer}\n",
        "utf-8",
    )
    return SimulatedVolume(
        root=root,
        serial=serial,
        model=model,
        officer=officer,
        clips=made_clips,
        sidecars=sidecars,
        audio=audio_files,
        photos=photos,
        device_info=info,
    )


def iso6709(place: tuple[float, float]) -> str:
    """``+31.2304+121.4737/``: the form QuickTime's ``location`` tag and ffmpeg use."""
    lat, lon = place
    return f"{lat:+08.4f}{lon:+09.4f}/"


def nmea_track(utc_start: datetime, place: tuple[float, float], seconds: float) -> str:
    """One ``$GPRMC`` fix per second at a fixed place, with valid checksums."""
    lat, lon = place
    lat_text = f"{int(abs(lat)):02d}{abs(lat) % 1 * 60:07.4f},{'N' if lat >= 0 else 'S'}"
    lon_text = f"{int(abs(lon)):03d}{abs(lon) % 1 * 60:07.4f},{'E' if lon >= 0 else 'W'}"
    lines = []
    for second in range(max(1, int(seconds))):
        t = utc_start + timedelta(seconds=second)
        body = f"GPRMC,{t:%H%M%S}.00,A,{lat_text},{lon_text},0.0,0.0,{t:%d%m%y},,,A"
        checksum = 0
        for char in body.encode("ascii"):
            checksum ^= char
        lines.append(f"${body}*{checksum:02X}\r\n")
    return "".join(lines)


def write_clip(
    path: Path,
    *,
    seconds: float = 2,
    size: tuple[int, int] = (320, 240),
    creation_time: str | None = None,
    location: str | None = None,
    faststart: bool = False,
) -> Path:
    """An H.264/AAC MP4 made by ffmpeg from test patterns (moov at the end unless faststart)."""
    width, height = size
    args = [
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=15:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=16000:duration={seconds}",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "32k", *_BITEXACT,
    ]  # fmt: skip
    if creation_time:
        args += ["-metadata", f"creation_time={creation_time}"]
    if location:
        args += ["-metadata", f"location={location}"]
    args += ["-movflags", "+use_metadata_tags" + ("+faststart" if faststart else "")]
    _run_ffmpeg([*args, "-f", "mp4", os.fspath(path)])
    return path


def write_audio(path: Path, *, seconds: float = 2) -> Path:
    """A PCM WAV recording, as audio-only recorders (or a camera's voice memo) write."""
    source = f"sine=frequency=440:sample_rate=16000:duration={seconds}"
    _run_ffmpeg(["-f", "lavfi", "-i", source, "-c:a", "pcm_s16le", *_BITEXACT,
                 "-f", "wav", os.fspath(path)])  # fmt: skip
    return path


def write_photo(path: Path, *, size: tuple[int, int] = (320, 240)) -> Path:
    """One JPEG frame of the test pattern."""
    source = f"testsrc2=size={size[0]}x{size[1]}:rate=1:duration=1"
    _run_ffmpeg(["-f", "lavfi", "-i", source, "-frames:v", "1", *_BITEXACT,
                 "-f", "image2", "-c:v", "mjpeg", os.fspath(path)])  # fmt: skip
    return path


# --- hostile content: what a recorder leaves when its battery dies mid-write -------------


def truncate_clip(source: Path, dest: Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first part of ``source`` to ``dest``: a moov-at-end clip loses its index,
    a faststart clip keeps an index that promises more packets than remain."""
    data = source.read_bytes()
    dest.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return dest


def write_stub(dest: Path, *, size: int = 100, work_dir: Path | None = None) -> Path:
    """The first ``size`` bytes of a faststart clip: a valid header with no streams."""
    scratch = (work_dir or dest.parent) / f".{dest.name}.faststart.mp4"
    try:
        write_clip(scratch, seconds=1, size=(64, 48), faststart=True)
        dest.write_bytes(scratch.read_bytes()[:size])
    finally:
        scratch.unlink(missing_ok=True)
    return dest


def write_empty(dest: Path) -> Path:
    """A zero-byte file, as a recorder leaves when it dies before writing anything."""
    dest.write_bytes(b"")
    return dest


def _utc_text(local: datetime, utc_offset: timedelta) -> str:
    utc = (local - utc_offset).replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(path: Path, local: datetime, utc_offset: timedelta) -> None:
    """Set the mtime a recorder's clock would give (deterministic, unlike 'now')."""
    epoch = (local - utc_offset).replace(tzinfo=UTC).timestamp()
    os.utime(path, ns=(int(epoch * 1e9), int(epoch * 1e9)))


def _run_ffmpeg(args: list[str]) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SimulatorError("ffmpeg is not installed: install it (apt-get install -y ffmpeg)")
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-3:]
        raise SimulatorError(f"ffmpeg failed ({done.returncode}): {' / '.join(tail)}")
