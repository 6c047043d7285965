"""The USB bus as the kernel shows it in sysfs: devices, their interfaces, their disks.

What is read (Linux writes it; :mod:`docking.simulated_usb` writes the same files and
links under a temporary folder, so the tests run this very code)::

    /sys/bus/usb/devices/1-1.3 -> ../../../devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3
        idVendor  idProduct  serial  manufacturer  product  bDeviceClass  devnum
        1-1.3:1.0/bInterfaceClass            08 = USB mass storage
    /sys/block/sdb -> ../devices/.../1-1.3/1-1.3:1.0/host6/target6:0:0/6:0:0:0/block/sdb
        device -> ../../../6:0:0:0           a link into the USB device's own tree
        uevent (DEVNAME=sdb)  size (512-byte sectors)
        sdb1/partition  sdb1/uevent (DEVNAME=sdb1)  sdb1/size

A device can be pulled out while it is being read: every file of it may vanish between
two reads. Such a device is left out of that enumeration, and the next one settles it.

Events: where a udev daemon runs (``/run/udev/control`` exists), pyudev's netlink monitor
(subsystems ``usb`` and ``block``) wakes the detector at once; an event is only a hint to
enumerate again, never trusted for what it says, so the poll is the same code path and
the safety net where events are lost.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

MASS_STORAGE_CLASS = 0x08
SECTOR = 512
_PORT_PATH = re.compile(r"^[0-9]+-[0-9]+(?:\.[0-9]+)*$")


@dataclass(frozen=True)
class BlockPartition:
    """One filesystem candidate of a USB disk: a partition, or the whole disk when it
    has no partition table (many recorders format the bare disk)."""

    name: str  # kernel name: "sdb1", or "sdb" for a disk without partitions
    devname: str  # DEVNAME of its uevent: the node under /dev
    number: int | None  # partition number; None for the whole disk
    size_bytes: int


@dataclass(frozen=True)
class UsbRecord:
    """What sysfs says about one USB device (not hubs' interfaces, not root hubs)."""

    port_path: str  # "1-1.3": bus 1, port 1, then port 3 of the hub behind it
    vendor_id: int
    product_id: int
    serial: str | None  # the ``serial`` file as text (None when the device has none)
    manufacturer: str | None
    product: str | None
    mass_storage: bool  # the device or one of its interfaces is of class 08
    partitions: tuple[BlockPartition, ...]  # of every disk in its tree, in name order
    sys_path: Path  # the device's folder, links resolved
    devnum: int | None = None  # the bus's number for this plug-in: a new one each time

    @property
    def usb_id(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"


class UsbBus(Protocol):
    """Where USB devices are enumerated and their device nodes found: the seam between
    the detector and the machine (:class:`SysfsBus`, or the simulated bus of the tests)."""

    def devices(self) -> list[UsbRecord]:
        """Every USB device present now."""

    def node(self, partition: BlockPartition) -> Path:
        """What to mount for ``partition``: its device node (``/dev/sdb1``)."""

    def watch(self, on_change: Callable[[], None]) -> bool:
        """Call ``on_change`` (from any thread) when the bus may have changed; return
        False when no events will come (the caller polls)."""

    def unwatch(self) -> None:
        """Stop calling back, and join any thread :meth:`watch` started."""


class SysfsReader:
    """Enumerates USB devices from a sysfs tree rooted at ``root`` (``/sys`` on a station)."""

    def __init__(self, root: Path = Path("/sys")) -> None:
        self.root = Path(root)

    def devices(self) -> list[UsbRecord]:
        folder = self.root / "bus" / "usb" / "devices"
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []  # no USB bus at all (a machine without USB, a container)
        disks = self._disks()
        records: list[UsbRecord] = []
        for name in names:
            if not _PORT_PATH.match(name):
                continue  # "usb1" root hubs and "1-1.3:1.0" interfaces
            try:
                record = self._read_device(folder / name, name, disks)
            except OSError:
                continue  # pulled out while read: the next enumeration settles it
            if record is not None:
                records.append(record)
        return records

    def _read_device(
        self, link: Path, port_path: str, disks: list[tuple[str, Path, Path]]
    ) -> UsbRecord | None:
        sys_path = Path(os.path.realpath(link))
        vendor = _read_hex(sys_path / "idVendor")
        product = _read_hex(sys_path / "idProduct")
        if vendor is None or product is None:
            return None
        mass_storage = _read_hex(sys_path / "bDeviceClass") == MASS_STORAGE_CLASS
        for entry in sorted(os.listdir(sys_path)):
            if entry.startswith(f"{port_path}:"):
                klass = _read_hex(sys_path / entry / "bInterfaceClass")
                mass_storage = mass_storage or klass == MASS_STORAGE_CLASS
        partitions: list[BlockPartition] = []
        for disk, disk_dir, owner in disks:
            if owner == sys_path:
                partitions.extend(_partitions(disk, disk_dir))
        record = UsbRecord(
            port_path=port_path,
            vendor_id=vendor,
            product_id=product,
            serial=_read_text(sys_path / "serial"),
            manufacturer=_read_text(sys_path / "manufacturer"),
            product=_read_text(sys_path / "product"),
            mass_storage=mass_storage,
            partitions=tuple(partitions),
            sys_path=sys_path,
            devnum=_read_int(sys_path / "devnum"),
        )
        # An optional file missing may mean the whole device went: then it is not here.
        if not (sys_path / "idVendor").exists():
            raise FileNotFoundError(f"{port_path} was removed while read")
        return record

    def _disks(self) -> list[tuple[str, Path, Path]]:
        """(name, folder, owning USB device's folder) of every disk on the USB bus: the
        nearest folder above where its ``device`` link leads that is named like a USB
        device (``1-1.3``), so a hub never claims the disks of the devices behind it."""
        folder = self.root / "block"
        disks = []
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        for name in names:
            device = folder / name / "device"
            if not os.path.lexists(device):
                continue  # loop, ram, dm: no hardware behind them
            owner = _usb_ancestor(Path(os.path.realpath(device)))
            if owner is not None:
                disks.append((name, Path(os.path.realpath(folder / name)), owner))
        return disks


class SysfsBus:
    """The station's own USB bus: :class:`SysfsReader` on ``/sys``, nodes under ``/dev``,
    and pyudev's netlink monitor for events where a udev daemon runs."""

    def __init__(
        self,
        sys_root: Path = Path("/sys"),
        dev_root: Path = Path("/dev"),
        *,
        udev_control: Path = Path("/run/udev/control"),
    ) -> None:
        self.reader = SysfsReader(sys_root)
        self.dev_root = Path(dev_root)
        self.udev_control = Path(udev_control)
        self._observer: Any = None

    def devices(self) -> list[UsbRecord]:
        return self.reader.devices()

    def node(self, partition: BlockPartition) -> Path:
        return self.dev_root / partition.devname

    def watch(self, on_change: Callable[[], None]) -> bool:
        if not self.udev_control.exists():
            log.info("no udev daemon (%s missing): polling the USB bus", self.udev_control)
            return False
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("usb")
            monitor.filter_by("block")
            observer = pyudev.MonitorObserver(
                monitor, callback=lambda _device: on_change(), name="evidock-udev-monitor"
            )
            observer.daemon = True
            observer.start()
        except (ImportError, OSError) as exc:
            log.warning("udev events unavailable (%s): polling the USB bus instead", exc)
            return False
        self._observer = observer
        return True

    def unwatch(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()  # sends its stop over a pipe and joins the thread


def _usb_ancestor(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        if _PORT_PATH.match(folder.name):
            return folder
    return None


def _partitions(disk: str, disk_dir: Path) -> list[BlockPartition]:
    found = []
    for entry in sorted(os.listdir(disk_dir)):
        part_dir = disk_dir / entry
        if entry.startswith(disk) and (part_dir / "partition").is_file():
            number = _read_int(part_dir / "partition")
            found.append(_partition(entry, part_dir, number))
    if found:
        return found
    whole = _partition(disk, disk_dir, None)
    # A card reader without its card shows a disk of size 0: there is nothing to mount.
    return [whole] if whole.size_bytes > 0 else []


def _partition(name: str, folder: Path, number: int | None) -> BlockPartition:
    devname = name
    for line in (_read_text(folder / "uevent") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value:
            devname = value
    return BlockPartition(
        name=name,
        devname=devname,
        number=number,
        size_bytes=(_read_int(folder / "size") or 0) * SECTOR,
    )


def _read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    # The kernel gives USB strings as UTF-8; a device may send anything, kept visible.
    return raw.decode("utf-8", errors="replace").strip() or None


def _read_hex(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text, 16) if text is not None else None
    except ValueError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
