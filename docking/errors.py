"""What can go wrong at the door, as typed errors whose messages say what to do.

::

    DockingError
     ├── ProfileError          recorders.toml is malformed or names an unknown profile
     ├── VolumeError           a volume cannot be opened
     │    ├── VolumeNotFoundError   the path does not exist
     │    └── NotARecorderError     the path is not a folder
     ├── MountRootError        docking.mount_root is missing or not a folder
     └── SimulatorError        ffmpeg is missing or failed while making a simulated recorder
"""

from __future__ import annotations


class DockingError(Exception):
    """Base of every error raised by the docking room."""


class ProfileError(DockingError):
    """A recorder profile is unknown or invalid."""


class VolumeError(DockingError):
    """A recorder volume cannot be opened or read."""


class VolumeNotFoundError(VolumeError):
    """The volume path does not exist."""


class NotARecorderError(VolumeError):
    """The path exists but is not a folder, so it cannot be a recorder volume."""


class SimulatorError(DockingError):
    """The simulated recorder could not be generated."""


class MountRootError(DockingError):
    """The folder under which recorder volumes are mounted is missing or not a folder."""
