"""What the record commands (stats, clips) take from the command line: a time range in
the station's zone and a place with a radius. Bad values are one line (exit 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from agent.errors import EvidockError

EARTH_RADIUS_M = 6_371_008.8


class RecordsInputError(EvidockError):
    """A filter of a record command cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive

    def holds(self, moment: datetime | None) -> bool:
        if self.start is None and self.end is None:
            return True
        if moment is None:
            return False
        return (self.start is None or moment >= self.start) and (
            self.end is None or moment < self.end
        )

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        if self.start is None and self.end is None:
            return True
        if start is None or end is None:
            return False
        return (self.end is None or start < self.end) and (self.start is None or end >= self.start)


def _moment(option: str, text: str, zone: tzinfo, *, upper: bool) -> datetime:
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:  # a whole day in the station's zone: --to takes the day in
        return datetime.combine(day + timedelta(days=1 if upper else 0), time(), zone)
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise RecordsInputError(
            f"{option} {value!r} is neither a day (2026-11-20) nor an ISO time with its "
            "offset (2026-11-20T09:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        raise RecordsInputError(f"{option} {value!r} has no offset; write e.g. {value}+08:00")
    return moment


def time_range(start: str | None, end: str | None, zone: tzinfo) -> TimeRange:
    """``--from``/``--to``: a day (local, ``--to`` inclusive) or an ISO time with offset."""
    lower = _moment("--from", start, zone, upper=False) if start else None
    upper = _moment("--to", end, zone, upper=True) if end else None
    if lower and upper and upper <= lower:
        raise RecordsInputError("--to is not after --from: swap them")
    return TimeRange(lower, upper)


def near(text: str | None, radius_m: float | None) -> tuple[float, float, float] | None:
    """``--near LAT,LON`` with ``--radius-m M``: (lat, lon, metres), or None."""
    if text is None:
        if radius_m is not None:
            raise RecordsInputError("--radius-m goes with --near LAT,LON")
        return None
    if radius_m is None:
        raise RecordsInputError("--near needs --radius-m M (metres)")
    if not math.isfinite(radius_m) or radius_m <= 0:
        raise RecordsInputError("--radius-m must be a positive number of metres")
    parts = text.replace("，", ",").split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise RecordsInputError(
            f"--near {text!r} is not LAT,LON in decimal degrees (e.g. 39.9219,116.4436)"
        ) from None
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        raise RecordsInputError(f"--near {text!r} is off the globe: latitude then longitude")
    return lat, lon, radius_m


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))
