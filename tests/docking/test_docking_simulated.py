from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.metadata import probe_media
from docking import SimulatedVolume, SimulatorError, generate_volume, get_profile
from docking.simulated import iso6709


def test_volume_is_laid_out_like_a_body_camera(simulated: SimulatedVolume) -> None:
    root = simulated.root
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert names == [
        "DCIM/100MEDIA/20261122_083015_0001.MP4",
        "DCIM/100MEDIA/20261122_083015_0001.NMEA",
        "DCIM/100MEDIA/20261122_083021_0002.MP4",
        "DCIM/100MEDIA/20261122_083021_0002.NMEA",
        "DCIM/100MEDIA/20261122_083033_0004.JPG",
        "DEVICE.INF",
        "RECORD/20261122_083027_0003.WAV",
    ]
    info = (root / "DEVICE.INF").read_text("utf-8")
    assert "serial=SIM0001" in info and "officer=000123" in info


def test_clips_are_real_h264_aac_with_capture_time_and_place(simulated: SimulatedVolume) -> None:
    first = probe_media(simulated.clips[0])
    assert first.readable, first.problem
    assert (first.codec, first.audio_codec) == ("h264", "aac")
    assert (first.width, first.height) == (320, 240)
    assert first.duration_ms == 1000
    # Recorder clock 08:30:15 at UTC+8 is tagged as 00:30:15 UTC.
    assert first.creation_time == "2026-11-22T00:30:15.000000Z"
    assert first.location == "+31.2304+121.4737/"
    second = probe_media(simulated.clips[1])
    assert second.creation_time == "2026-11-22T00:30:21.000000Z"
    wav = probe_media(simulated.audio[0])
    assert wav.readable and wav.codec is None and wav.audio_codec == "pcm_s16le"


def test_mtime_follows_the_recorder_clock_not_now(simulated: SimulatedVolume) -> None:
    # The first clip ends at 08:30:16 on the recorder (UTC+8), i.e. 00:30:16 UTC.
    end_of_first = datetime(2026, 11, 22, 0, 30, 16, tzinfo=UTC).timestamp()
    mtime = simulated.clips[0].stat().st_mtime
    assert mtime == end_of_first
    assert simulated.clips[1].stat().st_mtime - mtime == 6  # 1 s clip + 5 s gap


def test_nmea_track_has_one_valid_fix_per_second(simulated: SimulatedVolume) -> None:
    lines = simulated.sidecars[0].read_text("ascii").splitlines()
    assert len(lines) == 1
    for line in lines:
        body, _, checksum = line[1:].partition("*")
        expected = 0
        for char in body.encode("ascii"):
            expected ^= char
        assert int(checksum, 16) == expected
        fields = body.split(",")
        assert fields[0] == "GPRMC" and fields[1] == "003015.00" and fields[2] == "A"
        assert fields[3:7] == ["3113.8240", "N", "12128.4220", "E"]


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    a = generate_volume(tmp_path / "a", clips=1, seconds=1, place=(-33.8688, 151.2093))
    b = generate_volume(tmp_path / "b", clips=1, seconds=1, place=(-33.8688, 151.2093))
    assert a.clips[0].read_bytes() == b.clips[0].read_bytes()
    assert probe_media(a.clips[0]).location == "-33.8688+151.2093/"


def test_iso6709_pads_and_signs() -> None:
    assert iso6709((5.5, -0.25)) == "+05.5000-000.2500/"


def test_an_aware_start_carries_the_recorder_zone(tmp_path: Path) -> None:
    start = datetime(2026, 11, 22, 8, 30, 15, tzinfo=UTC)
    made = generate_volume(tmp_path / "utc", clips=1, seconds=1, start=start)
    assert made.clips[0].name == "20261122_083015_0001.MP4"
    assert probe_media(made.clips[0]).creation_time == "2026-11-22T08:30:15.000000Z"


def test_missing_ffmpeg_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no ffmpeg on it
    with pytest.raises(SimulatorError, match="apt-get install -y ffmpeg"):
        generate_volume(tmp_path / "x", clips=1, seconds=1)


def test_another_profiles_layout_is_written_with_real_clips(tmp_path: Path) -> None:
    made = generate_volume(
        tmp_path / "rec", profile="record-dashed", clips=1, seconds=1, audio=True, place=None
    )
    [clip] = made.clips
    assert clip.relative_to(made.root).as_posix() == "RECORD/20261122/REC-2026-11-22-08-30-15.AVI"
    probe = probe_media(clip)
    assert probe.readable, probe.problem
    assert (probe.codec, probe.audio_codec) == ("h264", "adpcm_ima_wav")
    assert made.sidecars == []  # no GPS fix, no track
    assert made.model == "RECORD-DASHED"  # not a model that would select another profile


def test_the_device_info_file_is_written_in_the_profiles_own_format(tmp_path: Path) -> None:
    made = generate_volume(tmp_path / "rec", profile="gat947", clips=1, seconds=1, officer="7")
    assert made.device_info == made.root / "MISC" / "DEVINFO.INI"
    lines = made.device_info.read_text("utf-8").splitlines()
    # The recorder's clock: docked a minute after its last write (08:30:16).
    assert lines[1:] == [
        "DeviceID=SIM0001",
        "Model=GAT947-EXAMPLE",
        "Version=1.0.0",
        "PoliceID=7",
        "SysTime=2026-11-22 08:31:16",
    ]
    assert (made.clock, made.last_write) == ("2026-11-22T08:31:16", "2026-11-22T08:30:16")
    colon = generate_volume(tmp_path / "fr", profile="file-record", clips=1, seconds=1)
    assert colon.device_info is not None
    assert "SN:SIM0001" in colon.device_info.read_text("utf-8").splitlines()
    assert colon.clock is None  # that family's clock is read from its newest file


def test_a_profile_the_simulator_cannot_follow_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match=r"unknown recorder profile 'nope'.*generic"):
        generate_volume(tmp_path / "a", profile="nope")
    no_layout = get_profile("generic").model_copy(update={"name": "bare", "layout": None})
    with pytest.raises(SimulatorError, match=r"'bare' has no layout: add \[profiles.bare.layout\]"):
        generate_volume(tmp_path / "b", profile=no_layout)
    with pytest.raises(SimulatorError, match="'record-dashed' has no photo in its layout"):
        generate_volume(tmp_path / "c", profile="record-dashed", clips=0, photo=True)
