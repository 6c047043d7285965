from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import DockingSection
from docking import MountRootError, MountWatcher, RecorderDetector

# watchdog's recursive inotify emitter races with `mkdir -p` under a watched folder and
# warns that it re-registers its own callback for the same watch: harmless, and not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Callback with id .* already exists for watch:RuntimeWarning"
)

SETTLE = 0.3
RESCAN = 0.5


class Calls:
    """Thread-safe record of callback calls with their monotonic times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[Path, float]] = []

    def __call__(self, path: Path) -> None:
        with self._lock:
            self.items.append((path, time.monotonic()))

    def paths(self) -> list[Path]:
        with self._lock:
            return [p for p, _ in self.items]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Path]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.paths()) < count:
            time.sleep(0.02)
        return self.paths()


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == [], f"threads left running: {leftover}"


def _write_volume_at_once(volume: Path) -> float:
    """Create a volume folder and its files in one go, as a mount makes them appear."""
    (volume / "DCIM" / "100MEDIA").mkdir(parents=True)
    for n in range(3):
        (volume / "DCIM" / "100MEDIA" / f"20261122_08301{n}_000{n}.MP4").write_bytes(b"v" * 4096)
    (volume / "DEVICE.INF").write_text("serial=W1\n")
    return time.monotonic()


def _watcher(root: Path, on_volume: Calls, on_removed: Calls | None = None) -> MountWatcher:
    return MountWatcher(
        root, on_volume, on_removed=on_removed, settle_seconds=SETTLE, rescan_seconds=RESCAN
    )


def test_a_new_volume_is_reported_once_after_settling(
    tmp_path: Path, no_leftover_threads: None
) -> None:
    docked, removed = Calls(), Calls()
    with _watcher(tmp_path, docked, removed) as watcher:
        assert isinstance(watcher, RecorderDetector) and watcher.running
        written = _write_volume_at_once(tmp_path / "REC01")
        assert docked.wait_for(1) == [tmp_path / "REC01"]
        assert docked.items[0][1] - written >= SETTLE * 0.9
        time.sleep(RESCAN * 2.5)  # several rescans and no new events: still once
        assert docked.paths() == [tmp_path / "REC01"]
        shutil.rmtree(tmp_path / "REC01")
        assert removed.wait_for(1) == [tmp_path / "REC01"]
        time.sleep(SETTLE)
    assert not watcher.running
    assert docked.paths() == [tmp_path / "REC01"] and removed.paths() == [tmp_path / "REC01"]


def test_volumes_present_at_start_are_reported(tmp_path: Path, no_leftover_threads: None) -> None:
    _write_volume_at_once(tmp_path / "A")
    _write_volume_at_once(tmp_path / "B")
    docked = Calls()
    with _watcher(tmp_path, docked):
        assert sorted(docked.wait_for(2)) == [tmp_path / "A", tmp_path / "B"]


def test_a_volume_still_being_written_waits_for_quiet(
    tmp_path: Path, no_leftover_threads: None
) -> None:
    docked = Calls()
    with _watcher(tmp_path, docked):
        volume = tmp_path / "BUSY"
        volume.mkdir()
        last_write = time.monotonic()
        for n in range(8):  # 8 writes 0.1 s apart: never SETTLE of quiet until the end
            (volume / f"{n}.MP4").write_bytes(b"x")
            last_write = time.monotonic()
            time.sleep(0.1)
        assert docked.wait_for(1) == [volume]
        assert docked.items[0][1] - last_write >= SETTLE * 0.9


def test_empty_mount_point_waits_for_its_filesystem(
    tmp_path: Path, no_leftover_threads: None
) -> None:
    docked = Calls()
    with _watcher(tmp_path, docked):
        (tmp_path / "EMPTY").mkdir()
        time.sleep(SETTLE + RESCAN)
        assert docked.paths() == []
        (tmp_path / "EMPTY" / "a.MP4").write_bytes(b"x")
        assert docked.wait_for(1) == [tmp_path / "EMPTY"]


def test_links_and_files_in_the_mount_root_are_not_volumes(
    tmp_path: Path, no_leftover_threads: None
) -> None:
    elsewhere = tmp_path / "elsewhere"
    _write_volume_at_once(elsewhere)
    root = tmp_path / "mnt"
    root.mkdir()
    (root / "link").symlink_to(elsewhere, target_is_directory=True)
    (root / "stray.MP4").write_bytes(b"x")
    docked = Calls()
    with _watcher(root, docked):
        time.sleep(SETTLE + RESCAN)
        _write_volume_at_once(root / "REAL")
        assert docked.wait_for(1) == [root / "REAL"]
        time.sleep(SETTLE)
    assert docked.paths() == [root / "REAL"]


def test_a_failing_callback_does_not_stop_the_watcher(
    tmp_path: Path, no_leftover_threads: None, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Calls()

    def flaky(path: Path) -> None:
        seen(path)
        if path.name == "FIRST":
            raise RuntimeError("agent could not open a session")

    with _watcher(tmp_path, flaky):  # type: ignore[arg-type]
        _write_volume_at_once(tmp_path / "FIRST")
        assert seen.wait_for(1) == [tmp_path / "FIRST"]
        _write_volume_at_once(tmp_path / "SECOND")
        assert seen.wait_for(2) == [tmp_path / "FIRST", tmp_path / "SECOND"]
    assert "docking callback failed" in caplog.text


def test_redocking_is_a_new_appearance(tmp_path: Path, no_leftover_threads: None) -> None:
    docked, removed = Calls(), Calls()
    with _watcher(tmp_path, docked, removed):
        _write_volume_at_once(tmp_path / "REC")
        docked.wait_for(1)
        shutil.rmtree(tmp_path / "REC")
        removed.wait_for(1)
        _write_volume_at_once(tmp_path / "REC")
        assert docked.wait_for(2) == [tmp_path / "REC", tmp_path / "REC"]


def test_missing_mount_root_is_a_clear_error(tmp_path: Path, no_leftover_threads: None) -> None:
    watcher = _watcher(tmp_path / "absent", Calls())
    with pytest.raises(MountRootError, match=r"docking\.mount_root"):
        watcher.start()
    watcher.stop()


def test_built_from_the_station_config(tmp_path: Path, no_leftover_threads: None) -> None:
    section = DockingSection(mount_root=tmp_path, settle_seconds=0.1, rescan_seconds=0.2)
    docked = Calls()
    watcher = MountWatcher.from_config(section, docked)
    watcher.start()
    try:
        _write_volume_at_once(tmp_path / "CFG")
        assert docked.wait_for(1) == [tmp_path / "CFG"]
    finally:
        watcher.stop()
    with pytest.raises(RuntimeError, match="starts once"):
        watcher.start()
