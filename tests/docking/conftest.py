"""Shared, session-scoped recorder volumes: ffmpeg runs once, tests copy the result."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from docking.simulated import SimulatedVolume, generate_volume


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> SimulatedVolume:
    """A recorder with two 1 s clips, their NMEA tracks, a WAV and a JPG (read-only use)."""
    root = tmp_path_factory.mktemp("recorder") / "SIM0001"
    return generate_volume(root, clips=2, seconds=1, audio=True, photo=True)


@pytest.fixture
def volume_copy(simulated: SimulatedVolume, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the simulated recorder that a test may make hostile."""
    root = tmp_path / "mnt" / "REC01"
    shutil.copytree(simulated.root, root, symlinks=True)
    yield root
