"""The recorder's clock read at docking, and its offset to the station's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from docking import (
    RecorderClock,
    clock_offset_seconds,
    generate_volume,
    load_profiles,
    open_volume,
    read_recorder_clock,
)
from docking.profiles import parse_profiles

BEIJING = ZoneInfo("Asia/Shanghai")
# The station docks the recorder at 08:45 Beijing time on 22 November 2026.
STATION_NOW = datetime(2026, 11, 22, 0, 45, tzinfo=UTC)
RESET = datetime(2003, 1, 1, 0, 0, 15)  # what a recorder shows after its clock battery died
YEARS_23 = 23 * 365 * 86400


def _make(root: Path, profile: str, **kwargs: Any) -> None:
    generate_volume(root, profile=profile, clips=2, seconds=1, size=(64, 48), **kwargs)


def test_a_clock_years_off_is_read_from_device_info_and_its_offset_computed(
    tmp_path: Path,
) -> None:
    shows = datetime(2003, 1, 1, 0, 40, 2)
    _make(tmp_path / "rec", "gat947", start=RESET, clock=shows)
    volume = open_volume(tmp_path / "rec", "gat947")
    clock = read_recorder_clock(volume)
    assert clock == RecorderClock("2003-01-01T00:40:02", "device-info")
    assert clock.recorder_time is not None
    offset = clock_offset_seconds(clock.recorder_time, STATION_NOW, BEIJING)
    assert offset == (shows - datetime(2026, 11, 22, 8, 45)).total_seconds()
    assert offset < -YEARS_23


def test_a_clock_years_off_is_read_from_the_newest_file(tmp_path: Path) -> None:
    # FAT mounted with tz=UTC shows the recorder's local times as UTC: an aware UTC start.
    _make(tmp_path / "rec", "file-record", start=RESET.replace(tzinfo=UTC))
    volume = open_volume(tmp_path / "rec", "file-record")
    clock = read_recorder_clock(volume)
    # Clip 2 began at 00:00:21 on the recorder and was last written a second later.
    assert clock == RecorderClock("2003-01-01T00:00:22", "newest-file")
    assert clock.recorder_time is not None
    assert clock_offset_seconds(clock.recorder_time, STATION_NOW, BEIJING) < -YEARS_23


def test_newest_file_keeps_the_name_time_when_mtimes_are_in_another_frame(
    tmp_path: Path,
) -> None:
    # The recorder at UTC+8 stored true instants (exFAT): its mtimes read as UTC are 8 h
    # before the times in the names, so only the name is the recorder's clock...
    _make(tmp_path / "rec", "file-record", utc_offset=timedelta(hours=8))
    volume = open_volume(tmp_path / "rec", "file-record")
    assert read_recorder_clock(volume) == ("2026-11-22T08:30:21", "newest-file")
    # ...unless the station says in which zone its mtimes are to be read.
    assert read_recorder_clock(volume, mtime_zone=BEIJING) == (
        "2026-11-22T08:30:22",
        "newest-file",
    )


def test_newest_file_is_the_latest_name_time_not_the_last_name(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    _make(root, "generic", start=datetime(2026, 11, 22, 8, 30, 15, tzinfo=UTC))
    # A file whose name sorts last but holds no time, and one with an older time.
    (root / "DCIM" / "100MEDIA" / "ZZZ_NOTIME.MP4").write_bytes(b"x")
    (root / "DCIM" / "100MEDIA" / "20261121_070000_0009.MP4").write_bytes(b"x")
    clock = read_recorder_clock(open_volume(root))
    assert clock == ("2026-11-22T08:30:22", "newest-file")


def test_a_recorder_with_no_timed_file_or_no_clock_value_gives_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "DCIM").mkdir(parents=True)
    assert read_recorder_clock(open_volume(empty)) == (None, "newest-file")
    root = tmp_path / "rec"
    _make(root, "gat947")
    info = root / "MISC" / "DEVINFO.INI"
    info.write_text(info.read_text("utf-8").replace("SysTime=2026-11-22", "SysTime=garbage"))
    volume = open_volume(root, "gat947")
    assert volume.serial_source == "device-info"  # the recorder is still identified
    assert read_recorder_clock(volume) == (None, "device-info")
    info.write_text("DeviceID=R1\n", "utf-8")
    assert read_recorder_clock(open_volume(root, "gat947")) == (None, "device-info")


def test_a_profile_without_a_clock_reads_none(tmp_path: Path) -> None:
    _make(tmp_path / "rec", "record-dashed")
    assert read_recorder_clock(open_volume(tmp_path / "rec", "record-dashed")) == (None, "none")


def test_the_offset_needs_the_stations_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        clock_offset_seconds("2026-11-22T08:45:00", datetime(2026, 11, 22, 8, 45), BEIJING)
    assert clock_offset_seconds("2026-11-22T08:45:30", STATION_NOW, BEIJING) == 30.0


def test_the_clock_sync_file_is_off_unless_a_profile_sets_it() -> None:
    # Nothing shipped writes to a recorder.
    assert [p.name for p in load_profiles().values() if p.clock_sync_file] == []
    text = (
        "[profiles.x]\nmodel = 'm'\nfootage = ['DCIM/**']\nvideo = ['mp4']\naudio = []\n"
        "photo = []\nsidecar = []\ndevice_info = ['DEVICE.INF']\ndevice_info_separator = '='\n"
        "serial_key = 's'\nmodel_key = 'm'\nfirmware_key = 'f'\nofficer_key = 'o'\n"
        "time_pattern = '^(\\d{14})'\ntime_format = '%Y%m%d%H%M%S'\n"
        'clock_sync_file = { path = "MISC/TIME.TXT", format = "TIME=%Y-%m-%d %H:%M:%S\\r\\n" }\n'
    )
    sync = parse_profiles(text)["x"].clock_sync_file
    assert sync is not None and sync.path == "MISC/TIME.TXT"
    assert sync.content(datetime(2026, 11, 22, 8, 45, 1)) == b"TIME=2026-11-22 08:45:01\r\n"
