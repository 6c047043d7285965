"""The door: recorder detection, mount watching, recorder profiles, simulated recorders."""

from docking.clock import RecorderClock, clock_offset_seconds, read_recorder_clock
from docking.detector import (
    DetectorFactory,
    Docked,
    DockingEvent,
    EventCallback,
    RecorderDetector,
    Undocked,
    UsbIdentity,
    VolumeCallback,
)
from docking.errors import (
    DockingError,
    MountRootError,
    NotARecorderError,
    ProfileError,
    SimulatorError,
    VolumeError,
    VolumeNotFoundError,
)
from docking.mounting import MountedVolume, Mounter, MountError, SystemMounter
from docking.names import display_path, path_b64, raw_path
from docking.profiles import (
    RecorderProfile,
    WipePolicy,
    get_profile,
    load_profiles,
    profile_for_usb,
)
from docking.simulated import SimulatedVolume, generate_volume
from docking.simulated_usb import SimulatedUsbBus, example_profile_for
from docking.sysfs import SysfsBus, UsbBus, UsbRecord
from docking.usb import DockedDevice, IgnoredDevice, UsbDetector
from docking.usb_link import USB2_RATE, USB3_RATE, UsbLink, link_opener
from docking.volume import FootageFile, RecorderVolume, Refusal, VolumeScan, open_volume
from docking.watcher import MountWatcher

__all__ = [
    "USB2_RATE",
    "USB3_RATE",
    "DetectorFactory",
    "Docked",
    "DockedDevice",
    "DockingError",
    "DockingEvent",
    "EventCallback",
    "FootageFile",
    "IgnoredDevice",
    "MountError",
    "MountRootError",
    "MountWatcher",
    "MountedVolume",
    "Mounter",
    "NotARecorderError",
    "ProfileError",
    "RecorderClock",
    "RecorderDetector",
    "RecorderProfile",
    "RecorderVolume",
    "Refusal",
    "SimulatedUsbBus",
    "SimulatedVolume",
    "SimulatorError",
    "SysfsBus",
    "SystemMounter",
    "Undocked",
    "UsbBus",
    "UsbDetector",
    "UsbIdentity",
    "UsbLink",
    "UsbRecord",
    "VolumeCallback",
    "VolumeError",
    "VolumeNotFoundError",
    "VolumeScan",
    "WipePolicy",
    "clock_offset_seconds",
    "display_path",
    "example_profile_for",
    "generate_volume",
    "get_profile",
    "link_opener",
    "load_profiles",
    "open_volume",
    "path_b64",
    "profile_for_usb",
    "raw_path",
    "read_recorder_clock",
]
