"""The detection seam: how the agent learns that a recorder was docked or undocked.

Two kinds of detector meet the agent through :class:`RecorderDetector`:

* :class:`docking.watcher.MountWatcher` (here now): watches the folder under which
  recorder volumes are mounted, and reports each volume once its files have settled.
* a USB detector (a later issue, NOT built here): will use pyudev where a udev daemon
  runs, or poll pyusb otherwise, match vendor/product ids against the recorder profiles
  (``docking.profiles.profile_for_usb``) and report the mounted volume of a known
  recorder. It must implement this same protocol, so the agent needs no change, and
  tests that cannot have USB hardware may drive a stand-in behind it.

Events are delivered through callbacks given when a detector is made, from the
detector's own thread, one at a time; a callback should hand the work off quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

VolumeCallback = Callable[[Path], None]
"""Called with the path of a docked (or undocked) recorder volume."""


@runtime_checkable
class RecorderDetector(Protocol):
    """Something that reports docked and undocked recorder volumes until stopped."""

    def start(self) -> None:
        """Begin reporting; volumes already present are reported too."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop reporting and join every thread the detector started."""

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
