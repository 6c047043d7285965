"""A simulated USB bus, for tests and the demo: where no USB hardware can exist.

It writes, under a folder of its own, the sysfs files and links Linux writes when a
USB mass-storage device is plugged in (see :mod:`docking.sysfs`), and reads them back
with the station's own :class:`docking.sysfs.SysfsReader`: only the device nodes differ.
A partition's node is the ``source`` given to :meth:`SimulatedUsbBus.plug`: a real block
device (a loop device holding an exFAT image, which the real mounter mounts through FUSE)
or a folder (bind-mounted read-only), so every mount a test makes is a real one.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docking.errors import SimulatorError
from docking.profiles import RecorderProfile, load_profiles
from docking.sysfs import BlockPartition, SysfsReader, UsbRecord

_CONTROLLER = Path("devices/pci0000:00/0000:00:14.0")
_DEFAULT_SIZE = 32 * 1024**3


@dataclass(frozen=True)
class SimulatedDevice:
    port_path: str
    disk: str | None  # "sdb", once its disk appeared
    source: Path


class SimulatedUsbBus:
    """A :class:`docking.sysfs.UsbBus` whose devices the caller plugs and unplugs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.sys_root = self.root / "sys"
        for folder in ("bus/usb/devices", "block", "class/block", _CONTROLLER):
            (self.sys_root / folder).mkdir(parents=True, exist_ok=True)
        self.reader = SysfsReader(self.sys_root)
        self._lock = threading.Lock()
        self._devices: dict[str, SimulatedDevice] = {}
        self._nodes: dict[str, Path] = {}
        self._next_disk = 1  # sda is the station's own disk
        self._next_host = 6
        self._next_devnum = 2  # 1 is the root hub's
        self._on_change: Callable[[], None] | None = None

    # --- the UsbBus seam ----------------------------------------------------------------

    def devices(self) -> list[UsbRecord]:
        return self.reader.devices()

    def node(self, partition: BlockPartition) -> Path:
        with self._lock:
            return self._nodes.get(partition.devname, self.root / "dev" / partition.devname)

    def watch(self, on_change: Callable[[], None]) -> bool:
        self._on_change = on_change
        return True

    def unwatch(self) -> None:
        self._on_change = None

    # --- what a test does ---------------------------------------------------------------

    def plug(
        self,
        port_path: str,
        *,
        vendor_id: int,
        product_id: int,
        source: Path,
        serial: str | bytes | None = "SIM0001",
        manufacturer: str = "Evidock",
        product: str = "Simulated recorder",
        mass_storage: bool = True,
        partitioned: bool = True,
        with_disk: bool = True,
    ) -> SimulatedDevice:
        """Plug a device into ``port_path`` (``"1-1.3"``); its filesystem is ``source``.
        ``with_disk=False`` leaves out its disk until :meth:`add_disk` (the kernel's
        storage driver takes a moment after the device itself appears)."""
        with self._lock:
            if port_path in self._devices:
                raise SimulatorError(f"port {port_path} already holds a device")
            device_dir = self._hubs(port_path) / port_path
            device_dir.mkdir()
            _write(device_dir, idVendor=f"{vendor_id:04x}", idProduct=f"{product_id:04x}")
            _write(device_dir, bDeviceClass="00", devpath=port_path.split("-", 1)[1])
            _write(device_dir, manufacturer=manufacturer, product=product, speed="480")
            _write(device_dir, busnum=port_path.split("-", 1)[0], devnum=str(self._next_devnum))
            self._next_devnum += 1
            if serial is not None:
                raw = serial if isinstance(serial, bytes) else serial.encode()
                (device_dir / "serial").write_bytes(raw + b"\n")
            interface = device_dir / f"{port_path}:1.0"
            interface.mkdir()
            _write(interface, bInterfaceClass="08" if mass_storage else "03")
            self._link_bus(device_dir, port_path)
            self._link_bus(interface, interface.name)
            device = SimulatedDevice(port_path, None, Path(source))
            self._devices[port_path] = device
        if with_disk:
            device = self.add_disk(port_path, partitioned=partitioned)
        self._changed()
        return device

    def add_disk(self, port_path: str, *, partitioned: bool = True) -> SimulatedDevice:
        """The disk of a plugged device appears (``sdb``, with ``sdb1`` if partitioned)."""
        with self._lock:
            device = self._devices[port_path]
            disk = f"sd{chr(ord('a') + self._next_disk)}"
            minor = 16 * self._next_disk
            self._next_disk += 1
            host = self._next_host
            self._next_host += 1
            interface = self._device_dir(port_path) / f"{port_path}:1.0"
            scsi = interface / f"host{host}" / f"target{host}:0:0" / f"{host}:0:0:0"
            disk_dir = scsi / "block" / disk
            disk_dir.mkdir(parents=True)
            sectors = _DEFAULT_SIZE // 512
            _write(disk_dir, dev=f"8:{minor}", size=str(sectors), removable="1", ro="0")
            _write(disk_dir, uevent=f"MAJOR=8\nMINOR={minor}\nDEVNAME={disk}\nDEVTYPE=disk")
            os.symlink(f"../../../{host}:0:0:0", disk_dir / "device")
            names = [disk]
            if partitioned:
                part = disk_dir / f"{disk}1"
                part.mkdir()
                _write(part, partition="1", start="2048", size=str(sectors - 2048))
                _write(
                    part,
                    dev=f"8:{minor + 1}",
                    uevent=f"MAJOR=8\nMINOR={minor + 1}\nDEVNAME={disk}1\nDEVTYPE=partition\n"
                    "PARTN=1",
                )
                names.append(part.name)
            self._nodes[names[-1]] = device.source
            # The node as a station process sees it, under dev/: a link to the source, so
            # `evidock run` with docking.usb_dev_root pointing here mounts the same source.
            dev = self.root / "dev"
            dev.mkdir(exist_ok=True)
            node = dev / names[-1]
            node.unlink(missing_ok=True)
            os.symlink(os.path.abspath(device.source), node)
            target = os.path.relpath(disk_dir, self.sys_root / "block")
            os.symlink(target, self.sys_root / "block" / disk)
            for name in names:
                inner = disk_dir if name == disk else disk_dir / name
                link = self.sys_root / "class" / "block" / name
                os.symlink(os.path.relpath(inner, link.parent), link)
            device = SimulatedDevice(port_path, disk, device.source)
            self._devices[port_path] = device
        self._changed()
        return device

    def unplug(self, port_path: str) -> None:
        """Take the device out: its disk, then its interfaces, then the device go."""
        with self._lock:
            device = self._devices.pop(port_path)
            if device.disk is not None:
                for link in (self.sys_root / "class" / "block").iterdir():
                    if link.name.startswith(device.disk):
                        link.unlink()
                        self._nodes.pop(link.name, None)
                        (self.root / "dev" / link.name).unlink(missing_ok=True)
                (self.sys_root / "block" / device.disk).unlink()
            links = self.sys_root / "bus" / "usb" / "devices"
            (links / f"{port_path}:1.0").unlink()
            (links / port_path).unlink()
            shutil.rmtree(self._device_dir(port_path))
        self._changed()

    # --- the tree -----------------------------------------------------------------------

    def _hubs(self, port_path: str) -> Path:
        """The folder the device sits in, making its root hub and hubs as Linux lists them."""
        bus, _, ports = port_path.partition("-")
        folder = self.sys_root / _CONTROLLER / f"usb{bus}"
        if not folder.exists():
            folder.mkdir()
            _write(folder, idVendor="1d6b", idProduct="0002", bDeviceClass="09", devpath="0")
            self._link_bus(folder, folder.name)
        chain = ports.split(".")
        for depth in range(1, len(chain)):
            hub = f"{bus}-{'.'.join(chain[:depth])}"
            folder = folder / hub
            if not folder.exists():
                folder.mkdir()
                _write(folder, idVendor="05e3", idProduct="0608", bDeviceClass="09")
                _write(folder, devpath=hub.split("-", 1)[1], product="USB2.0 Hub")
                self._link_bus(folder, hub)
        return folder

    def _device_dir(self, port_path: str) -> Path:
        return self._hubs(port_path) / port_path

    def _link_bus(self, folder: Path, name: str) -> None:
        link = self.sys_root / "bus" / "usb" / "devices" / name
        os.symlink(os.path.relpath(folder, link.parent), link)

    def _changed(self) -> None:
        callback = self._on_change
        if callback is not None:
            callback()


def example_profile_for(vendor_id: int, product_id: int) -> RecorderProfile | None:
    """Like :func:`docking.profiles.profile_for_usb`, but the placeholder ids match too:
    the profile lookup for a simulated bus, whose recorders carry the example ids."""
    for profile in load_profiles().values():
        if any((u.vendor_id, u.product_id) == (vendor_id, product_id) for u in profile.usb):
            return profile
    return None


def _write(folder: Path, **files: str) -> None:
    for name, text in files.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
