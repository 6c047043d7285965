"""What the daemon does with docked recorders beyond ingesting them: which detector the
config names, which profile a USB recorder's ids name, and wiping a recorder the station
mounted itself once its footage is safe."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from agent.station import Station
from agent.wipe import perform_wipe, policy_for
from config import DockingSection
from config.common import printable
from docking import (
    Docked,
    EventCallback,
    MountWatcher,
    RecorderDetector,
    RecorderProfile,
    SysfsBus,
    UsbDetector,
    UsbIdentity,
    example_profile_for,
    get_profile,
    profile_for_usb,
)

log = logging.getLogger("evidock")

ProfileLookup = Callable[[int, int], RecorderProfile | None]


def usb_profiles(docking: DockingSection) -> ProfileLookup:
    """How USB ids name a profile: the shipped profiles' placeholder ids count only on a
    simulated bus (``docking.usb_example_ids``)."""
    return example_profile_for if docking.usb_example_ids else profile_for_usb


def detector_for(docking: DockingSection, on_event: EventCallback) -> RecorderDetector:
    """The detector the config names: the USB bus (the station mounts recorders itself)
    or the mount root (something else mounts them)."""
    if docking.detector == "usb":
        return UsbDetector(
            on_event,
            docking,
            bus=SysfsBus(docking.usb_sysfs_root, docking.usb_dev_root),
            profile_for=usb_profiles(docking),
        )
    return MountWatcher.from_config(docking, on_event)


def profile_name_for(docking: DockingSection, usb: UsbIdentity | None) -> str | None:
    """The profile a USB recorder's ids name (None: the station's default)."""
    if usb is None:
        return None
    found = usb_profiles(docking)(usb.vendor_id, usb.product_id)
    return found.name if found is not None else None


def wipe_safe_recorder(
    station: Station,
    conn: sqlite3.Connection,
    event: Docked,
    writable: Callable[[Path], AbstractContextManager[Path]],
    *,
    serial: str,
    session_id: str,
) -> None:
    """Wipe a recorder still in its slot by the policy (the station's, made stricter by
    its profile): read-write for the wipe only, each file proven copied first. A failure
    is logged; the recorder keeps its files."""
    docking = station.config.docking
    profile = get_profile(profile_name_for(docking, event.usb) or docking.recorder_profile)
    policy = policy_for(docking.wipe, profile)
    if policy == "never":
        return
    where = printable(f"slot {event.slot}" if event.slot else str(event.volume))
    try:
        report = perform_wipe(
            conn,
            station.ledger(conn),
            event.volume,
            serial,
            policy,
            profile=profile,
            session_id=session_id,
            writable=writable,
        )
    except Exception as exc:
        log.error(
            "wipe of %s not done: %s: %s; the recorder keeps its files",
            where,
            type(exc).__name__,
            printable(str(exc)),
        )
        return
    log.info(
        "%s: %d files wiped from the recorder (policy %s), each proven copied first",
        where,
        len(report.removed),
        policy,
    )
