"""Where a clip was recorded: an ISO 6709 tag, or a GPS track of NMEA 0183 sentences (in a
subtitle or data stream of the clip, or in a sidecar file of the same recording).

Coordinates are :class:`~decimal.Decimal` degrees, never floats: they go into ledger
leaves, whose JSON forbids floats, as ISO 6709 text (``+31.230400+121.473700/``).
A sentence counts only with a good checksum and a valid fix (``$GPRMC`` status ``A``,
``$GPGGA`` quality 1 or more): a recorder writes void fixes while it searches for
satellites, and those are not places.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from docking import display_path

# ISO 6709 point as QuickTime and ffmpeg write it: latitude, longitude, optional height,
# optional CRS, "/" at the end (the "/" is often left off by recorders).
_ISO6709 = re.compile(
    r"^(?P<lat>[+-]\d{2}(?:\.\d+)?)(?P<lon>[+-]\d{3}(?:\.\d+)?)(?P<alt>[+-]\d+(?:\.\d+)?)?"
    r"(?:CRS[A-Za-z0-9_:]+)?/?$"
)
# Talkers: GP (GPS), GN (several systems), GL (GLONASS), GA (Galileo), BD/GB (BeiDou).
_SENTENCE = re.compile(
    rb"\$(?P<talker>GP|GN|GL|GA|BD|GB)(?P<type>RMC|GGA),(?P<fields>[^*$\r\n]*)\*(?P<sum>[0-9A-Fa-f]{2})"
)
_SIX_PLACES = Decimal("0.000001")

#: Sidecar extensions that may hold an NMEA track, tried in the clip's folder with its stem.
SIDECAR_SUFFIXES = (".NMEA", ".nmea", ".GPS", ".gps", ".txt", ".TXT")
#: At most this much of a sidecar or a track stream is read (a day's 1 Hz track is ~6 MB).
MAX_TRACK_BYTES = 16 * 1024 * 1024


def iso6709(lat: Decimal, lon: Decimal) -> str:
    """``+31.230400+121.473700/``: six decimals (0.1 m), as ISO 6709 writes a point."""
    lat_q, lon_q = lat.quantize(_SIX_PLACES), lon.quantize(_SIX_PLACES)
    return f"{_signed(lat_q, 2)}{_signed(lon_q, 3)}/"


def _signed(value: Decimal, int_digits: int) -> str:
    sign = "-" if value < 0 else "+"
    whole, _, frac = f"{abs(value):f}".partition(".")
    return f"{sign}{whole.zfill(int_digits)}.{frac or '0'}"


def parse_iso6709(text: str | None) -> tuple[Decimal, Decimal] | None:
    """(latitude, longitude) of an ISO 6709 point in decimal degrees, or None when the
    text is not one (or is off the globe)."""
    if not text:
        return None
    match = _ISO6709.match(text.strip())
    if match is None:
        return None
    lat, lon = Decimal(match["lat"]), Decimal(match["lon"])
    if abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


@dataclass(frozen=True)
class Fix:
    lat: Decimal
    lon: Decimal
    at: datetime | None  # UTC; None for a GGA fix before any RMC gave the date


@dataclass(frozen=True)
class Track:
    """A GPS track: its first valid fix (the clip's place), how many fixes, their box."""

    source: str  # "stream" (a subtitle or data stream of the clip) or "sidecar"
    points: int
    first: Fix
    south: Decimal
    west: Decimal
    north: Decimal
    east: Decimal
    file: str | None = None  # the sidecar's name, for a sidecar

    @property
    def location(self) -> str:
        return iso6709(self.first.lat, self.first.lon)

    def as_leaf_body(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "points": self.points,
            "first_fix": self.location,
            "first_fix_at": _iso(self.first.at),
            # The box the track stays in: its south-west and north-east corners.
            "south_west": iso6709(self.south, self.west),
            "north_east": iso6709(self.north, self.east),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nmea_track(data: bytes, source: str, file: str | None = None) -> Track | None:
    """The track of the valid fixes in ``data`` (any framing: lines, subtitle packets with
    their length prefixes), or None when it holds none."""
    fixes: list[Fix] = []
    day: tuple[int, int, int] | None = None
    for match in _SENTENCE.finditer(data):
        if not _checksum_ok(match):
            continue
        fields = match["fields"].decode("ascii", "replace").split(",")
        if match["type"] == b"RMC":
            fix, day = _rmc(fields, day)
        else:
            fix = _gga(fields, day)
        if fix is not None:
            fixes.append(fix)
    if not fixes:
        return None
    lats, lons = [f.lat for f in fixes], [f.lon for f in fixes]
    return Track(
        source, len(fixes), fixes[0], min(lats), min(lons), max(lats), max(lons), file=file
    )


def _checksum_ok(match: re.Match[bytes]) -> bool:
    total = 0
    for byte in match.group(0)[1 : match.start("sum") - match.start() - 1]:
        total ^= byte
    return total == int(match["sum"], 16)


def _rmc(
    fields: list[str], day: tuple[int, int, int] | None
) -> tuple[Fix | None, tuple[int, int, int] | None]:
    # hhmmss.ss, status, lat, N/S, lon, E/W, speed, course, ddmmyy, ...
    if len(fields) < 9 or fields[1] != "A":
        return None, day
    place = _degrees(fields[2], fields[3], fields[4], fields[5])
    date = fields[8]
    if len(date) == 6 and date.isdigit():
        day = (2000 + int(date[4:6]), int(date[2:4]), int(date[0:2]))
    if place is None:
        return None, day
    return Fix(place[0], place[1], _moment(day, fields[0])), day


def _gga(fields: list[str], day: tuple[int, int, int] | None) -> Fix | None:
    # hhmmss.ss, lat, N/S, lon, E/W, quality, satellites, ...
    if len(fields) < 6 or not fields[5].isdigit() or int(fields[5]) < 1:
        return None
    place = _degrees(fields[1], fields[2], fields[3], fields[4])
    if place is None:
        return None
    return Fix(place[0], place[1], _moment(day, fields[0]))


def _degrees(lat: str, ns: str, lon: str, ew: str) -> tuple[Decimal, Decimal] | None:
    """NMEA's ``ddmm.mmmm`` / ``dddmm.mmmm`` and hemispheres as signed decimal degrees."""
    if ns not in ("N", "S") or ew not in ("E", "W"):
        return None
    try:
        lat_deg = Decimal(lat[:2]) + Decimal(lat[2:]) / 60
        lon_deg = Decimal(lon[:3]) + Decimal(lon[3:]) / 60
    except (InvalidOperation, ValueError):
        return None
    if not (lat_deg.is_finite() and lon_deg.is_finite()) or lat_deg > 90 or lon_deg > 180:
        return None
    if len(lat) < 4 or len(lon) < 5:
        return None
    return (-lat_deg if ns == "S" else lat_deg), (-lon_deg if ew == "W" else lon_deg)


def _moment(day: tuple[int, int, int] | None, clock: str) -> datetime | None:
    if day is None or len(clock) < 6 or not clock[:6].isdigit():
        return None
    fraction = clock[7:] if clock[6:7] == "." else ""
    micro = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    try:
        return datetime(*day, int(clock[0:2]), int(clock[2:4]), int(clock[4:6]), micro, UTC)
    except ValueError:
        return None


def sidecar_track(clip_on_recorder: Path) -> Track | None:
    """The NMEA track of the recording's sidecar: a regular file beside the clip on the
    recorder with the clip's stem and one of :data:`SIDECAR_SUFFIXES` (the first that
    holds a valid fix); never follows a symlink, reads at most :data:`MAX_TRACK_BYTES`."""
    seen: set[tuple[int, int]] = set()
    for suffix in SIDECAR_SUFFIXES:
        candidate = clip_on_recorder.with_suffix(suffix)
        data = _read_regular(candidate, seen)
        if data is None:
            continue
        # The name as the ledger writes names: escaped if not UTF-8.
        track = nmea_track(data, "sidecar", file=display_path(os.fsencode(candidate.name)))
        if track is not None:
            return track
    return None


def _read_regular(path: Path, seen: set[tuple[int, int]]) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        # On FAT "X.NMEA" and "X.nmea" are one file: read it once.
        if not stat.S_ISREG(info.st_mode) or key in seen:
            return None
        seen.add(key)
        chunks: list[bytes] = []
        left = MAX_TRACK_BYTES
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
