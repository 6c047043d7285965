"""Real recorder filesystems on loop devices: exFAT through FUSE, FAT written with mtools.

This kernel has no USB and no vfat (../shared/notes/real-services.md); exFAT images mount
for real through exfat-fuse, so names, times, the read-only refusal and the wipe's
read-write window are the kernel's and the filesystem's own.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from usb_station import UsbStation, mounts_under, station, write_fails_read_only

from docking.mounting import SystemMounter, superblock_type
from docking.usb import DISK_WAIT, WAITING

TOOLS = ("losetup", "mkfs.exfat", "mount.exfat-fuse", "mformat", "mcopy", "mmd")


@pytest.fixture(autouse=True)
def _tools() -> None:
    # Real file systems are the point of these tests: missing tools fail them, never skip.
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/setup.sh --test")


CLIP = "DCIM/100MEDIA/执法_20261122_083015_0001.MP4"
CLIP_BYTES = b"\x00\x00\x00\x18ftypmp42" * 1000
TAKEN = datetime(2026, 11, 22, 8, 30, 16, tzinfo=UTC).timestamp()  # FAT keeps even seconds


def run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [os.fspath(c) for c in command], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout.strip()


def exfat_recorder(path: Path, attach: Callable[[Path], Path]) -> Path:
    """An exFAT recorder image on a loop device (returned) holding one clip with a
    Chinese name and a known time (exfat-fuse mounts block devices only)."""
    run("truncate", "-s", "16M", path)
    run("mkfs.exfat", "-L", "REC0001", path)
    device = attach(path)
    fill = path.with_suffix(".fill")
    fill.mkdir()
    run("mount.exfat-fuse", device, fill, env={**os.environ, "TZ": "UTC"})
    try:
        clip = fill / CLIP
        clip.parent.mkdir(parents=True)
        clip.write_bytes(CLIP_BYTES)
        os.utime(clip, (TAKEN, TAKEN))
        (fill / "DEVICE.INF").write_text("serial=REC0001\n", "utf-8")
    finally:
        run("umount", fill)
    return device


def fat_image(path: Path) -> Path:
    """A FAT32 image written with mtools, as a recorder's card would be."""
    run("truncate", "-s", "40M", path)
    run("mformat", "-i", path, "-F", "-v", "REC0002", "::")
    run("mmd", "-i", path, "::/DCIM")
    clip = path.with_suffix(".mp4")
    clip.write_bytes(CLIP_BYTES)
    run("mcopy", "-i", path, "-m", clip, "::/DCIM/20261122_083015_0001.MP4")
    return path


@pytest.fixture
def loops() -> Iterator[Callable[[Path], Path]]:
    """Attach an image to a free loop device; every one is detached at the end."""
    attached: list[str] = []

    def attach(image: Path) -> Path:
        attached.append(run("losetup", "-f", "--show", image))
        return Path(attached[-1])

    yield attach
    for device in attached:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def usb(tmp_path: Path, loops: Callable[[Path], Path]) -> Iterator[UsbStation]:
    # After `loops`, so its mounts are undone before the loop devices are detached.
    yield from station(tmp_path)


def test_an_exfat_recorder_is_mounted_read_only_with_its_names_and_times(
    usb: UsbStation, loops: Callable[[Path], Path]
) -> None:
    device = exfat_recorder(usb.tmp_path / "rec.img", loops)
    detector = usb.detector(slots={"1-1.3": 3})
    usb.plug_recorder("1-1.3", source=device, serial="REC0001")
    detector.step()

    volume = usb.mount_root / "3"
    assert [e.volume for e in usb.events.docked()] == [volume]
    [status] = detector.docked()
    assert (status.fstype, status.mounted) == ("exfat", True)
    clip = volume / CLIP
    assert clip.read_bytes() == CLIP_BYTES
    assert clip.stat().st_mtime == TAKEN
    assert write_fails_read_only(volume).errno == errno.EROFS
    with pytest.raises(OSError) as refused:
        clip.write_bytes(b"changed")
    assert refused.value.errno == errno.EROFS
    flags = os.statvfs(volume).f_flag
    for flag in (os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV, os.ST_NOEXEC):
        assert flags & flag, flag


def test_the_wipe_window_writes_to_the_exfat_recorder_and_closes_again(
    usb: UsbStation, loops: Callable[[Path], Path]
) -> None:
    device = exfat_recorder(usb.tmp_path / "rec.img", loops)
    detector = usb.detector(slots={"1-1.3": 3})
    usb.plug_recorder("1-1.3", source=device, serial="REC0001")
    detector.step()
    volume = usb.mount_root / "3"

    with detector.writable(volume) as folder:
        (folder / CLIP).unlink()
        (folder / "CLOCK.TXT").write_text("2026-11-22 08:30:15\n", "utf-8")
    assert write_fails_read_only(volume).errno == errno.EROFS
    assert os.statvfs(volume).f_flag & os.ST_NOEXEC
    usb.bus.unplug("1-1.3")
    detector.step()
    assert mounts_under(usb.mount_root) == []

    # On the recorder itself: mounted again, the wipe's changes are there.
    check = usb.mount_root / "check"
    check.mkdir()
    mounter = SystemMounter()
    mounter.mount(device, check, "exfat")
    try:
        assert not (check / CLIP).exists()
        assert (check / "CLOCK.TXT").read_text("utf-8") == "2026-11-22 08:30:15\n"
    finally:
        mounter.unmount(check)


def test_the_filesystem_is_probed_with_blkid_or_from_its_first_sector(
    tmp_path: Path, loops: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.img"
    run("truncate", "-s", "1M", empty)
    devices = {
        "exfat": exfat_recorder(tmp_path / "rec.img", loops),
        "vfat": loops(fat_image(tmp_path / "card.img")),
        "none": loops(empty),
    }

    mounter = SystemMounter()
    assert {name: mounter.probe(d) for name, d in devices.items()} == {
        "exfat": "exfat",
        "vfat": "vfat",
        "none": None,
    }
    assert mounter.probe(tmp_path) == "bind"
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "no-tools"))  # no blkid
    assert {name: mounter.probe(d) for name, d in devices.items()} == {
        "exfat": "exfat",
        "vfat": "vfat",
        "none": None,
    }
    assert superblock_type((tmp_path / "rec.img").read_bytes()[:512]) == "exfat"
    assert superblock_type((tmp_path / "card.img").read_bytes()[:512]) == "vfat"
    assert superblock_type(empty.read_bytes()[:512]) is None


def _kernel_mounts_fat() -> bool:
    with open("/proc/filesystems", encoding="ascii") as known:
        if any(line.split()[-1:] == ["vfat"] for line in known):
            return True
    return Path(f"/lib/modules/{os.uname().release}/kernel/fs/fat").exists()


@pytest.mark.skipif(_kernel_mounts_fat(), reason="this kernel mounts FAT")
def test_a_fat_recorder_on_a_kernel_without_vfat_is_reported_with_what_to_do(
    usb: UsbStation, loops: Callable[[Path], Path], caplog: pytest.LogCaptureFixture
) -> None:
    device = loops(fat_image(usb.tmp_path / "card.img"))
    detector = usb.detector(slots={"1-1.3": 3})
    usb.plug_recorder("1-1.3", source=device, serial="REC0002")
    with caplog.at_level(logging.ERROR, logger="docking.usb"):
        detector.step()
        detector.step()

    assert usb.events.items == []
    [status] = detector.docked()
    assert (status.fstype, status.mounted) == ("vfat", False)
    assert status.problem is not None and "modprobe vfat" in status.problem
    assert len([r for r in caplog.records if "not mounted" in r.message]) == 1
    assert not (usb.mount_root / "3").exists()


@pytest.mark.skipif(not _kernel_mounts_fat(), reason="this kernel has no vfat")
def test_a_fat_recorder_is_mounted_read_only_with_the_recorders_own_clock(
    usb: UsbStation, loops: Callable[[Path], Path]
) -> None:
    device = loops(fat_image(usb.tmp_path / "card.img"))
    detector = usb.detector()
    usb.plug_recorder("1-1.3", source=device, serial="REC0002")
    detector.step()
    [event] = usb.events.docked()
    assert (event.volume / "DCIM" / "20261122_083015_0001.MP4").read_bytes() == CLIP_BYTES
    assert write_fails_read_only(event.volume).errno == errno.EROFS


def test_a_partition_without_a_filesystem_is_reported_after_the_wait(
    usb: UsbStation, loops: Callable[[Path], Path]
) -> None:
    empty = usb.tmp_path / "empty.img"
    run("truncate", "-s", "1M", empty)
    detector = usb.detector()
    usb.plug_recorder("1-1.3", source=loops(empty))
    detector.step()
    assert [d.problem for d in detector.docked()] == [WAITING]  # no verdict yet
    usb.clock.advance(DISK_WAIT)
    detector.step()

    assert usb.events.items == []
    [status] = detector.docked()
    assert status.problem is not None and "sdb1: no filesystem" in status.problem
