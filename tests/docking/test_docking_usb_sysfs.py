"""The sysfs reader and the bus's events, on the tree the simulated bus writes."""

from __future__ import annotations

import threading
from pathlib import Path

from docking.simulated_usb import SimulatedUsbBus
from docking.sysfs import BlockPartition, SysfsBus, SysfsReader


def test_a_usb_device_is_read_with_its_ids_serial_and_disk(tmp_path: Path) -> None:
    bus = SimulatedUsbBus(tmp_path)
    bus.plug("1-1.3", vendor_id=0x2E8A, product_id=0x0003, source=tmp_path, serial="A1")
    bus.plug("1-1.4", vendor_id=0x0951, product_id=0x1666, source=tmp_path, partitioned=False)

    records = {r.port_path: r for r in SysfsReader(bus.sys_root).devices()}
    assert sorted(records) == ["1-1", "1-1.3", "1-1.4"]  # the hub is listed too
    recorder = records["1-1.3"]
    assert (recorder.usb_id, recorder.serial, recorder.mass_storage) == ("2e8a:0003", "A1", True)
    assert recorder.partitions == (BlockPartition("sdb1", "sdb1", 1, 32 * 1024**3 - 2048 * 512),)
    assert [p.name for p in records["1-1.4"].partitions] == ["sdc"]
    assert bus.node(recorder.partitions[0]) == tmp_path


def test_a_hub_never_claims_the_disks_of_the_devices_behind_it(tmp_path: Path) -> None:
    bus = SimulatedUsbBus(tmp_path)
    bus.plug("1-1.3", vendor_id=0x2E8A, product_id=0x0003, source=tmp_path)
    hub = {r.port_path: r for r in SysfsReader(bus.sys_root).devices()}["1-1"]
    assert (hub.mass_storage, hub.partitions) == (False, ())


def test_a_machine_without_a_usb_bus_lists_no_devices(tmp_path: Path) -> None:
    assert SysfsReader(tmp_path).devices() == []
    assert SysfsBus(tmp_path).devices() == []


def test_an_unplugged_device_is_gone_from_the_next_enumeration(tmp_path: Path) -> None:
    bus = SimulatedUsbBus(tmp_path)
    bus.plug("2-1", vendor_id=1, product_id=2, source=tmp_path)
    bus.unplug("2-1")
    assert bus.devices() == []
    assert list((bus.sys_root / "block").iterdir()) == []


def test_udev_events_are_listened_to_only_where_a_udev_daemon_runs(tmp_path: Path) -> None:
    control = tmp_path / "control"
    without = SysfsBus(tmp_path, udev_control=control)
    assert without.watch(lambda: None) is False

    control.touch()  # as /run/udev/control exists where udev runs
    bus = SysfsBus(tmp_path, udev_control=control)
    assert bus.watch(lambda: None) is True
    assert "evidock-udev-monitor" in [t.name for t in threading.enumerate()]
    bus.unwatch()  # joins the monitor's thread (the leak fixture checks it)
    assert "evidock-udev-monitor" not in [t.name for t in threading.enumerate()]
