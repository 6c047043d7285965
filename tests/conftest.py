"""Shared fixtures: simulated recorder volumes made with real ffmpeg, and the CLI."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docking import generate_volume


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail a test that leaves threads behind (workers must stop on their stop event).

    Daemon threads count too: every thread of the station is one, so that a stuck worker
    cannot keep the process alive, and a leaked hash lane or watcher must still fail here.
    """
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(timeout=5)
    alive = [f"{t.name}{' (daemon)' if t.daemon else ''}" for t in leftover if t.is_alive()]
    assert alive == [], f"threads left running: {alive}"


@pytest.fixture(scope="session")
def recorder_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated recorder (3 clips, an audio file, a photo), made once per run."""
    root = tmp_path_factory.mktemp("template") / "REC0001"
    generate_volume(
        root,
        serial="REC0001",
        clips=3,
        seconds=2,
        start=datetime(2026, 11, 22, 8, 30, 15, tzinfo=UTC),
        audio=True,
        photo=True,
    )
    _TEMPLATES[root] = _listing(root)
    return root


# The session's shared recorder, as made: a test that changes it (docking it as a USB
# source the station then wipes, say) breaks every later test, so it fails itself.
_TEMPLATES: dict[Path, list[tuple[str, int, int]]] = {}


def _listing(root: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    )


@pytest.fixture(autouse=True)
def shared_recorder_unchanged() -> Iterator[None]:
    yield
    for root, made in _TEMPLATES.items():
        assert _listing(root) == made, f"this test changed the shared recorder {root}: use a copy"


@pytest.fixture
def recorder(recorder_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the simulated recorder that a test may change."""
    dest = tmp_path / "mount" / recorder_template.name
    shutil.copytree(recorder_template, dest)
    return dest
