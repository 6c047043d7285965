from __future__ import annotations

import base64
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from docking import (
    NotARecorderError,
    RecorderVolume,
    SimulatedVolume,
    VolumeNotFoundError,
    VolumeScan,
    display_path,
    get_profile,
    open_volume,
    path_b64,
)
from docking.simulated import write_empty

MEDIA = b"DCIM/100MEDIA/"


def _scan(root: Path) -> tuple[RecorderVolume, VolumeScan]:
    vol = open_volume(root)
    return vol, vol.scan()


def _refusal(scan: VolumeScan, rel: bytes) -> str:
    reasons = [r.reason for r in scan.refused if r.rel_path == rel]
    assert reasons, f"{rel!r} was not reported; refused: {scan.refused}"
    return reasons[0]


def test_device_info_identifies_the_recorder(simulated: SimulatedVolume) -> None:
    vol = open_volume(simulated.root)
    assert (vol.serial, vol.serial_source) == ("SIM0001", "device-info")
    assert (vol.model, vol.firmware, vol.officer) == ("EVIDOCK-SIM", "1.0.0", "000123")
    assert vol.profile.name == "generic"
    assert vol.device_info_path == b"DEVICE.INF"
    assert vol.label == "SIM0001"


def test_scan_lists_footage_with_kind_size_and_recorder_time(simulated: SimulatedVolume) -> None:
    scan = open_volume(simulated.root).scan()
    assert scan.layout == "recorder" and scan.refused == []
    by_name = {f.rel_path: f for f in scan.files}
    assert sorted(by_name) == [
        MEDIA + b"20261122_083015_0001.MP4",
        MEDIA + b"20261122_083015_0001.NMEA",
        MEDIA + b"20261122_083021_0002.MP4",
        MEDIA + b"20261122_083021_0002.NMEA",
        MEDIA + b"20261122_083033_0004.JPG",
        b"DEVICE.INF",
        b"RECORD/20261122_083027_0003.WAV",
    ], "every regular file is taken, the device-info file too"
    clip = by_name[MEDIA + b"20261122_083015_0001.MP4"]
    assert clip.kind == "video" and clip.recorder_time == "2026-11-22T08:30:15"
    assert clip.size == simulated.clips[0].stat().st_size > 0
    assert clip.mtime_ns == simulated.clips[0].stat().st_mtime_ns
    assert clip.path == simulated.clips[0].absolute()
    kinds = {f.rel_path.rsplit(b".", 1)[1]: f.kind for f in scan.files}
    assert kinds == {
        b"MP4": "video",
        b"NMEA": "sidecar",
        b"JPG": "photo",
        b"WAV": "audio",
        b"INF": "sidecar",
    }


def test_missing_path_and_a_file_are_clear_errors(
    simulated: SimulatedVolume, tmp_path: Path
) -> None:
    with pytest.raises(VolumeNotFoundError, match="does not exist"):
        open_volume(tmp_path / "not-mounted")
    with pytest.raises(NotARecorderError, match="not a folder"):
        open_volume(simulated.clips[0])


def test_a_plain_folder_gives_every_file_and_a_derived_serial(tmp_path: Path) -> None:
    source = tmp_path / "handed over"
    (source / "sub").mkdir(parents=True)
    (source / "clip one.mp4").write_bytes(b"x" * 10)
    (source / "sub" / "notes.txt").write_text("t")
    vol, scan = _scan(source)
    assert scan.layout == "plain"
    assert [f.rel_path for f in scan.files] == [b"clip one.mp4", b"sub/notes.txt"]
    assert vol.serial_source == "derived" and vol.serial.startswith("derived-handed_over-")
    assert open_volume(source).serial == vol.serial, "derived serials are deterministic"
    assert open_volume(tmp_path / "handed over" / "sub").serial != vol.serial


def test_footage_globs_ignore_case_like_fat_does(tmp_path: Path) -> None:
    (tmp_path / "dcim" / "100media").mkdir(parents=True)
    (tmp_path / "dcim" / "100media" / "20261122_083015_0001.mp4").write_bytes(b"v")
    (tmp_path / "misc.txt").write_text("not footage")
    (tmp_path / "device.inf").write_text("SERIAL = ABC-9\n")
    vol, scan = _scan(tmp_path)
    assert scan.layout == "recorder", "lower-case dcim/ still matches the DCIM/** glob"
    assert sorted(f.rel_path for f in scan.files) == [
        b"dcim/100media/20261122_083015_0001.mp4",
        b"device.inf",
        b"misc.txt",
    ]
    kinds = {f.rel_path: f.kind for f in scan.files}
    assert kinds[b"dcim/100media/20261122_083015_0001.mp4"] == "video"
    assert vol.serial == "ABC-9" and vol.device_info_path == b"device.inf"


def test_hostile_names_survive_byte_for_byte(volume_copy: Path) -> None:
    media = os.fsencode(volume_copy) + b"/" + MEDIA
    names = [
        "20261122_093000 执法 记录.MP4".encode(),
        b"20261122_093001 bad\xff\xfename.MP4",
        b"-rf --help.MP4",
    ]
    for name in names:
        with open(media + name, "wb") as out:
            out.write(b"data of " + name)
    os.mkdir(media + b"\xc3\x28dir")
    with open(media + b"\xc3\x28dir/inner.MP4", "wb") as out:
        out.write(b"inner")
    _, scan = _scan(volume_copy)
    by_name = {f.rel_path: f for f in scan.files}
    for name in [*names, b"\xc3\x28dir/inner.MP4"]:
        found = by_name[MEDIA + name]
        assert found.path.read_bytes().startswith(b"data of " if b"/" not in name else b"inner")
        assert os.fsencode(found.path).endswith(name)
    chinese = by_name[MEDIA + names[0]]
    assert chinese.display_path == "DCIM/100MEDIA/20261122_093000 执法 记录.MP4"
    assert chinese.path_b64 is None
    assert chinese.recorder_time == "2026-11-22T09:30:00"
    bad = by_name[MEDIA + names[1]]
    assert bad.display_path == "DCIM/100MEDIA/20261122_093001 bad\\xff\\xfename.MP4"
    assert base64.b64decode(bad.path_b64 or "") == MEDIA + names[1]
    assert bad.recorder_time == "2026-11-22T09:30:01"


def test_display_helpers_on_raw_bytes() -> None:
    assert display_path(b"a/\xe6\x89\xa7.MP4") == "a/执.MP4"
    assert display_path(b"a\x80b") == "a\\x80b"
    assert path_b64(b"plain.MP4") is None
    assert path_b64(b"a\x80b") == base64.b64encode(b"a\x80b").decode()


def test_symlinks_are_refused_never_followed(volume_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.MP4").write_bytes(b"not from this recorder")
    pipe = outside / "pipe.MP4"
    os.mkfifo(pipe)  # if the scan ever opened the link's target it would hang here
    media = volume_copy / "DCIM" / "100MEDIA"
    (media / "out.MP4").symlink_to(pipe)
    (media / "outdir").symlink_to(outside, target_is_directory=True)
    (media / "inside.MP4").symlink_to(media / "20261122_083015_0001.MP4")
    (media / "dangling.MP4").symlink_to(tmp_path / "nowhere")
    done: list[VolumeScan] = []
    worker = threading.Thread(target=lambda: done.append(open_volume(volume_copy).scan()))
    worker.start()
    worker.join(20)
    assert done, "the scan blocked: it opened a symlink's target"
    scan = done[0]
    listed = {f.rel_path for f in scan.files}
    for link in (b"out.MP4", b"outdir", b"inside.MP4", b"dangling.MP4"):
        assert MEDIA + link not in listed
        reason = _refusal(scan, MEDIA + link)
        assert "symbolic link" in reason and "not followed" in reason
    assert str(pipe) in _refusal(scan, MEDIA + b"out.MP4")
    assert not any(b"secret" in rel for rel in listed)
    assert len(scan.files) == 7


def test_pipes_sockets_and_devices_are_reported_and_skipped(volume_copy: Path) -> None:
    media = volume_copy / "DCIM" / "100MEDIA"
    os.mkfifo(media / "fifo.MP4")
    os.mknod(media / "null.MP4", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(media / "disk.MP4", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.fspath(media / "sock.MP4"))
        _, scan = _scan(volume_copy)
    assert "named pipe (FIFO)" in _refusal(scan, MEDIA + b"fifo.MP4")
    assert "character device" in _refusal(scan, MEDIA + b"null.MP4")
    assert "block device" in _refusal(scan, MEDIA + b"disk.MP4")
    assert "socket" in _refusal(scan, MEDIA + b"sock.MP4")
    assert all("never opened" in r.reason for r in scan.refused)
    assert len(scan.files) == 7


def test_empty_files_are_listed_with_size_zero(volume_copy: Path) -> None:
    write_empty(volume_copy / "DCIM" / "100MEDIA" / "20261122_100000_0009.MP4")
    _, scan = _scan(volume_copy)
    empty = [f for f in scan.files if f.size == 0]
    assert [f.rel_path for f in empty] == [MEDIA + b"20261122_100000_0009.MP4"]


def test_device_info_link_is_not_followed(volume_copy: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.inf"
    fake.write_text("serial=STOLEN\n")
    (volume_copy / "DEVICE.INF").unlink()
    (volume_copy / "DEVICE.INF").symlink_to(fake)
    vol = open_volume(volume_copy)
    assert vol.serial_source == "derived" and vol.serial != "STOLEN"
    assert "symbolic link" in (vol.device_info_problem or "")


def test_device_info_fifo_does_not_hang(volume_copy: Path) -> None:
    (volume_copy / "DEVICE.INF").unlink()
    os.mkfifo(volume_copy / "DEVICE.INF")
    vol = open_volume(volume_copy)
    assert vol.serial_source == "derived"
    assert "not a regular file" in (vol.device_info_problem or "")


def test_device_info_in_gb18030_and_unusable_serials(tmp_path: Path) -> None:
    (tmp_path / "MISC").mkdir()
    text = "serial = 警A-0001\nofficer=张三\nmodel=unknown-box\n"
    (tmp_path / "MISC" / "DEVICE.TXT").write_bytes(text.encode("gb18030"))
    vol = open_volume(tmp_path)
    assert (vol.serial, vol.officer, vol.model) == ("警A-0001", "张三", "unknown-box")
    assert vol.profile.name == "generic", "an unknown model keeps the configured profile"
    (tmp_path / "MISC" / "DEVICE.TXT").write_bytes(b"serial=bad\x07bell\n")
    vol = open_volume(tmp_path)
    assert vol.serial_source == "derived" and "not usable" in (vol.device_info_problem or "")


def test_configured_profile_is_used_for_unknown_models(tmp_path: Path) -> None:
    day = tmp_path / "RECORD" / "20261122"
    day.mkdir(parents=True)
    (day / "REC-2026-11-22-08-30-15.AVI").write_bytes(b"avi")
    (tmp_path / "DCIM").mkdir()
    (tmp_path / "DCIM" / "ignored.MP4").write_bytes(b"not in this profile's globs")
    vol = open_volume(tmp_path, profile="record-dashed")
    scan = vol.scan()
    assert scan.layout == "recorder"
    files = {f.rel_path: f for f in scan.files}
    assert sorted(files) == [b"DCIM/ignored.MP4", b"RECORD/20261122/REC-2026-11-22-08-30-15.AVI"]
    assert files[b"RECORD/20261122/REC-2026-11-22-08-30-15.AVI"].recorder_time == (
        "2026-11-22T08:30:15"
    ), "the configured profile's time format is used"
    assert open_volume(tmp_path, profile=get_profile("record-dashed")).profile.name == (
        "record-dashed"
    )


def test_device_info_values_that_would_print_as_something_else_are_not_taken(
    volume_copy: Path,
) -> None:
    # A right-to-left override or an escape sequence makes a serial or an officer number
    # read differently than it is: such a value never becomes the recorder's identity.
    (volume_copy / "DEVICE.INF").write_text(
        "serial=REC\u202e1000\nmodel=EVIDOCK-SIM\nfirmware=1.0\x1b[2J\nofficer=00\u202e0123\n",
        "utf-8",
    )
    vol = open_volume(volume_copy)
    assert vol.serial_source == "derived" and "\u202e" not in vol.serial
    assert "not usable" in (vol.device_info_problem or "")
    assert vol.officer is None and vol.firmware is None and vol.model == "EVIDOCK-SIM"
    (volume_copy / "DEVICE.INF").write_text("serial=执法仪-0042\nofficer=警号 012345\n", "utf-8")
    vol = open_volume(volume_copy)
    assert (vol.serial, vol.officer) == ("执法仪-0042", "警号 012345")


@pytest.mark.parametrize("family", ["gat947", "file-record", "video-gps-log"])
def test_a_recorder_of_another_family_is_recognised_by_its_own_device_info(
    tmp_path: Path, family: str
) -> None:
    # The station's default profile is generic; the recorder's own device-info file (its
    # path and its "KEY: value" or "key=value" lines) names its model and serial.
    from docking import generate_volume

    made = generate_volume(
        tmp_path / "rec", profile=family, serial="FAM-0042", clips=1, seconds=1, size=(64, 48)
    )
    vol = open_volume(tmp_path / "rec")
    assert (vol.profile.name, vol.serial, vol.serial_source) == (family, "FAM-0042", "device-info")
    assert vol.officer == made.officer
