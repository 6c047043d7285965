"""How the custody report writes times, places, durations and sizes for people.

Times are shown in the station's time zone with the offset (``2026-11-22 08:30:15
+08:00``), never with microseconds; a recorder's naive local time is read in the
station's zone (the zone its recorders' clocks are set to). Places are ISO 6709 strings
as recorders write them (``+31.2304+121.4737/``), shown as ``31.2304° N, 121.4737° E``
or ``北纬 31.2304°，东经 121.4737°``. Anything that does not parse is shown as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import DEFAULT_TIME_ZONE

# ±DD[MM[SS]][.f] then ±DDD[MM[SS]][.f], an optional altitude, and the closing "/".
_ISO6709 = re.compile(
    r"(?P<lat>[+-]\d{2}(?:\d{2}){0,2}(?:\.\d+)?)"
    r"(?P<lon>[+-]\d{3}(?:\d{2}){0,2}(?:\.\d+)?)"
    r"(?P<alt>[+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?"
)
_PAIR = re.compile(r"\s*(?P<lat>[+-]?\d{1,2}(?:\.\d+)?)\s*,\s*(?P<lon>[+-]?\d{1,3}(?:\.\d+)?)\s*")
_TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def station_zone(name: str) -> tzinfo:
    """The zone of a station's configured name; UTC only if the system lacks it."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def parse_time(value: Any, zone: tzinfo) -> datetime | None:
    """An aware datetime from an ISO time as a leaf or a recorder writes it, or None.

    A naive time is a recorder's local clock: it is read in the station's zone.
    """
    if not isinstance(value, str) or not _TIME_LIKE.match(value.strip()):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def show_time(moment: datetime, zone: tzinfo) -> str:
    """``2026-11-22 08:30:15 +08:00``: local time in the station's zone, whole seconds."""
    local = moment.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{local:%Y-%m-%d %H:%M:%S} {sign}{minutes // 60:02d}:{minutes % 60:02d}"


def show_time_text(value: Any, zone: tzinfo) -> str | None:
    """A time value shown as :func:`show_time`, or None if it is not a time."""
    moment = parse_time(value, zone)
    return None if moment is None else show_time(moment, zone)


def zone_label(zone: tzinfo, at: datetime) -> str:
    """``Asia/Shanghai (UTC+08:00)``: the zone the report's times are in."""
    offset = show_time(at, zone).rsplit(" ", 1)[1]
    return f"{zone} (UTC{offset})"


@dataclass(frozen=True)
class Coordinates:
    latitude: float
    longitude: float
    altitude_m: float | None = None


def _degrees(text: str, degree_digits: int) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    digits = text.lstrip("+-")
    whole, _, fraction = digits.partition(".")
    frac = float(f"0.{fraction}") if fraction else 0.0
    extra = len(whole) - degree_digits
    if extra == 0:
        value = int(whole) + frac
    elif extra == 2:
        value = int(whole[:degree_digits]) + (int(whole[degree_digits:]) + frac) / 60
    else:
        minutes = int(whole[degree_digits : degree_digits + 2])
        seconds = int(whole[degree_digits + 2 :]) + frac
        value = int(whole[:degree_digits]) + minutes / 60 + seconds / 3600
    return sign * value


def parse_place(value: Any) -> Coordinates | None:
    """Coordinates from an ISO 6709 string, a ``lat,lon`` pair, or an object with
    ``lat``/``lon`` (strings or numbers); None if it is none of those or out of range."""
    if isinstance(value, dict):
        lat = next((value[k] for k in ("lat", "latitude") if k in value), None)
        lon = next((value[k] for k in ("lon", "lng", "longitude") if k in value), None)
        iso = value.get("iso6709") or value.get("location")
        if lat is None or lon is None:
            return parse_place(iso) if isinstance(iso, str) else None
        try:
            found = Coordinates(float(str(lat)), float(str(lon)))
        except ValueError:
            return None
    elif isinstance(value, str):
        text = value.strip()
        if (match := _ISO6709.fullmatch(text)) is not None:
            alt = match["alt"]
            found = Coordinates(
                _degrees(match["lat"], 2),
                _degrees(match["lon"], 3),
                float(alt) if alt is not None else None,
            )
        elif (pair := _PAIR.fullmatch(text)) is not None:
            found = Coordinates(float(pair["lat"]), float(pair["lon"]))
        else:
            return None
    else:
        return None
    if abs(found.latitude) > 90 or abs(found.longitude) > 180:
        return None
    return found


def show_place(place: Coordinates, language: str) -> str:
    """``31.2304° N, 121.4737° E`` (en) or ``北纬 31.2304°，东经 121.4737°`` (zh-CN)."""
    lat, lon = f"{abs(place.latitude):.4f}°", f"{abs(place.longitude):.4f}°"
    if language == "en":
        text = f"{lat} {'N' if place.latitude >= 0 else 'S'}, "
        text += f"{lon} {'E' if place.longitude >= 0 else 'W'}"
        if place.altitude_m is not None:
            text += f", altitude {place.altitude_m:g} m"
        return text
    text = f"{'北纬' if place.latitude >= 0 else '南纬'} {lat}，"
    text += f"{'东经' if place.longitude >= 0 else '西经'} {lon}"
    if place.altitude_m is not None:
        text += f"，海拔 {place.altitude_m:g} 米"
    return text


def show_duration(seconds: float, language: str) -> str:
    """``1 h 02 min 03 s`` / ``1小时02分03秒`` (whole seconds)."""
    total = max(0, round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if language == "en":
        return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s"
    return f"{h}小时{m:02d}分{s:02d}秒" if h else f"{m}分{s:02d}秒"


def show_size(size: Any, language: str) -> str | None:
    """``12,345,678 bytes (11.8 MiB)``."""
    if type(size) is not int:
        return None
    unit = "字节" if language != "en" else "bytes"
    text = f"{size:,} {unit}"
    if size >= 1024 * 1024:
        text += f" ({size / (1024 * 1024):.1f} MiB)"
    return text
