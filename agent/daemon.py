"""The station daemon: watch the mount root, one ingest session per docked recorder,
work the upload queue, publish checkpoints, stop cleanly on SIGTERM.

Start-up order follows the invariants: open (and migrate) the database, record the boot
and any config change in the ledger, then start detection, so that nothing is ingested
by a station whose start is not on record.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from agent import anchoring
from agent.clockwatch import ClockWatch
from agent.database import transaction
from agent.delivery import DeliveryReport, deliver_due, folder_target
from agent.errors import EvidockError
from agent.ingest import IngestSession, SessionReport
from agent.progress import Progress
from agent.station import Station, config_digest
from config import StationConfig
from docking import MountWatcher
from hashing import HashingError

log = logging.getLogger("evidock")

MAX_RECORDERS = 24
DELIVERY_SECONDS = 5.0
VERSION = "0.1.0"


def record_boot(station: Station) -> None:
    """``station.booted`` (and ``config.changed`` when the config differs from last boot)."""
    digest = config_digest(station.config)
    conn = station.conn
    ledger = station.ledger()
    with transaction(conn):
        previous = None
        for leaf in ledger.leaves_of_kind("station.booted", newest_first=True, limit=1):
            previous = leaf.body.get("config_sha256")
        if previous is not None and previous != digest:
            ledger.append("config.changed", {"config_sha256": digest, "previous_sha256": previous})
        ledger.append("station.booted", {"version": VERSION, "config_sha256": digest})


def volumes_under(mount_root: Path) -> list[Path]:
    if not mount_root.is_dir():
        return []
    return sorted(p for p in mount_root.iterdir() if p.is_dir() and not p.is_symlink())


class Daemon:
    def __init__(self, station: Station, progress: Progress | None = None) -> None:
        self.station = station
        self.progress = progress
        self.stop_event = threading.Event()
        self.pool = ThreadPoolExecutor(MAX_RECORDERS, thread_name_prefix="ingest")
        self.active: set[Path] = set()
        self.lock = threading.Lock()
        self.signing = threading.Lock()
        self.reports: list[SessionReport] = []
        self.target = folder_target(station)

    def submit(self, volume: Path) -> Future[SessionReport | None] | None:
        with self.lock:
            if volume in self.active:
                return None
            self.active.add(volume)
        return self.pool.submit(self._ingest, volume)

    def _docked(self, volume: Path) -> None:
        self.submit(volume)

    def _ingest(self, volume: Path) -> SessionReport | None:
        try:
            progress = self.progress
            session = IngestSession(
                self.station,
                volume,
                on_bytes=progress.advance if progress else None,
                on_plan=progress.plan if progress else None,
                on_file=progress.file_done if progress else None,
                stop=self.stop_event,
            )
            report = session.run()
        except (EvidockError, HashingError) as exc:
            log.error("docking %s failed: %s", volume, exc)
            return None
        finally:
            with self.lock:
                self.active.discard(volume)
        with self.lock:
            self.reports.append(report)
        log.info(
            "session %s recorder %s: %d new, %d seen, %d problems",
            report.session_id,
            report.recorder,
            report.count("new"),
            report.count("seen"),
            len(report.problems),
        )
        self.checkpoint()
        return report

    def checkpoint(self) -> None:
        # Sessions end concurrently; one checkpoint at a time keeps anchors in order.
        with self.signing:
            conn = self.station.connect()
            try:
                anchoring.publish_checkpoint(self.station, conn, self.target)
            finally:
                conn.close()

    def record_clock_jump(self, clock: ClockWatch) -> None:
        jump = clock.check()
        if jump is None:
            return
        log.warning("station clock moved from %s to %s", jump.expected, jump.found)
        conn = self.station.connect()
        try:
            self.station.ledger(conn).append("clock.adjusted", jump.leaf_body())
        finally:
            conn.close()

    def deliver(self) -> DeliveryReport:
        conn = self.station.connect()
        try:
            return deliver_due(self.station, conn, self.target)
        finally:
            conn.close()

    def ingest_all(self, volumes: Iterable[Path]) -> list[SessionReport]:
        futures = [f for f in (self.submit(v) for v in volumes) if f is not None]
        return [r for r in (f.result() for f in futures) if r is not None]

    def run_forever(self) -> None:
        docking = self.station.config.docking
        watcher = MountWatcher(
            docking.mount_root,
            on_volume=self._docked,
            settle_seconds=docking.settle_seconds,
            rescan_seconds=docking.rescan_seconds,
        )
        watcher.start()
        interval = self.station.config.ledger.checkpoint_minutes * 60
        next_checkpoint = float(interval)
        waited = 0.0
        try:
            clock = ClockWatch()
            while not self.stop_event.wait(DELIVERY_SECONDS):
                self.record_clock_jump(clock)
                self.deliver()
                waited += DELIVERY_SECONDS
                if waited >= next_checkpoint:
                    self.checkpoint()
                    next_checkpoint = waited + interval
        finally:
            watcher.stop()
            self.pool.shutdown(wait=True)
            self.deliver()
            self.checkpoint()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run_daemon(
    config: StationConfig, *, once: bool = False, config_file: Path | None = None
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    station = Station.open(config, config_file=config_file)
    record_boot(station)
    for session_id in station.orphans_closed:
        log.warning("session %s was interrupted by a stop; closed as incomplete", session_id)
    for path in station.store.sweep_staging(config.hashing.staging_max_age_hours * 3600):
        log.info("swept stale partial copy %s", path.name)
    daemon = Daemon(station)
    if once:
        reports = daemon.ingest_all(volumes_under(config.docking.mount_root))
        daemon.close()
        delivery = daemon.deliver()
        daemon.checkpoint()
        for line in delivery.lines():
            log.info("%s", line.strip())
        return 0 if all(r.ok for r in reports) and delivery.ok else 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current files", signum)
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("station %s watching %s", station.station_id, config.docking.mount_root)
    daemon.run_forever()
    return 0
