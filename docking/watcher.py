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
from docking.detector import Docked, DockingEvent, EventCallback, Undocked
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

    ``on_event(Docked(path))`` is called once per appearance of a non-empty subfolder,
    after ``settle_seconds`` without changes inside it; ``on_event(Undocked(path))`` when
    a reported volume disappears (or is replaced by another mount). An empty folder is not
    reported: it is a mount point whose filesystem is not mounted yet. The callback runs on
    the watcher's own thread, one event at a time; an exception in it is logged and the
    watcher carries on, because one bad volume must not stop the station seeing the next.

    Time is the injected monotonic ``clock``; :meth:`step` is one pass of the worker, so a
    test can drive the watcher with its own clock (``start(worker=False)``).
    """

    def __init__(
        self,
        mount_root: Path,
        on_event: EventCallback,
        *,
        settle_seconds: float = 1.0,
        rescan_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settle_seconds < 0 or rescan_seconds <= 0:
            raise ValueError("settle_seconds must be >= 0 and rescan_seconds > 0")
        self.mount_root = Path(os.path.abspath(mount_root))
        self._on_event = on_event
        self._settle = settle_seconds
        self._rescan = rescan_seconds
        self._clock = clock
        self._tick = max(0.02, min(0.25, settle_seconds / 4))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._activity: dict[Path, float] = {}  # written by watchdog's thread
        self._rescan_requested = True
        self._next_rescan = 0.0
        self._seen: dict[Path, _Appearance] = {}  # owned by the worker thread
        self._started = False
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    @classmethod
    def from_config(
        cls,
        section: DockingSection,
        on_event: EventCallback,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> MountWatcher:
        return cls(
            section.mount_root,
            on_event,
            clock=clock,
            settle_seconds=section.settle_seconds,
            rescan_seconds=section.rescan_seconds,
        )

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self, *, worker: bool = True) -> None:
        """Start watching; ``worker=False`` starts no thread at all: the caller drives the
        watcher with :meth:`note_change` and :meth:`step` (tests, on their own clock)."""
        if self._started:
            raise RuntimeError("a MountWatcher starts once; make a new one to watch again")
        if not self.mount_root.is_dir():
            raise MountRootError(
                f"mount root {str(self.mount_root)!r} is not a folder: create it or set "
                "docking.mount_root to where recorder volumes are mounted"
            )
        self._started = True
        if not worker:
            return
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
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.note_change(*(os.fsdecode(raw) for raw in paths if raw))

    def note_change(self, *paths: str) -> None:
        """Something under the mount root changed at ``paths``: the volumes holding them
        are busy now, and the root is listed again on the next pass."""
        now = self._clock()
        with self._lock:
            for path in paths:
                volume = self._volume_of(path)
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
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self._tick)

    def step(self) -> None:
        """One pass: list the mount root when due, report removals, then report each
        volume that has been quiet for ``settle_seconds`` (by the injected clock)."""
        now = self._clock()
        with self._lock:
            rescan = self._rescan_requested or now >= self._next_rescan
            self._rescan_requested = False
            activity, self._activity = self._activity, {}
        removed: list[Path] = []
        if rescan:
            removed = self._reconcile(_list_volumes(self.mount_root), now)
            self._next_rescan = now + self._rescan
        for volume, at in activity.items():
            if volume in self._seen:
                seen = self._seen[volume]
                seen.last_activity = max(seen.last_activity, at)
        for volume in removed:
            self._call(Undocked(volume))
        for volume, seen in list(self._seen.items()):
            if self._stop.is_set():
                break
            settled = now - seen.last_activity >= self._settle
            if not seen.announced and settled and _has_entries(volume):
                seen.announced = True
                self._call(Docked(volume))

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

    def _call(self, event: DockingEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a callback boundary: log it, keep watching the other volumes
            log.exception("docking callback failed for %s", event.volume)


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
