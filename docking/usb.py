"""The USB detector: recorders found on the bus, mounted read-only, one folder per slot.

Each pass enumerates the bus (:class:`docking.sysfs.UsbBus`) and compares it with what
was seen before, keyed by port path (the slot):

* a device whose USB ids match a recorder profile is a recorder; a mass-storage device
  no profile knows is ignored (logged once, listed by :meth:`UsbDetector.ignored`) unless
  ``docking.unknown_devices = "ingest"``, which treats it with the default profile;
* a recorder's filesystems (its partitions, or its bare disk) are probed and mounted
  read-only under ``docking.mount_root``, in the folder named by its slot's label
  (``docking.slots``), else by its port path; :class:`Docked` is reported only once the
  mount succeeded. A recorder whose disk or device node is not there yet is tried again
  on each pass for :data:`DISK_WAIT` seconds; a mount that fails is logged with what to
  do, reported by :meth:`UsbDetector.docked`, and not tried again until it is re-docked;
* a device gone from its port (or replaced by another) is reported :class:`Undocked`,
  then unmounted, lazily if a session still has files open.

Two devices with the same USB serial on two ports are both reported, each with its own
port path; the detector never merges them (the session refuses the conflict).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from config import DockingSection
from config.common import printable
from docking.detector import Docked, DockingEvent, EventCallback, Undocked, UsbIdentity
from docking.errors import MountRootError
from docking.mounting import (
    MOUNTABLE,
    MountedVolume,
    Mounter,
    MountError,
    SystemMounter,
    make_mount_point,
    remove_mount_point,
)
from docking.profiles import RecorderProfile, get_profile, profile_for_usb
from docking.sysfs import BlockPartition, SysfsBus, UsbBus, UsbRecord

log = logging.getLogger(__name__)

DISK_WAIT = 10.0
"""Seconds a recorder may take to show a disk, a device node and a filesystem."""

WAITING = "waiting for its disk, device node and filesystem"

WAITING = "waiting for its disk, device node and filesystem"

_Key = tuple[int, int, str | None, Path, int | None]
ProfileLookup = Callable[[int, int], RecorderProfile | None]


@dataclass(frozen=True)
class DockedDevice:
    """A recorder (or an ingested unknown device) on the bus, for status pages."""

    identity: UsbIdentity
    slot: str
    volume: Path  # its folder under the mount root
    mounted: bool
    profile: str
    partition: str | None  # "sdb1"; None while its disk has not appeared
    fstype: str | None
    problem: str | None  # why it is not mounted
    serial_shared_with: tuple[str, ...] = ()  # port paths of other devices with its serial


@dataclass(frozen=True)
class IgnoredDevice:
    """A mass-storage device no recorder profile knows, left alone (for IT)."""

    identity: UsbIdentity
    manufacturer: str | None
    product: str | None
    reason: str


@dataclass
class _Volume:
    partition: BlockPartition | None
    folder: Path
    fstype: str | None = None
    mounted: MountedVolume | None = None
    problem: str | None = None


@dataclass
class _Device:
    key: _Key  # what makes it the same device on its port
    identity: UsbIdentity
    profile: str
    slot: str
    folder: str  # name of its folder under the mount root
    first_seen: float
    settled: bool = False  # mounted, or failed for good: not tried again
    warned: bool = False
    volumes: list[_Volume] = field(default_factory=list)


class UsbDetector:
    """A :class:`docking.detector.RecorderDetector` for recorders on the station's USB bus.

    ``step()`` is one pass (tests drive it with ``start(worker=False)`` and their own
    clock); the worker thread runs a pass at start, on every bus event and every
    ``docking.usb_poll_seconds``. Events are reported from that thread, one at a time.
    """

    def __init__(
        self,
        on_event: EventCallback,
        docking: DockingSection,
        *,
        bus: UsbBus | None = None,
        mounter: Mounter | None = None,
        clock: Callable[[], float] = time.monotonic,
        profile_for: ProfileLookup = profile_for_usb,
    ) -> None:
        self.mount_root = Path(os.path.abspath(docking.mount_root))
        self._on_event = on_event
        self._docking = docking
        self._bus: UsbBus = bus if bus is not None else SysfsBus()
        self._mounter: Mounter = mounter if mounter is not None else SystemMounter()
        self._clock = clock
        self._profile_for = profile_for
        self._lock = threading.Lock()  # guards _devices and _ignored
        self._step_lock = threading.Lock()  # one pass at a time
        self._devices: dict[str, _Device] = {}
        self._ignored: dict[str, tuple[_Key, IgnoredDevice]] = {}
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._started = False
        self._worker: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self, *, worker: bool = True) -> None:
        """Unmount what an earlier run left under the mount root, then watch the bus; the
        first pass finds recorders docked while the station was down."""
        if self._started:
            raise RuntimeError("a UsbDetector starts once; make a new one to watch again")
        if not self.mount_root.is_dir():
            raise MountRootError(
                f"mount root {str(self.mount_root)!r} is not a folder: create it or set "
                "docking.mount_root to where the station mounts recorders"
            )
        self._started = True
        for leftover in self._mounter.mounts_under(self.mount_root):
            log.info("unmounting %s, left mounted by an earlier run", printable(str(leftover)))
            self._release(leftover)
        if not worker:
            return
        if not self._bus.watch(self._kick.set):
            log.info("polling the USB bus every %g s", self._docking.usb_poll_seconds)
        self._worker = threading.Thread(target=self._run, name="evidock-usb-detector")
        self._worker.daemon = True
        self._worker.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop watching, join the worker, and unmount every recorder (lazily if busy)."""
        self._stop.set()
        self._kick.set()
        self._bus.unwatch()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        with self._step_lock, self._lock:
            devices, self._devices = list(self._devices.values()), {}
            self._ignored.clear()
        for device in devices:
            self._unmount(device)

    def __enter__(self) -> UsbDetector:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()  # before the pass: an event during it brings another
            try:
                self.step()
            except Exception:  # the detector's boundary: log it, try again next pass
                log.exception("USB pass failed; trying again")
            self._kick.wait(self._docking.usb_poll_seconds)

    # --- one pass -------------------------------------------------------------------------

    def step(self) -> None:
        """Enumerate the bus once: report removals, then mount and report arrivals."""
        with self._step_lock:
            now = self._clock()
            records = {record.port_path: record for record in self._bus.devices()}
            gone: list[_Device] = []
            with self._lock:
                for port, seen in list(self._devices.items()):
                    record = records.get(port)
                    if record is None or _key(record) != seen.key:
                        gone.append(self._devices.pop(port))
                for port, (key, _) in list(self._ignored.items()):
                    if port not in records or _key(records[port]) != key:
                        del self._ignored[port]
            for left in gone:
                self._removed(left)
            for port, record in records.items():
                if self._stop.is_set():
                    break
                device: _Device | None = self._devices.get(port)
                if device is None:
                    device = self._arrived(record, now)
                if device is not None and not device.settled:
                    for event in self._mount(device, record, now):
                        self._call(event)

    def _removed(self, device: _Device) -> None:
        for volume in device.volumes:
            if volume.mounted is not None:
                self._call(Undocked(volume.folder, usb=device.identity, slot=device.slot))
        log.info("slot %s: %s removed", printable(device.slot), _describe(device.identity))
        self._unmount(device)

    def _arrived(self, record: UsbRecord, now: float) -> _Device | None:
        identity = self._identity(record)
        profile = self._profile_for(record.vendor_id, record.product_id)
        if profile is None:
            if not record.mass_storage:
                return None  # a keyboard, a hub: not ours (looked at again each pass)
            if self._docking.unknown_devices == "ignore":
                self._ignore(record, identity)
                return None
            profile = get_profile(self._docking.recorder_profile)
            log.warning(
                "port %s: %s is not a known recorder; ingesting it with profile %s "
                '(docking.unknown_devices = "ingest")',
                record.port_path,
                _describe(identity),
                profile.name,
            )
        slot = self._slot(record.port_path)
        device = _Device(
            key=_key(record),
            identity=identity,
            profile=profile.name,
            slot=slot,
            folder=self._folder_name(slot, record.port_path),
            first_seen=now,
        )
        with self._lock:
            self._devices[record.port_path] = device
            twins = [
                f"{d.identity.port_path} (slot {d.slot})"
                for d in self._devices.values()
                if d is not device and identity.serial and d.identity.serial == identity.serial
            ]
        if twins:
            log.warning(
                "USB serial %s is on port %s (slot %s) and on %s: both are reported, "
                "never merged; take one of them out",
                printable(identity.serial or ""),
                record.port_path,
                printable(device.slot),
                ", ".join(printable(t) for t in twins),
            )
        return device

    def _ignore(self, record: UsbRecord, identity: UsbIdentity) -> None:
        if record.port_path in self._ignored:
            return  # logged once per docking
        reason = (
            f"USB id {record.usb_id} is in no recorder profile; "
            'set docking.unknown_devices = "ingest" to copy such devices'
        )
        ignored = IgnoredDevice(identity, record.manufacturer, record.product, reason)
        with self._lock:
            self._ignored[record.port_path] = (_key(record), ignored)
        log.warning(
            "port %s: %s (%s %s) is not a recorder: not ingested (%s)",
            record.port_path,
            _describe(identity),
            printable(record.manufacturer or "?"),
            printable(record.product or "?"),
            reason,
        )

    def _mount(self, device: _Device, record: UsbRecord, now: float) -> list[DockingEvent]:
        """Mount each filesystem of a recorder; wait (up to DISK_WAIT) for what is not
        there yet; settle the device once mounted or failed for good."""
        waited_out = now - device.first_seen >= DISK_WAIT
        probed: list[tuple[BlockPartition, Path, str]] = []
        found: list[str] = []
        for partition in record.partitions:
            node = self._bus.node(partition)
            try:
                fstype = self._mounter.probe(node) if os.path.exists(node) else None
            except MountError as exc:
                found.append(f"{partition.name}: {exc}")
                continue
            found.append(f"{partition.name}: {fstype or 'no filesystem'}")
            if fstype in (*MOUNTABLE, "bind"):
                probed.append((partition, node, fstype))
        if not probed:
            if not waited_out:
                return []  # its disk, node or partition table may still be on its way
            what = "; ".join(found) or "no disk: is it in mass-storage (U-disk) mode?"
            self._settle_failed(device, f"nothing to mount after {DISK_WAIT:g} s ({what})")
            return []
        events: list[DockingEvent] = []
        volumes = []
        for index, (partition, node, fstype) in enumerate(probed):
            folder = self._folder(device, partition if index else None)
            volume = _Volume(partition, folder, fstype)
            try:
                make_mount_point(folder)
                volume.mounted = self._mounter.mount(node, folder, fstype)
            except MountError as exc:
                volume.problem = str(exc)
                remove_mount_point(folder)
                log.error(
                    "slot %s: %s not mounted: %s",
                    printable(device.slot),
                    _describe(device.identity),
                    printable(volume.problem),
                )
            else:
                events.append(Docked(folder, usb=device.identity, slot=device.slot))
                log.info(
                    "slot %s: %s mounted read-only at %s",
                    printable(device.slot),
                    _describe(device.identity),
                    printable(str(folder)),
                )
            volumes.append(volume)
        with self._lock:
            device.volumes = volumes
            device.settled = True
        return events

    def _settle_failed(self, device: _Device, problem: str) -> None:
        with self._lock:
            device.volumes = [_Volume(None, self._folder(device, None), problem=problem)]
            device.settled = True
        log.error(
            "slot %s: %s: %s; take it out and dock it again",
            printable(device.slot),
            _describe(device.identity),
            printable(problem),
        )

    def _unmount(self, device: _Device) -> None:
        for volume in device.volumes:
            if volume.mounted is not None:
                self._release(volume.folder)

    def _release(self, folder: Path) -> None:
        try:
            self._mounter.unmount(folder)
        except MountError as exc:
            log.error("%s; it stays mounted read-only", printable(str(exc)))
            return
        remove_mount_point(folder)

    # --- names --------------------------------------------------------------------------

    def _identity(self, record: UsbRecord) -> UsbIdentity:
        serial = record.serial
        if serial is not None and (printable(serial) != serial or len(serial) > 126):
            log.warning(
                "port %s: USB serial %s holds control characters or is too long: not taken",
                record.port_path,
                printable(serial[:130]),
            )
            serial = None
        return UsbIdentity(record.vendor_id, record.product_id, serial, record.port_path)

    def _slot(self, port_path: str) -> str:
        label = self._docking.slots.get(port_path)
        return port_path if label is None else str(label)

    def _folder_name(self, slot: str, port_path: str) -> str:
        """The slot's label, when it can name a folder no other device uses."""
        with self._lock:
            taken = {d.folder for d in self._devices.values()}
        if _safe_name(slot) and slot not in taken:
            return slot
        log.warning(
            "slot label %s cannot name a folder of its own: port %s names it instead",
            printable(slot),
            port_path,
        )
        return port_path

    def _folder(self, device: _Device, partition: BlockPartition | None) -> Path:
        """The device's folder; a second filesystem of the same recorder gets ``-pN``."""
        if partition is None:
            return self.mount_root / device.folder
        return self.mount_root / f"{device.folder}-p{partition.number or partition.name}"

    # --- for status pages -----------------------------------------------------------------

    def docked(self) -> list[DockedDevice]:
        """Every recorder on the bus, mounted or not (then with its problem)."""
        with self._lock:
            devices = list(self._devices.values())
            out: list[DockedDevice] = []
            for device in devices:
                twins = tuple(
                    d.identity.port_path
                    for d in devices
                    if d is not device
                    and device.identity.serial
                    and d.identity.serial == device.identity.serial
                )
                volumes = device.volumes or [
                    _Volume(None, self._folder(device, None), problem=WAITING)
                ]
                out.extend(
                    DockedDevice(
                        identity=device.identity,
                        slot=device.slot,
                        volume=v.folder,
                        mounted=v.mounted is not None,
                        profile=device.profile,
                        partition=v.partition.name if v.partition else None,
                        fstype=v.fstype,
                        problem=v.problem,
                        serial_shared_with=twins,
                    )
                    for v in volumes
                )
        return sorted(out, key=lambda d: (d.identity.port_path, str(d.volume)))

    def ignored(self) -> list[IgnoredDevice]:
        """Mass-storage devices left alone because no recorder profile knows them."""
        with self._lock:
            return sorted(
                (i for _, i in self._ignored.values()), key=lambda d: d.identity.port_path
            )

    @contextmanager
    def writable(self, volume: Path) -> Iterator[Path]:
        """The recorder mounted at ``volume``, read-write inside the block only (a wipe)."""
        wanted = Path(os.path.abspath(volume))
        with self._lock:
            mounts = [
                v.mounted
                for d in self._devices.values()
                for v in d.volumes
                if v.mounted is not None and v.folder == wanted
            ]
        if not mounts:
            raise MountError(f"no recorder is mounted at {volume}: dock it again")
        with self._mounter.writable(mounts[0]) as path:
            yield path

    def _call(self, event: DockingEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a callback boundary: log it, keep watching the other slots
            log.exception("docking callback failed for %s", event.volume)


def _key(record: UsbRecord) -> _Key:
    """The same device on its port: a recorder swapped for another (or taken out and put
    back) between two passes gets a new device number from the bus, so it differs."""
    return (record.vendor_id, record.product_id, record.serial, record.sys_path, record.devnum)


def _describe(identity: UsbIdentity) -> str:
    serial = printable(identity.serial) if identity.serial else "no serial"
    return f"USB {identity.vendor_id:04x}:{identity.product_id:04x} ({serial})"


def _safe_name(name: str) -> bool:
    return (
        0 < len(name) <= 64
        and name not in (".", "..")
        and "/" not in name
        and printable(name) == name
    )
