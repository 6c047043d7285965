"""What the USB detector tests share: a simulated bus, real mounts, and a clean mount root.

The bus is simulated (no USB hardware can exist here); the sysfs reader, the mounter and
every mount are real. Tests drive ``step()`` on an injected clock.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_clock import Clock

from config import DockingSection
from docking import Docked, DockingEvent, Undocked
from docking.mounting import SystemMounter
from docking.simulated_usb import SimulatedUsbBus, example_profile_for
from docking.usb import UsbDetector

RECORDER_ID = (0xFFFF, 0x0001)  # the generic profile's example ids
STICK_ID = (0x0951, 0x1666)  # a USB stick no profile knows


class Events:
    """Thread-safe record of what a detector reported."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.items: list[DockingEvent] = []

    def __call__(self, event: DockingEvent) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def docked(self) -> list[Docked]:
        with self._changed:
            return [e for e in self.items if isinstance(e, Docked)]

    def undocked(self) -> list[Undocked]:
        with self._changed:
            return [e for e in self.items if isinstance(e, Undocked)]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[DockingEvent]:
        """For the tests that run the detector's own thread: woken by each event."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


def recorder_source(folder: Path, serial: str = "SIM0001") -> Path:
    """A recorder's files, as a folder the simulated bus hands out as its partition."""
    media = folder / "DCIM" / "100MEDIA"
    media.mkdir(parents=True)
    (media / "20261122_083015_0001.MP4").write_bytes(b"\x00\x00\x00\x18ftypmp42" * 64)
    (folder / "DEVICE.INF").write_text(f"serial={serial}\nmodel=EVIDOCK-SIM\n", "utf-8")
    return folder


class UsbStation:
    """A simulated bus, a mount root, and the detectors a test made (stopped at its end)."""

    def __init__(self, tmp_path: Path, mount_root: Path) -> None:
        self.tmp_path = tmp_path
        self.mount_root = mount_root
        self.bus = SimulatedUsbBus(tmp_path / "bus")
        self.clock = Clock()
        self.events = Events()
        self.detectors: list[UsbDetector] = []
        self._sources = 0

    def section(self, **fields: Any) -> DockingSection:
        return DockingSection(mount_root=self.mount_root, **fields)

    def detector(self, *, worker: bool = False, start: bool = True, **fields: Any) -> UsbDetector:
        detector = UsbDetector(
            self.events,
            self.section(**fields),
            bus=self.bus,
            mounter=SystemMounter(),
            clock=self.clock,
            profile_for=example_profile_for,
        )
        self.detectors.append(detector)
        if start:
            detector.start(worker=worker)
        return detector

    def source(self, serial: str = "SIM0001") -> Path:
        self._sources += 1
        return recorder_source(self.tmp_path / "sources" / f"{self._sources:02d}", serial)

    def plug_recorder(self, port: str = "1-1.3", serial: str = "SIM0001", **kw: Any) -> Path:
        source = kw.pop("source", None) or self.source(serial)
        vendor, product = kw.pop("ids", RECORDER_ID)
        self.bus.plug(
            port, vendor_id=vendor, product_id=product, source=source, serial=serial, **kw
        )
        return source


def mounts_under(root: Path) -> list[Path]:
    return SystemMounter().mounts_under(root)


def station(tmp_path: Path) -> Iterator[UsbStation]:
    """A test's USB station (its fixture yields from here). At the end the detectors are
    stopped and every mount under the mount root is undone, even when the test failed;
    a mount the detectors themselves left behind fails the test."""
    root = tmp_path / "media"
    root.mkdir(exist_ok=True)
    usb = UsbStation(tmp_path, root)
    try:
        yield usb
    finally:
        for detector in usb.detectors:
            detector.stop()
        left = mounts_under(root)
        for _ in range(4):
            for point in mounts_under(root):
                subprocess.run(["umount", "-l", os.fspath(point)], check=False)
        assert mounts_under(root) == []
        assert left == [], f"the detector left mounts behind: {left}"


def write_fails_read_only(folder: Path) -> OSError:
    """Writing a new file in ``folder``: the OSError the kernel refused it with."""
    with pytest.raises(OSError) as refused:
        (folder / "written-by-the-station").write_bytes(b"x")
    return refused.value
