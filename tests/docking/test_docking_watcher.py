from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from fake_clock import Clock

from config import DockingSection
from docking import (
    Docked,
    DockingEvent,
    MountRootError,
    MountWatcher,
    RecorderDetector,
    Undocked,
)

# watchdog's recursive inotify emitter races with `mkdir -p` under a watched folder and
# warns that it re-registers its own callback for the same watch: harmless, and not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Callback with id .* already exists for watch:RuntimeWarning"
)

SETTLE = 0.25  # binary fractions: the fake clock adds them exactly
RESCAN = 0.5


class Events:
    """Thread-safe record of the events a watcher reported."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.items: list[DockingEvent] = []

    def __call__(self, event: DockingEvent) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def docked(self) -> list[Path]:
        with self._lock:
            return [e.volume for e in self.items if isinstance(e, Docked)]

    def undocked(self) -> list[Path]:
        with self._lock:
            return [e.volume for e in self.items if isinstance(e, Undocked)]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[DockingEvent]:
        """For the tests that run the watcher's own thread on the real clock."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


def _stepped(root: Path, events: Events, clock: Clock) -> MountWatcher:
    watcher = MountWatcher(root, events, settle_seconds=SETTLE, rescan_seconds=RESCAN, clock=clock)
    watcher.start(worker=False)
    return watcher


def _write_volume_at_once(volume: Path) -> None:
    """Create a volume folder and its files in one go, as a mount makes them appear."""
    (volume / "DCIM" / "100MEDIA").mkdir(parents=True)
    for n in range(3):
        (volume / "DCIM" / "100MEDIA" / f"20261122_08301{n}_000{n}.MP4").write_bytes(b"v" * 4096)
    (volume / "DEVICE.INF").write_text("serial=W1\n")


def test_a_new_volume_is_reported_once_after_settling(tmp_path: Path) -> None:
    events, clock = Events(), Clock()
    watcher = _stepped(tmp_path, events, clock)
    try:
        assert isinstance(watcher, RecorderDetector)
        _write_volume_at_once(tmp_path / "REC01")
        watcher.step()
        assert events.items == []  # seen, not yet quiet for SETTLE
        clock.advance(SETTLE - 0.0625)
        watcher.step()
        assert events.items == []
        clock.advance(0.0625)
        watcher.step()
        assert events.items == [Docked(tmp_path / "REC01")]
        for _ in range(4):  # several rescans and no change: still once
            clock.advance(RESCAN)
            watcher.step()
        assert events.docked() == [tmp_path / "REC01"]
        shutil.rmtree(tmp_path / "REC01")
        clock.advance(RESCAN)
        watcher.step()
        assert events.items == [Docked(tmp_path / "REC01"), Undocked(tmp_path / "REC01")]
    finally:
        watcher.stop()


def test_volumes_present_at_start_are_reported(tmp_path: Path) -> None:
    _write_volume_at_once(tmp_path / "A")
    _write_volume_at_once(tmp_path / "B")
    events, clock = Events(), Clock()
    watcher = _stepped(tmp_path, events, clock)
    try:
        watcher.step()
        clock.advance(SETTLE)
        watcher.step()
        assert sorted(events.docked()) == [tmp_path / "A", tmp_path / "B"]
    finally:
        watcher.stop()


def test_a_volume_still_being_written_waits_for_quiet(tmp_path: Path) -> None:
    events, clock = Events(), Clock()
    watcher = _stepped(tmp_path, events, clock)
    try:
        volume = tmp_path / "BUSY"
        volume.mkdir()
        for n in range(8):  # a write every 0.125 s: never SETTLE of quiet until the end
            (volume / f"{n}.MP4").write_bytes(b"x")
            watcher.note_change(os.fspath(volume / f"{n}.MP4"))
            watcher.step()
            clock.advance(0.125)
        assert events.items == []
        clock.advance(SETTLE - 0.125 - 0.0625)
        watcher.step()
        assert events.items == []
        clock.advance(0.0625)
        watcher.step()
        assert events.docked() == [volume]
    finally:
        watcher.stop()


def test_empty_mount_point_waits_for_its_filesystem(tmp_path: Path) -> None:
    events, clock = Events(), Clock()
    watcher = _stepped(tmp_path, events, clock)
    try:
        (tmp_path / "EMPTY").mkdir()
        for _ in range(3):
            watcher.step()
            clock.advance(SETTLE + RESCAN)
        assert events.items == []
        (tmp_path / "EMPTY" / "a.MP4").write_bytes(b"x")
        watcher.step()
        assert events.docked() == [tmp_path / "EMPTY"]
    finally:
        watcher.stop()


def test_links_and_files_in_the_mount_root_are_not_volumes(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    _write_volume_at_once(elsewhere)
    root = tmp_path / "mnt"
    root.mkdir()
    (root / "link").symlink_to(elsewhere, target_is_directory=True)
    (root / "stray.MP4").write_bytes(b"x")
    events, clock = Events(), Clock()
    watcher = _stepped(root, events, clock)
    try:
        watcher.step()
        clock.advance(SETTLE + RESCAN)
        watcher.step()
        assert events.items == []
        _write_volume_at_once(root / "REAL")
        clock.advance(RESCAN)
        watcher.step()
        clock.advance(SETTLE)
        watcher.step()
        assert events.items == [Docked(root / "REAL")]
    finally:
        watcher.stop()


def test_a_failing_callback_does_not_stop_the_watcher(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Events()

    def flaky(event: DockingEvent) -> None:
        seen(event)
        if event.volume.name == "FIRST":
            raise RuntimeError("agent could not open a session")

    clock = Clock()
    watcher = MountWatcher(tmp_path, flaky, settle_seconds=SETTLE, clock=clock)
    watcher.start(worker=False)
    try:
        _write_volume_at_once(tmp_path / "FIRST")
        _write_volume_at_once(tmp_path / "SECOND")
        watcher.step()
        clock.advance(SETTLE)
        watcher.step()
        assert sorted(seen.docked()) == [tmp_path / "FIRST", tmp_path / "SECOND"]
    finally:
        watcher.stop()
    assert "docking callback failed" in caplog.text


def test_redocking_is_a_new_appearance(tmp_path: Path) -> None:
    events, clock = Events(), Clock()
    watcher = _stepped(tmp_path, events, clock)
    try:
        for _ in range(2):
            _write_volume_at_once(tmp_path / "REC")
            clock.advance(RESCAN)
            watcher.step()
            clock.advance(SETTLE)
            watcher.step()
            shutil.rmtree(tmp_path / "REC")
            clock.advance(RESCAN)
            watcher.step()
        assert events.items == [Docked(tmp_path / "REC"), Undocked(tmp_path / "REC")] * 2
    finally:
        watcher.stop()


def test_a_remount_onto_the_same_folder_is_a_new_appearance(tmp_path: Path) -> None:
    # A filesystem mounted onto an existing folder changes its (st_dev, st_ino) only;
    # replacing the folder does the same to the listing.
    root = tmp_path / "mnt"
    root.mkdir()
    events, clock = Events(), Clock()
    watcher = _stepped(root, events, clock)
    try:
        _write_volume_at_once(root / "SLOT1")
        watcher.step()
        clock.advance(SETTLE)
        watcher.step()
        os.rename(root / "SLOT1", tmp_path / "old")
        _write_volume_at_once(root / "SLOT1")
        clock.advance(RESCAN)
        watcher.step()
        clock.advance(SETTLE)
        watcher.step()
        assert events.items == [
            Docked(root / "SLOT1"),
            Undocked(root / "SLOT1"),
            Docked(root / "SLOT1"),
        ]
    finally:
        watcher.stop()


def test_the_running_watcher_sees_inotify_events_and_stops(tmp_path: Path) -> None:
    # The watcher's own thread on the real clock, with watchdog's observer: a volume written
    # after start is reported, its removal too, and stop() joins both threads.
    events = Events()
    watcher = MountWatcher(tmp_path, events, settle_seconds=0.05, rescan_seconds=60)
    with watcher:
        assert watcher.running
        _write_volume_at_once(tmp_path / "LIVE")
        assert events.wait_for(1) == [Docked(tmp_path / "LIVE")]
        shutil.rmtree(tmp_path / "LIVE")  # seen by its events: the next rescan is a minute off
        assert events.wait_for(2) == [Docked(tmp_path / "LIVE"), Undocked(tmp_path / "LIVE")]
    assert not watcher.running


def test_missing_mount_root_is_a_clear_error(tmp_path: Path) -> None:
    watcher = MountWatcher(tmp_path / "absent", Events())
    with pytest.raises(MountRootError, match=r"docking\.mount_root"):
        watcher.start()
    watcher.stop()


def test_built_from_the_station_config(tmp_path: Path) -> None:
    section = DockingSection(mount_root=tmp_path, settle_seconds=0.125, rescan_seconds=0.25)
    events, clock = Events(), Clock()
    watcher = MountWatcher.from_config(section, events, clock=clock)
    watcher.start(worker=False)
    try:
        _write_volume_at_once(tmp_path / "CFG")
        watcher.step()
        clock.advance(0.125)
        watcher.step()
        assert events.docked() == [tmp_path / "CFG"]
    finally:
        watcher.stop()
    with pytest.raises(RuntimeError, match="starts once"):
        watcher.start()
