"""The USB detector on a simulated bus: real sysfs reading, real read-only mounts."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from usb_station import (
    RECORDER_ID,
    STICK_ID,
    UsbStation,
    mounts_under,
    station,
    write_fails_read_only,
)

from docking import Docked, RecorderDetector, Undocked, UsbIdentity
from docking.mounting import MountError, SystemMounter
from docking.sysfs import SysfsReader, UsbRecord
from docking.usb import DISK_WAIT, WAITING, UsbDetector

SLOTS = {"1-1.3": 3}


@pytest.fixture
def usb(tmp_path: Path) -> Iterator[UsbStation]:
    yield from station(tmp_path)


def identity(port: str = "1-1.3", serial: str | None = "SIM0001") -> UsbIdentity:
    return UsbIdentity(*RECORDER_ID, serial=serial, port_path=port)


def test_the_detector_is_a_recorder_detector(usb: UsbStation) -> None:
    assert isinstance(usb.detector(start=False), RecorderDetector)


def test_a_recorder_is_docked_in_one_pass_mounted_read_only_in_its_slot_folder(
    usb: UsbStation,
) -> None:
    detector = usb.detector(slots=SLOTS)
    usb.plug_recorder("1-1.3")
    detector.step()

    volume = usb.mount_root / "3"
    assert usb.events.items == [Docked(volume, usb=identity(), slot="3")]
    assert (volume / "DEVICE.INF").read_text("utf-8").startswith("serial=SIM0001")
    assert write_fails_read_only(volume).errno == errno.EROFS
    flags = os.statvfs(volume).f_flag
    for flag in (os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV, os.ST_NOEXEC):
        assert flags & flag, flag
    [status] = detector.docked()
    assert (status.slot, status.volume, status.mounted) == ("3", volume, True)
    assert (status.profile, status.partition, status.problem) == ("generic", "sdb1", None)
    detector.step()
    assert len(usb.events.items) == 1  # reported once


def test_writable_allows_a_write_and_returns_to_read_only(usb: UsbStation) -> None:
    detector = usb.detector(slots=SLOTS)
    source = usb.plug_recorder("1-1.3")
    detector.step()
    volume = usb.mount_root / "3"

    with detector.writable(volume) as folder:
        (folder / "CLOCK.TXT").write_text("2026-11-22 08:30:15\n", "utf-8")
    assert (source / "CLOCK.TXT").exists()
    assert write_fails_read_only(volume).errno == errno.EROFS
    with pytest.raises(MountError, match="dock it again"), detector.writable(usb.mount_root / "9"):
        pass  # nothing is mounted there


def test_removal_reports_undocked_then_unmounts(usb: UsbStation) -> None:
    detector = usb.detector(slots=SLOTS)
    usb.plug_recorder("1-1.3")
    detector.step()
    usb.bus.unplug("1-1.3")
    detector.step()

    volume = usb.mount_root / "3"
    assert usb.events.undocked() == [Undocked(volume, usb=identity(), slot="3")]
    assert mounts_under(usb.mount_root) == []
    assert not volume.exists()
    assert detector.docked() == []


def test_a_recorder_swapped_on_its_port_between_two_passes_is_undocked_and_docked_again(
    usb: UsbStation,
) -> None:
    detector = usb.detector(slots=SLOTS)
    usb.plug_recorder("1-1.3")
    detector.step()
    first = usb.mount_root / "3"
    usb.bus.unplug("1-1.3")
    second = usb.plug_recorder("1-1.3")  # the same model and serial, back at once
    detector.step()

    assert [type(e).__name__ for e in usb.events.items] == ["Docked", "Undocked", "Docked"]
    assert mounts_under(usb.mount_root) == [first]
    assert (first / "DEVICE.INF").stat().st_ino == (second / "DEVICE.INF").stat().st_ino


def test_a_volume_still_read_is_unmounted_lazily_and_its_open_file_stays_readable(
    usb: UsbStation,
) -> None:
    detector = usb.detector(slots=SLOTS)
    usb.plug_recorder("1-1.3")
    detector.step()
    clip = usb.mount_root / "3" / "DCIM" / "100MEDIA" / "20261122_083015_0001.MP4"
    with clip.open("rb") as reading:
        usb.bus.unplug("1-1.3")
        detector.step()
        assert mounts_under(usb.mount_root) == []
        assert len(reading.read()) == 12 * 64
    assert len(usb.events.undocked()) == 1


def test_start_unmounts_what_an_earlier_run_left_and_finds_recorders_already_docked(
    usb: UsbStation,
) -> None:
    usb.plug_recorder("1-1.3")
    (usb.mount_root / "3").mkdir()  # what a station killed while the recorder sat in slot 3 left
    SystemMounter().mount(usb.source("OLD"), usb.mount_root / "3", "bind")

    detector = usb.detector(worker=True, slots=SLOTS)
    assert usb.events.wait_for(1) == [Docked(usb.mount_root / "3", usb=identity(), slot="3")]
    assert (usb.mount_root / "3" / "DEVICE.INF").read_text("utf-8").startswith("serial=SIM0001")
    assert mounts_under(usb.mount_root) == [usb.mount_root / "3"]  # once, not stacked
    detector.stop()
    assert not detector.running
    assert mounts_under(usb.mount_root) == []


def test_the_worker_wakes_on_a_bus_event_without_waiting_for_the_poll(usb: UsbStation) -> None:
    detector = usb.detector(worker=True, usb_poll_seconds=60.0)
    assert detector.running
    usb.plug_recorder("2-1")
    [event] = usb.events.wait_for(1)
    assert event == Docked(usb.mount_root / "2-1", usb=identity("2-1"), slot="2-1")


def test_eight_recorders_arriving_at_once_are_all_docked_in_one_pass(usb: UsbStation) -> None:
    ports = [f"1-1.{n}" for n in range(1, 9)]
    detector = usb.detector(slots={port: n for n, port in enumerate(ports, 1)})
    for n, port in enumerate(ports, 1):
        usb.plug_recorder(port, serial=f"SIM{n:04d}")
    detector.step()

    docked = usb.events.docked()
    assert [(e.slot, e.usb.serial if e.usb else None) for e in docked] == [
        (str(n), f"SIM{n:04d}") for n in range(1, 9)
    ]
    assert sorted(mounts_under(usb.mount_root)) == [usb.mount_root / str(n) for n in range(1, 9)]
    for event in docked:
        assert write_fails_read_only(event.volume).errno == errno.EROFS
    for port in ports:
        usb.bus.unplug(port)
    detector.step()
    assert len(usb.events.undocked()) == 8
    assert mounts_under(usb.mount_root) == []


def test_a_usb_stick_is_ignored_logged_once_and_listed_for_it(
    usb: UsbStation, caplog: pytest.LogCaptureFixture
) -> None:
    detector = usb.detector()
    usb.plug_recorder("1-1.4", serial="STICK42", ids=STICK_ID, product="DataTraveler")
    with caplog.at_level(logging.WARNING, logger="docking.usb"):
        detector.step()
        detector.step()

    assert usb.events.items == []
    assert mounts_under(usb.mount_root) == []
    [ignored] = detector.ignored()
    assert ignored.identity == UsbIdentity(*STICK_ID, serial="STICK42", port_path="1-1.4")
    assert ignored.product == "DataTraveler"
    assert 'unknown_devices = "ingest"' in ignored.reason
    assert len([r for r in caplog.records if "not a recorder" in r.message]) == 1
    usb.bus.unplug("1-1.4")
    detector.step()
    assert detector.ignored() == []


def test_a_usb_stick_is_ingested_with_the_default_profile_when_the_config_allows(
    usb: UsbStation,
) -> None:
    detector = usb.detector(unknown_devices="ingest")
    usb.plug_recorder("1-1.4", serial="STICK42", ids=STICK_ID)
    detector.step()

    [event] = usb.events.docked()
    assert event.usb == UsbIdentity(*STICK_ID, serial="STICK42", port_path="1-1.4")
    assert [d.profile for d in detector.docked()] == ["generic"]
    assert detector.ignored() == []


def test_a_device_that_is_neither_storage_nor_a_recorder_is_passed_over(usb: UsbStation) -> None:
    detector = usb.detector(unknown_devices="ingest")
    usb.plug_recorder("1-2", ids=(0x046D, 0xC31C), mass_storage=False, with_disk=False)
    detector.step()
    assert (usb.events.items, detector.docked(), detector.ignored()) == ([], [], [])


def test_a_recorder_removed_while_its_sysfs_record_is_read_is_left_out(usb: UsbStation) -> None:
    class PulledOutMidRead(SysfsReader):
        def _read_device(self, link: Path, port_path: str, disks: list) -> UsbRecord | None:  # type: ignore[type-arg]
            if port_path == "1-1.3" and "1-1.3" in usb.bus._devices:
                usb.bus.unplug("1-1.3")  # gone after the listing, before its files are read
            return super()._read_device(link, port_path, disks)

    detector = usb.detector()
    usb.plug_recorder("1-1.3")
    usb.plug_recorder("1-1.4", serial="SIM0002")
    usb.bus.reader = PulledOutMidRead(usb.bus.sys_root)
    detector.step()
    detector.step()

    assert [e.usb.port_path for e in usb.events.docked() if e.usb] == ["1-1.4"]
    assert usb.events.undocked() == []
    assert mounts_under(usb.mount_root) == [usb.mount_root / "1-1.4"]


def test_a_recorder_removed_between_the_scan_and_its_mount_is_never_reported(
    usb: UsbStation,
) -> None:
    detector = usb.detector()
    source = usb.plug_recorder("1-1.3")
    real_devices = usb.bus.devices

    def scanned_then_pulled() -> list[UsbRecord]:
        records = real_devices()
        if "1-1.3" in usb.bus._devices:
            usb.bus.unplug("1-1.3")
            shutil.rmtree(source)  # its device node goes with it
        return records

    usb.bus.devices = scanned_then_pulled  # type: ignore[method-assign]
    detector.step()
    detector.step()

    assert usb.events.items == []
    assert mounts_under(usb.mount_root) == []
    assert detector.docked() == []


def test_two_recorders_with_the_same_serial_are_both_reported_with_their_own_port(
    usb: UsbStation, caplog: pytest.LogCaptureFixture
) -> None:
    detector = usb.detector(slots={"1-1.3": 3, "1-1.4": 4})
    usb.plug_recorder("1-1.3", serial="SAME01")
    usb.plug_recorder("1-1.4", serial="SAME01")
    with caplog.at_level(logging.WARNING, logger="docking.usb"):
        detector.step()

    assert usb.events.docked() == [
        Docked(usb.mount_root / "3", usb=identity("1-1.3", "SAME01"), slot="3"),
        Docked(usb.mount_root / "4", usb=identity("1-1.4", "SAME01"), slot="4"),
    ]
    assert [(d.identity.port_path, d.serial_shared_with) for d in detector.docked()] == [
        ("1-1.3", ("1-1.4",)),
        ("1-1.4", ("1-1.3",)),
    ]
    assert any("SAME01" in r.message and "never merged" in r.message for r in caplog.records)


def test_a_recorder_whose_disk_comes_late_is_docked_when_it_appears(usb: UsbStation) -> None:
    detector = usb.detector()
    usb.plug_recorder("1-1.3", with_disk=False)
    detector.step()
    assert usb.events.items == []
    assert [d.problem for d in detector.docked()] == [WAITING]

    usb.clock.advance(2.0)
    usb.bus.add_disk("1-1.3")
    detector.step()
    assert [e.volume for e in usb.events.docked()] == [usb.mount_root / "1-1.3"]


def test_a_recorder_that_never_shows_a_disk_is_reported_with_what_to_do(
    usb: UsbStation, caplog: pytest.LogCaptureFixture
) -> None:
    detector = usb.detector()
    usb.plug_recorder("1-1.3", with_disk=False)
    detector.step()
    usb.clock.advance(DISK_WAIT)
    with caplog.at_level(logging.ERROR, logger="docking.usb"):
        detector.step()
        detector.step()

    assert usb.events.items == []
    [status] = detector.docked()
    assert not status.mounted and status.problem is not None
    assert "mass-storage" in status.problem
    assert len([r for r in caplog.records if "dock it again" in r.message]) == 1


def test_a_recorder_on_a_bare_disk_without_partitions_is_mounted(usb: UsbStation) -> None:
    detector = usb.detector()
    usb.plug_recorder("1-1.3", partitioned=False)
    detector.step()
    assert len(usb.events.docked()) == 1
    assert [d.partition for d in detector.docked()] == ["sdb"]


def test_a_slot_label_that_cannot_name_a_folder_gives_way_to_the_port_path(
    usb: UsbStation,
) -> None:
    detector = usb.detector(slots={"1-1.3": "../etc", "1-1.4": "slot 4"})
    usb.plug_recorder("1-1.3")
    usb.plug_recorder("1-1.4", serial="SIM0002")
    detector.step()

    assert [(e.slot, e.volume) for e in usb.events.docked()] == [
        ("../etc", usb.mount_root / "1-1.3"),
        ("slot 4", usb.mount_root / "slot 4"),  # a space: mountinfo's \040, read back
    ]
    assert sorted(mounts_under(usb.mount_root)) == [
        usb.mount_root / "1-1.3",
        usb.mount_root / "slot 4",
    ]
    detector.stop()
    assert mounts_under(usb.mount_root) == []


def test_a_serial_holding_control_characters_is_not_taken(usb: UsbStation) -> None:
    detector = usb.detector()
    source = usb.source()
    usb.bus.plug("1-1.3", vendor_id=0xFFFF, product_id=1, source=source, serial=b"AB\x1b[31mC")
    detector.step()
    [event] = usb.events.docked()
    assert event.usb is not None and event.usb.serial is None


def test_a_failing_callback_does_not_stop_the_other_slots(usb: UsbStation) -> None:
    calls: list[Path] = []

    def fails_first(event: object) -> None:
        assert isinstance(event, Docked)
        calls.append(event.volume)
        if len(calls) == 1:
            raise RuntimeError("a bug in the receiver")

    detector = UsbDetector(
        fails_first,
        usb.section(),
        bus=usb.bus,
        clock=usb.clock,
        profile_for=lambda v, p: usb.detector(start=False)._profile_for(v, p),
    )
    usb.detectors.append(detector)
    detector.start(worker=False)
    usb.plug_recorder("1-1.3")
    usb.plug_recorder("1-1.4", serial="SIM0002")
    detector.step()
    assert calls == [usb.mount_root / "1-1.3", usb.mount_root / "1-1.4"]


def test_a_missing_mount_root_is_one_clear_error(usb: UsbStation) -> None:
    detector = usb.detector(start=False)
    usb.mount_root.rmdir()
    with pytest.raises(Exception, match=r"docking\.mount_root"):
        detector.start(worker=False)
    usb.mount_root.mkdir()
