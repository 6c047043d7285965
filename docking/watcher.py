"""Watching the mount root: a recorder volume is reported once its files have settled.

Events alone are not trusted: inotify can miss the ``created`` events of files written at
once into a just-created folder, and a filesystem mounted onto an existing folder makes no
event at all. So the mount root is listed at start, whenever an event touches it, and
every ``rescan_seconds``; events only speed things up and tell when a volume is still busy.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from config import DockingSection
from docking.detector import VolumeCallback
from docking.errors import MountRootError

log = logging.getLogger(__name__)

# Reads (ours or anyone's) are not activity: only changes delay a volume's settling.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


@dataclass
class _Appearance:
    identity: tuple[int, int]  # (st_dev, st_ino): a mount onto the folder changes it
    last_activity: float
    announced: bool = False


class MountWatcher:
    """A :class:`docking.detector.RecorderDetector` for volumes mounted under a folder.

    ``on_volume(path)`` is called once per appearance of a non-empty subfolder, after
    ``settle_seconds`` without changes inside it; ``on_removed(path)`` when a reported
    volume disappears (or is replaced by another mount). An empty folder is not reported:
    it is a mount point whose filesystem is not mounted yet. Callbacks run on the
    watcher's own thread, one at a time; an exception in one is logged and the watcher
    carries on, because one bad volume must not stop the station seeing the next.
    """

    def __init__(
        self,
        mount_root: Path,
        on_volume: VolumeCallback,
        *,
        on_removed: VolumeCallback | None = None,
        settle_seconds: float = 1.0,
        rescan_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settle_seconds < 0 or rescan_seconds <= 0:
            raise ValueError("settle_seconds must be >= 0 and rescan_seconds > 0")
        self.mount_root = Path(os.path.abspath(mount_root))
        self._on_volume = on_volume
        self._on_removed = on_removed
        self._settle = settle_seconds
        self._rescan = rescan_seconds
        self._clock = clock
        self._tick = max(0.02, min(0.25, settle_seconds / 4))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._activity: dict[Path, float] = {}  # written by watchdog's thread
        self._rescan_requested = True
        self._seen: dict[Path, _Appearance] = {}  # owned by the worker thread
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    @classmethod
    def from_config(
        cls,
        section: DockingSection,
        on_volume: VolumeCallback,
        on_removed: VolumeCallback | None = None,
    ) -> MountWatcher:
        return cls(
            section.mount_root,
            on_volume,
            on_removed=on_removed,
            settle_seconds=section.settle_seconds,
            rescan_seconds=section.rescan_seconds,
        )

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("a MountWatcher starts once; make a new one to watch again")
        if not self.mount_root.is_dir():
            raise MountRootError(
                f"mount root {str(self.mount_root)!r} is not a folder: create it or set "
                "docking.mount_root to where recorder volumes are mounted"
            )
        observer = Observer()
        observer.schedule(_Events(self), os.fspath(self.mount_root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._worker = threading.Thread(target=self._run, name="evidock-mount-watcher")
        self._worker.daemon = True
        self._worker.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)

    def __enter__(self) -> MountWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- watchdog's thread ------------------------------------------------------------

    def _note_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READ_ONLY_EVENTS:
            return
        now = self._clock()
        with self._lock:
            for raw in (event.src_path, getattr(event, "dest_path", "")):
                volume = self._volume_of(os.fsdecode(raw)) if raw else None
                if volume is not None:
                    self._activity[volume] = now
            self._rescan_requested = True

    def _volume_of(self, path: str) -> Path | None:
        rel = os.path.relpath(path, self.mount_root)
        if rel == "." or rel.startswith(".."):
            return None
        return self.mount_root / rel.split(os.sep, 1)[0]

    # --- the worker thread --------------------------------------------------------------

    def _run(self) -> None:
        next_rescan = 0.0
        while not self._stop.is_set():
            now = self._clock()
            with self._lock:
                rescan = self._rescan_requested or now >= next_rescan
                self._rescan_requested = False
                activity, self._activity = self._activity, {}
            removed: list[Path] = []
            if rescan:
                removed = self._reconcile(_list_volumes(self.mount_root), now)
                next_rescan = now + self._rescan
            for volume, at in activity.items():
                if volume in self._seen:
                    seen = self._seen[volume]
                    seen.last_activity = max(seen.last_activity, at)
            for volume in removed:
                self._call(self._on_removed, volume)
            for volume, seen in self._seen.items():
                if self._stop.is_set():
                    break
                settled = now - seen.last_activity >= self._settle
                if not seen.announced and settled and _has_entries(volume):
                    seen.announced = True
                    self._call(self._on_volume, volume)
            self._stop.wait(self._tick)

    def _reconcile(self, listing: dict[Path, tuple[int, int]], now: float) -> list[Path]:
        removed: list[Path] = []
        for volume, seen in list(self._seen.items()):
            if listing.get(volume) != seen.identity:
                del self._seen[volume]
                if seen.announced:
                    removed.append(volume)
        for volume, identity in listing.items():
            if volume not in self._seen:
                self._seen[volume] = _Appearance(identity, last_activity=now)
        return removed

    def _call(self, callback: VolumeCallback | None, volume: Path) -> None:
        if callback is None:
            return
        try:
            callback(volume)
        except Exception:  # a callback boundary: log it, keep watching the other volumes
            log.exception("docking callback failed for %s", volume)


class _Events(FileSystemEventHandler):
    def __init__(self, watcher: MountWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher._note_event(event)


def _list_volumes(mount_root: Path) -> dict[Path, tuple[int, int]]:
    """Real subfolders of the mount root; links are never taken for volumes."""
    volumes: dict[Path, tuple[int, int]] = {}
    try:
        with os.scandir(mount_root) as it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        volumes[mount_root / entry.name] = (st.st_dev, st.st_ino)
                except OSError:
                    continue  # vanished while listed: the next rescan settles it
    except OSError as exc:
        log.warning("cannot list mount root %s: %s", mount_root, exc)
    return volumes


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return next(it, None) is not None
    except OSError:
        return False
