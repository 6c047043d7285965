"""A simulated body-worn recorder: a folder laid out like a docked camera's volume.

There is no USB on the test machines, so tests and the demo dock this instead. The volume
follows a recorder profile's ``layout`` (the generic one unless another is named): clips
are real H.264/AAC files made by ffmpeg, tagged the way recorders tag them (``creation_time``
in UTC, an ISO 6709 ``location``), named by the recorder's local clock, with the profile's
sidecars (NMEA tracks, logs) beside each clip and its device-info file holding the serial,
the officer and, where the profile reads it there, the clock. Helpers at the end make the
hostile content that real recorders produce when a battery dies mid-write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from config.common import iso_utc
from docking.errors import ProfileError, SimulatorError
from docking.profile_fields import DeviceInfoClock, Layout
from docking.profiles import RecorderProfile, get_profile

DEFAULT_START = datetime(2026, 11, 22, 8, 30, 15)
DEFAULT_PLACE = (31.2304, 121.4737)
CLIP_GAP = timedelta(seconds=5)  # recorders start a new file after a short pause
DOCKED_AFTER = timedelta(minutes=1)  # the device-info clock: docked a minute after the last file
_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
_CONTAINERS = {"mp4": "mp4", "mov": "mov", "avi": "avi", "ts": "mpegts", "mkv": "matroska",
               "3gp": "3gp"}  # fmt: skip
_TRACKS = frozenset({"nmea", "gps"})


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
    profile: str = "generic"
    firmware: str = "1.0.0"
    important: list[Path] = field(default_factory=list)  # files carrying the important mark
    sidecar_of: dict[Path, Path] = field(default_factory=dict)  # sidecar -> its clip
    times: dict[Path, str] = field(default_factory=dict)  # recorder time in each name
    last_write: str | None = None  # the recorder's clock at its last write (naive ISO)
    clock: str | None = None  # the clock written into device-info, if the profile reads it


def generate_volume(
    root: Path,
    *,
    serial: str = "SIM0001",
    clips: int = 2,
    seconds: float = 2,
    start: datetime = DEFAULT_START,
    place: tuple[float, float] | None = DEFAULT_PLACE,
    model: str | None = None,
    size: tuple[int, int] = (320, 240),
    officer: str = "000123",
    firmware: str = "1.0.0",
    utc_offset: timedelta = timedelta(hours=8),
    audio: bool = False,
    photo: bool = False,
    profile: str | RecorderProfile = "generic",
    important: Collection[int] = (),
    clock: datetime | None = None,
) -> SimulatedVolume:
    """Write a recorder volume under ``root`` (created if missing) and describe it.

    ``start`` is what the recorder's clock shows; ``utc_offset`` (or, for an aware
    ``start``, its own offset) turns it into the UTC ``creation_time`` tag and the mtimes,
    as a recorder set to Beijing time writes them. ``profile`` names the layout;
    ``important`` the clip numbers (from 1) the officer marked (where the layout has a
    mark); ``clock`` what the
    device-info file says the recorder's clock shows (a minute after its last file by
    default), for profiles that read it there. ``model`` defaults to the profile's first
    model name. File names and contents depend only on the arguments, so two calls give
    byte-identical volumes.
    """
    chosen = _profile(profile)
    layout = chosen.layout
    if layout is None:
        raise SimulatorError(
            f"recorder profile {chosen.name!r} has no layout: add [profiles.{chosen.name}.layout]"
        )
    offset = start.utcoffset()
    if offset is not None:
        # An aware start says both what the recorder's clock shows and its zone.
        start, utc_offset = start.replace(tzinfo=None), offset
    made = _Made(root, layout, serial, officer, utc_offset)
    length = timedelta(seconds=seconds)
    at = start
    for number in range(1, clips + 1):
        marked = number in important
        clip = made.file(layout.video, at, number, marked=marked)
        location = iso6709(place) if place else None
        created = _utc_text(at, utc_offset)
        write_clip(clip, seconds=seconds, size=size, creation_time=created, location=location,
                   container=_container(clip))  # fmt: skip
        made.stamp(clip, at + length)
        made.clips.append(clip)
        for template in layout.sidecars:
            made.sidecar(template, clip, at, seconds, place)
        if marked and layout.mark:
            # the clip, and each sidecar that took the mark with the clip's stem
            carrying = [clip, *(side for side, of in made.sidecar_of.items() if of == clip)]
            made.important += [f for f in carrying if layout.mark in f.relative_to(root).as_posix()]
        at += length + CLIP_GAP
    if audio:
        template = _template(chosen, layout.audio, "audio")
        recording = made.file(template, at, clips + 1, marked=False)
        write_audio(recording, seconds=seconds)
        made.stamp(recording, at + length)
        made.audio.append(recording)
        at += length + CLIP_GAP
    if photo:
        picture = made.file(_template(chosen, layout.photo, "photo"), at, clips + 2, marked=False)
        write_photo(picture, size=size)
        made.stamp(picture, at)
        made.photos.append(picture)
    shown_model = model or (chosen.models[0] if chosen.models else chosen.name.upper())
    clock_text = None
    lines = [
        "# evidock simulated recorder",
        f"{chosen.serial_key}{chosen.device_info_separator}{serial}",
        f"{chosen.model_key}{chosen.device_info_separator}{shown_model}",
        f"{chosen.firmware_key}{chosen.device_info_separator}{firmware}",
        f"{chosen.officer_key}{chosen.device_info_separator}{officer}",
    ]
    if isinstance(chosen.clock, DeviceInfoClock):
        shows = clock or (made.last_write or start) + DOCKED_AFTER
        clock_text = shows.replace(tzinfo=None).isoformat()
        clock_value = shows.strftime(chosen.clock.format)
        lines.append(f"{chosen.clock.key}{chosen.device_info_separator}{clock_value}")
    info = root / chosen.device_info[0]
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text("\n".join(lines) + "\n", "utf-8")
    return SimulatedVolume(
        root=root,
        serial=serial,
        model=shown_model,
        officer=officer,
        clips=made.clips,
        sidecars=made.sidecars,
        audio=made.audio,
        photos=made.photos,
        device_info=info,
        profile=chosen.name,
        firmware=firmware,
        important=made.important,
        sidecar_of=made.sidecar_of,
        times=made.times,
        last_write=made.last_write.isoformat() if made.last_write else None,
        clock=clock_text,
    )


@dataclass
class _Made:
    """The files of one simulated volume as they are written."""

    root: Path
    layout: Layout
    serial: str
    officer: str
    utc_offset: timedelta
    clips: list[Path] = field(default_factory=list)
    sidecars: list[Path] = field(default_factory=list)
    audio: list[Path] = field(default_factory=list)
    photos: list[Path] = field(default_factory=list)
    important: list[Path] = field(default_factory=list)
    sidecar_of: dict[Path, Path] = field(default_factory=dict)
    times: dict[Path, str] = field(default_factory=dict)
    last_write: datetime | None = None

    def path(self, template: str, at: datetime, number: int, mark: str, **extra: str) -> Path:
        values = {"time": at, "seq": number, "device": self.serial, "officer": self.officer}
        return self.root / self.layout.render(template, **values, mark=mark, **extra)

    def file(self, template: str, at: datetime, number: int, *, marked: bool) -> Path:
        path = self.path(template, at, number, self.layout.mark if marked else "")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.times[path] = at.isoformat()
        return path

    def sidecar(
        self,
        template: str,
        clip: Path,
        at: datetime,
        seconds: float,
        place: tuple[float, float] | None,
    ) -> None:
        rel = PurePosixPath(clip.relative_to(self.root).as_posix())
        path = self.path(template, at, 0, "", folder=str(rel.parent), stem=rel.stem)
        end = at + timedelta(seconds=seconds)
        if path.suffix.lower().lstrip(".") in _TRACKS:
            if place is None:
                return  # no fix, no track
            text = nmea_track(at - self.utc_offset, place, seconds)
        else:
            text = f"{at:%Y-%m-%d %H:%M:%S} REC START {clip.name}\r\n"
            text += f"{end:%Y-%m-%d %H:%M:%S} REC STOP\r\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "ascii")
        self.stamp(path, end)
        self.times[path] = at.isoformat()
        self.sidecars.append(path)
        self.sidecar_of[path] = clip

    def stamp(self, path: Path, local: datetime) -> None:
        """Set the mtime a recorder's clock would give (deterministic, unlike 'now')."""
        epoch = (local - self.utc_offset).replace(tzinfo=UTC).timestamp()
        os.utime(path, ns=(int(epoch * 1e9), int(epoch * 1e9)))
        if self.last_write is None or local > self.last_write:
            self.last_write = local


def _profile(profile: str | RecorderProfile) -> RecorderProfile:
    if isinstance(profile, RecorderProfile):
        return profile
    try:
        return get_profile(profile)
    except ProfileError as exc:
        raise SimulatorError(str(exc)) from None


def _template(profile: RecorderProfile, template: str | None, kind: str) -> str:
    if template is None:
        raise SimulatorError(f"recorder profile {profile.name!r} has no {kind} in its layout")
    return template


def _container(path: Path) -> str:
    return _CONTAINERS.get(path.suffix.lower().lstrip("."), "mp4")


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
    container: str = "mp4",
) -> Path:
    """An H.264 clip with sound made by ffmpeg from test patterns: AAC in MP4 (moov at the
    end unless faststart) unless ``container`` names another ffmpeg muxer (``avi``,
    ``mpegts``...)."""
    width, height = size
    args = [
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=15:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=16000:duration={seconds}",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        # AVI recorders store IMA ADPCM (or PCM) sound. AAC or MP3 in AVI makes ffmpeg pad
        # the video with empty chunks its header counts as frames, and PCM's header counts
        # samples: either would look truncated to a packet count.
        *(["-c:a", "adpcm_ima_wav"] if container == "avi" else ["-c:a", "aac", "-b:a", "32k"]),
        *_BITEXACT,
    ]  # fmt: skip
    if creation_time:
        args += ["-metadata", f"creation_time={creation_time}"]
    if location:
        args += ["-metadata", f"location={location}"]
    if container in ("mp4", "mov", "3gp"):
        args += ["-movflags", "+use_metadata_tags" + ("+faststart" if faststart else "")]
    _run_ffmpeg([*args, "-f", container, os.fspath(path)])
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
    return iso_utc((local - utc_offset).replace(tzinfo=UTC))


def _run_ffmpeg(args: list[str]) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SimulatorError("ffmpeg is not installed: install it (apt-get install -y ffmpeg)")
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-3:]
        raise SimulatorError(f"ffmpeg failed ({done.returncode}): {' / '.join(tail)}")
