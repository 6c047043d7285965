"""The recorder's own clock, read at docking, so that its offset to the station's is recorded.

Recorders keep local time with no zone, set by hand and often wrong: years off after a
flat backup battery, minutes off after months of drift. The profile's ``clock`` says how
it is read (``device-info``, ``newest-file`` or ``none``); the reading is naive ISO text
in the recorder's own frame, kept beside the station's time, never instead of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

from docking.profile_fields import DeviceInfoClock, NewestFileClock
from docking.profiles import ClockMethod
from docking.volume import FootageFile, RecorderVolume

# FAT keeps modification times to 2 s, so a file stamped when it started may show a
# time up to 2 s before the one in its name.
_FAT_GRAIN = timedelta(seconds=2)


class RecorderClock(NamedTuple):
    """What the recorder's clock showed, and how it was read (``None``: not read)."""

    recorder_time: str | None
    method: ClockMethod


def read_recorder_clock(
    volume: RecorderVolume,
    files: Iterable[FootageFile] | None = None,
    *,
    mtime_zone: tzinfo = UTC,
) -> RecorderClock:
    """Read the docked recorder's clock by its profile's method.

    ``device-info``: the value of the profile's key in the device-info file (recorders
    that keep it write it when they are connected, so it is their clock at docking).

    ``newest-file``: the time in the name of the file with the latest one (the recorder's
    clock when it began its newest file), moved on to that file's mtime when the mtime,
    read as naive time in ``mtime_zone``, falls between the name time and
    ``max_file_seconds`` after it: the mtime is then in the recorder's own frame (FAT
    mounted with ``tz=UTC`` shows the recorder's local time as UTC, the default here;
    give the station's zone for a filesystem that stores true instants). It is the clock
    at the recorder's last write, not at docking: it finds a clock that is hours or years
    off, not one a few minutes off, and a clock reset part-way through a shift is not
    seen (use ``device-info`` where the recorder offers it).

    ``files`` are the scan's files (scanned here when not given). A value that does not
    parse gives ``recorder_time=None`` with the method, never an error: a recorder with
    a broken clock is still ingested.
    """
    rule = volume.profile.clock
    if isinstance(rule, DeviceInfoClock):
        raw = volume.device_info.get(rule.key.casefold())
        return RecorderClock(_parse(raw, rule.format), "device-info")
    if isinstance(rule, NewestFileClock):
        found = volume.scan().files if files is None else files
        return RecorderClock(_newest_file(found, rule, mtime_zone), "newest-file")
    return RecorderClock(None, "none")


def clock_offset_seconds(recorder_time: str, station_now: datetime, zone: tzinfo) -> float:
    """How far the recorder's clock is ahead (+) of or behind (-) the station's.

    ``station_now`` is the station's own time (aware) when the recorder was read, and
    ``zone`` the zone the recorder's clock is meant to show (the station's time zone):
    recorders are set to local time and store no zone of their own.
    """
    if station_now.tzinfo is None:
        raise ValueError("station_now is naive: give the station's aware time")
    local = station_now.astimezone(zone).replace(tzinfo=None)
    return (datetime.fromisoformat(recorder_time) - local).total_seconds()


def _parse(raw: str | None, time_format: str) -> str | None:
    if not raw:
        return None
    try:
        return datetime.strptime(raw.strip(), time_format).isoformat()
    except ValueError:
        return None


def _newest_file(
    files: Iterable[FootageFile], rule: NewestFileClock, mtime_zone: tzinfo
) -> str | None:
    timed = [(f.recorder_time, f.rel_path, f) for f in files if f.recorder_time is not None]
    if not timed:
        return None
    name_text, _rel, newest = max(timed, key=lambda t: (t[0], t[1]))
    named = datetime.fromisoformat(name_text)
    try:
        written = datetime.fromtimestamp(newest.mtime_ns // 1_000_000_000, mtime_zone)
    except (OverflowError, OSError, ValueError):
        return named.isoformat()
    written = written.replace(tzinfo=None)
    if named - _FAT_GRAIN <= written <= named + timedelta(seconds=rule.max_file_seconds):
        return max(named, written).isoformat()
    return named.isoformat()
