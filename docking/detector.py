"""The detection seam: how the agent learns that a recorder was docked or undocked.

Two kinds of detector meet the agent through :class:`RecorderDetector`:

* :class:`docking.watcher.MountWatcher` (here now): watches the folder under which
  recorder volumes are mounted, and reports each volume once its files have settled.
* a USB detector (a later issue, NOT built here): will use pyudev where a udev daemon
  runs, or poll pyusb otherwise, match vendor/product ids against the recorder profiles
  (``docking.profiles.profile_for_usb``) and report the mounted volume of a known
  recorder with its :class:`UsbIdentity`. It must implement this same protocol, so the
  agent needs no change, and tests that cannot have USB hardware may drive a stand-in
  behind it.

Events (:class:`Docked`, :class:`Undocked`) carry what the detector knows: the volume's
path, and for USB the vendor/product id, serial and port path. They are delivered to
the callback given when a detector is made, from the detector's own thread, one at a
time; a callback should hand the work off quickly. The daemon takes a
:data:`DetectorFactory` and never builds a detector itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class UsbIdentity:
    """What the USB bus says about a docked device (all from sysfs / pyudev / pyusb)."""

    vendor_id: int  # idVendor, e.g. 0x2e8a
    product_id: int  # idProduct
    serial: str | None  # iSerialNumber, when the device has one
    port_path: str  # bus-port path such as "1-1.3": names the station's slot


@dataclass(frozen=True)
class Docked:
    """A recorder's volume is ready to read at ``volume``.

    ``usb`` is None when the detector only sees folders (the mount-root watcher);
    ``slot`` is the station's name for the USB port, when the station knows it.
    """

    volume: Path
    usb: UsbIdentity | None = None
    slot: str | None = None


@dataclass(frozen=True)
class Undocked:
    """The recorder of ``volume`` was taken away (or its volume unmounted)."""

    volume: Path
    usb: UsbIdentity | None = None
    slot: str | None = None


DockingEvent = Docked | Undocked
EventCallback = Callable[[DockingEvent], None]
"""Called with each event, from the detector's own thread, one at a time."""

VolumeCallback = Callable[[Path], None]
"""Called with the path of a docked (or undocked) recorder volume."""


@runtime_checkable
class RecorderDetector(Protocol):
    """Something that reports :class:`Docked` and :class:`Undocked` events until stopped.

    A detector is made with the :data:`EventCallback` it reports to.
    """

    def start(self) -> None:
        """Begin reporting; recorders already present are reported too."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop reporting and join every thread the detector started."""

    @property
    def running(self) -> bool:
        """True between start() and stop()."""


DetectorFactory = Callable[[EventCallback], RecorderDetector]
"""How the daemon makes its detector: given the callback, return a detector (not started)."""
