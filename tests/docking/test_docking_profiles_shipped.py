"""Every shipped recorder profile reads back a volume written in its own layout.

Adding a recorder family is adding a table to config/recorders.toml: this test picks it up,
generates a recorder in the table's layout (real ffmpeg clips, its device-info file, its
sidecars) and checks the table against it. A table without a layout fails here.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docking import (
    RecorderProfile,
    RecorderVolume,
    SimulatedVolume,
    VolumeScan,
    generate_volume,
    get_profile,
    load_profiles,
    open_volume,
    read_recorder_clock,
)

SHIPPED = sorted(load_profiles())
START = datetime(2026, 11, 22, 8, 30, 15, tzinfo=UTC)  # FAT mounted tz=UTC: mtimes read as local


class Docked:
    def __init__(self, profile: RecorderProfile, made: SimulatedVolume) -> None:
        self.profile = profile
        self.made = made
        self.volume: RecorderVolume = open_volume(made.root, profile.name)
        self.scan: VolumeScan = self.volume.scan()
        self.by_path = {f.path: f for f in self.scan.files}


@pytest.fixture(scope="module", params=SHIPPED)
def docked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Docked:
    profile = get_profile(request.param)
    layout = profile.layout
    assert layout is not None, f"add [profiles.{profile.name}.layout] to config/recorders.toml"
    made = generate_volume(
        tmp_path_factory.mktemp(profile.name) / "REC",
        profile=profile.name,
        serial="R0000042",
        officer="004711",
        firmware="2.1.7",
        clips=3,
        seconds=1,
        size=(64, 48),
        start=START,
        audio=layout.audio is not None,
        photo=layout.photo is not None,
        important=[2],
    )
    return Docked(profile, made)


def test_every_file_is_found_and_nothing_refused(docked: Docked) -> None:
    made = docked.made
    written = {*made.clips, *made.sidecars, *made.audio, *made.photos, made.device_info}
    assert set(docked.by_path) == written
    assert docked.scan.refused == []
    assert docked.scan.layout == "recorder", "the footage globs must match the layout"


def test_kinds_come_out_right(docked: Docked) -> None:
    made = docked.made
    expected = {
        **dict.fromkeys(made.clips, "video"),
        **dict.fromkeys(made.audio, "audio"),
        **dict.fromkeys(made.photos, "photo"),
        **dict.fromkeys(made.sidecars, "sidecar"),
    }
    assert {p: docked.by_path[p].kind for p in expected} == expected


def test_recorder_time_is_read_from_every_name(docked: Docked) -> None:
    assert docked.made.times, "the layout names files by the recorder's clock"
    assert {p: docked.by_path[p].recorder_time for p in docked.made.times} == docked.made.times


def test_serial_officer_model_and_firmware_are_read(docked: Docked) -> None:
    volume, made = docked.volume, docked.made
    assert (volume.serial, volume.serial_source) == (made.serial, "device-info")
    assert (volume.officer, volume.model, volume.firmware) == ("004711", made.model, "2.1.7")
    assert volume.profile.name == docked.profile.name
    assert volume.device_info_problem is None


def test_the_clock_is_read_by_the_profiles_method(docked: Docked) -> None:
    clock = read_recorder_clock(docked.volume, docked.scan.files)
    method = docked.profile.clock.method
    expected = {
        "device-info": docked.made.clock,
        "newest-file": docked.made.last_write,  # the mtime of the newest file
        "none": None,
    }[method]
    assert clock == (expected, method)
    if method != "none":
        assert clock.recorder_time is not None


def test_important_marks_are_found(docked: Docked) -> None:
    marked = {f.path for f in docked.scan.files if docked.profile.is_important(f.rel_path)}
    assert marked == set(docked.made.important)
    if docked.profile.important:
        assert docked.made.clips[1] in marked  # clip 2 was marked on the recorder
        assert docked.made.clips[0] not in marked


def test_sidecars_pair_with_their_clips(docked: Docked) -> None:
    rel = {os.fsencode(p.relative_to(docked.made.root).as_posix()): p for p in docked.by_path}
    pairs = docked.profile.pair_sidecars(rel)
    assert {rel[s]: rel[c] for s, c in pairs.items()} == docked.made.sidecar_of
    assert bool(pairs) == bool(docked.profile.layout and docked.profile.layout.sidecars)


def test_placeholder_usb_ids_are_marked_as_examples() -> None:
    for profile in load_profiles().values():
        for usb in profile.usb:
            assert usb.example == (usb.vendor_id == 0xFFFF), (profile.name, usb)


def _names(made: SimulatedVolume) -> list[str]:
    return sorted(p.relative_to(made.root).as_posix() for p in made.root.rglob("*") if p.is_file())


def test_the_three_recorder_families_use_their_real_layouts(tmp_path: Path) -> None:
    def make(name: str) -> list[str]:
        layout = get_profile(name).layout
        assert layout is not None
        return _names(
            generate_volume(
                tmp_path / name,
                profile=name,
                serial="R0000042",
                clips=2,
                seconds=1,
                size=(64, 48),
                audio=layout.audio is not None,
                photo=layout.photo is not None,
                important=[2],
            )
        )

    assert make("gat947") == [
        "DCIM/100MEDIA/R0000042_20261122083015_0001.MP4",
        "DCIM/100MEDIA/R0000042_20261122083021_0002_IMP.MP4",
        "DCIM/100MEDIA/R0000042_20261122083027_0003.WAV",
        "DCIM/100MEDIA/R0000042_20261122083033_0004.JPG",
        "MISC/DEVINFO.INI",
    ]
    assert make("file-record") == [
        "FILE/20261122/!2026_1122_083021_002.MP4",
        "FILE/20261122/2026_1122_083015_001.MP4",
        "FILE/20261122/2026_1122_083033_004.JPG",
        "RECORD/20261122/2026_1122_083027_003.WAV",
        "SYSTEM/DEVINFO.TXT",
    ]
    assert make("video-gps-log") == [
        "AUDIO/20261122-083027-0003.WAV",
        "CONFIG/DEVICE.CFG",
        "GPS/20261122-083015-0001.NMEA",
        "GPS/20261122-083021-0002.NMEA",
        "LOG/20261122-083015-0001.LOG",
        "LOG/20261122-083021-0002.LOG",
        "PHOTO/20261122-083033-0004.JPG",
        "VIDEO/20261122-083015-0001.MP4",
        "VIDEO/EVENT/20261122-083021-0002.MP4",
    ]
