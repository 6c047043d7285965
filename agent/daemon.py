"""The station daemon: watch the mount root, one ingest session per docked recorder,
work the upload queue, publish checkpoints, stop cleanly on SIGTERM.

Start-up order follows the invariants: open (and migrate) the database, record the boot
and any config change in the ledger, then start detection, so that nothing is ingested
by a station whose start is not on record.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from agent import anchoring
from agent.api import serve_api
from agent.clockwatch import ClockWatch
from agent.database import transaction
from agent.delivery import DeliveryReport, deliver_due, delivery_loop, delivery_target
from agent.detection import detector_for, profile_name_for, wipe_safe_recorder
from agent.errors import EvidockError
from agent.ingest import IngestSession, SessionReport
from agent.phases import advance_phases
from agent.progress import Progress
from agent.restarts import RESTART_DELAYS, RESTART_LIMIT, RESTART_WINDOW_SECONDS, RestartBudget
from agent.station import Station, config_digest
from agent.telemetry import Telemetry
from config import StationConfig
from config.common import printable
from docking import (
    DetectorFactory,
    Docked,
    DockingEvent,
    EventCallback,
    RecorderDetector,
    Undocked,
    UsbDetector,
    display_path,
)
from hashing import HashingError

log = logging.getLogger("evidock")

__all__ = ["RESTART_DELAYS", "RESTART_LIMIT", "Daemon", "record_boot", "run_daemon"]

MAX_RECORDERS = 24
DELIVERY_SECONDS = 5.0
TICK_SECONDS = 1.0
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


@dataclass
class WorkerFailure:
    """An ingest worker that ended with an unexpected error (kept for status and tests)."""

    volume: Path
    session_id: str | None
    error: str


class Daemon:
    """The supervisor: one ingest worker per docked recorder, a delivery worker, signed
    checkpoints on a monotonic timer, and one stop that reaches every worker.

    Every worker's outcome is collected: an unexpected error is logged with its session,
    the session is closed ``incomplete`` on record (by the session itself), and the volume
    is tried again after a back-off, at most ``RESTART_LIMIT`` times in
    ``RESTART_WINDOW_SECONDS`` (then it waits until it is docked again).
    """

    def __init__(
        self,
        station: Station,
        progress: Progress | None = None,
        *,
        detector_factory: DetectorFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.station = station
        self.progress = progress
        self.clock = clock
        self.stop_event = threading.Event()
        self.pool = ThreadPoolExecutor(MAX_RECORDERS, thread_name_prefix="evidock-ingest")
        self.lock = threading.Lock()
        self.signing = threading.Lock()
        self.active: dict[Path, threading.Event] = {}  # volume -> its session's stop
        self.docked: dict[Path, Docked] = {}  # what the detector said of each volume
        self.restarts = RestartBudget()
        self.reports: list[SessionReport] = []
        self.failures: list[WorkerFailure] = []
        self.target = delivery_target(station)
        self._detector_factory = detector_factory or self._default_detector
        self._interval = station.config.ledger.checkpoint_minutes * 60.0
        self._next_checkpoint = clock() + self._interval
        self._delivery: threading.Thread | None = None
        self.detector: RecorderDetector | None = None
        # Status, events and checkpoints over MQTT ([mqtt]; a no-op without a broker).
        self.telemetry = Telemetry(
            station, docked=self._docked_now, signing=self.signing, sign_checkpoint=self.checkpoint
        )

    # --- detection ----------------------------------------------------------------------

    def _default_detector(self, on_event: EventCallback) -> RecorderDetector:
        return detector_for(self.station.config.docking, on_event)

    def on_event(self, event: DockingEvent) -> None:
        """The detector's callback: start a session on docking, end it on removal."""
        if isinstance(event, Docked):
            with self.lock:
                self.restarts.forget(event.volume)  # a new docking: a fresh budget
                self.docked[event.volume] = event
            where = f"slot {event.slot}" if event.slot else printable(str(event.volume))
            log.info("recorder docked at %s", where)
            self.telemetry.event("recorder.docked", self._where(event))
            self.submit(event.volume)
        elif isinstance(event, Undocked):
            with self.lock:
                stop = self.active.get(event.volume)
                self.restarts.forget(event.volume)
                self.docked.pop(event.volume, None)
            if stop is not None:
                log.warning(
                    "recorder at %s was removed during its session: the session ends "
                    "incomplete; docking it again resumes",
                    printable(str(event.volume)),
                )
                stop.set()
            self._mark_removed(event.volume)
            self.telemetry.event("recorder.removed", self._where(event))

    @staticmethod
    def _where(event: Docked | Undocked) -> dict[str, object]:
        serial = event.usb.serial if event.usb is not None else None
        volume = display_path(os.fsencode(event.volume))
        return {"volume": volume, "slot": event.slot, "usb_serial": serial}

    def _docked_now(self) -> list[dict[str, object]]:
        with self.lock:
            return [self._where(event) for event in self.docked.values()]

    # --- ingest workers -----------------------------------------------------------------

    def submit(self, volume: Path) -> Future[SessionReport | None] | None:
        with self.lock:
            if volume in self.active or self.stop_event.is_set():
                return None
            stop = threading.Event()
            self.active[volume] = stop
        future = self.pool.submit(self._ingest, volume, stop)
        future.add_done_callback(lambda done: self._collect(volume, done))
        return future

    def _ingest(self, volume: Path, stop: threading.Event) -> SessionReport | None:
        progress = self.progress
        with self.lock:
            event = self.docked.get(volume)
        usb = event.usb if event is not None else None
        session = IngestSession(
            self.station,
            volume,
            on_bytes=progress.advance if progress else None,
            on_plan=progress.plan if progress else None,
            on_file=progress.file_done if progress else None,
            stop=stop,
            stop_mid_file=True,
            recheck=self.station.config.docking.recheck,
            slot=event.slot if event is not None else None,
            usb=dataclasses.asdict(usb) if usb is not None else None,
            profile=profile_name_for(self.station.config.docking, usb),
        )
        try:
            report = session.run()
        except Exception as exc:
            self._failed(volume, session.session_id, exc)
            return None
        finally:
            with self.lock:
                self.active.pop(volume, None)
        with self.lock:
            self.reports.append(report)
            if report.ok:
                self.restarts.forget(volume)
        if report.already_safe_in is not None:
            log.info(
                "recorder %s at %s: all %d files unchanged since session %s copied them "
                "(same name, size and modification time): not read again, already safe",
                printable(report.recorder),
                printable(str(volume)),
                len(report.outcomes),
                report.already_safe_in,
            )
            return report
        if not report.outcomes:
            log.info(
                "session %s recorder %s: nothing to copy (the recorder holds no files)",
                report.session_id,
                printable(report.recorder),
            )
        self.advance_phases()
        log.info(
            "session %s recorder %s: %d new, %d seen, %d problems",
            report.session_id,
            printable(report.recorder),
            report.count("new"),
            report.count("seen"),
            len(report.problems),
        )
        self.checkpoint()
        return report

    def _failed(self, volume: Path, session_id: str | None, exc: BaseException) -> None:
        expected = isinstance(exc, EvidockError | HashingError)
        what = printable(str(exc) if expected else f"{type(exc).__name__}: {exc}")
        where = f"session {session_id}" if session_id else "no session opened"
        name = printable(str(volume))
        if expected:
            log.error("docking %s failed (%s): %s", name, where, what)
        else:
            log.error("docking %s failed unexpectedly (%s): %s", name, where, what, exc_info=exc)
        now = self.clock()
        self.telemetry.error("docking", f"{name} ({where}): {what}")
        with self.lock:
            self.failures.append(WorkerFailure(volume, session_id, what))
            tries, retry_at = self.restarts.failed(volume, now, stopping=self.stop_event.is_set())
        if retry_at is None and not self.stop_event.is_set():
            log.error(
                "docking %s failed %d times in %d minutes: not tried again until the recorder "
                "is docked again; the recorder keeps its files",
                name,
                tries,
                RESTART_WINDOW_SECONDS // 60,
            )
        elif retry_at is not None:
            log.info("docking %s is tried again in %.0f s", name, retry_at - now)

    def _collect(self, volume: Path, future: Future[SessionReport | None]) -> None:
        # _ingest handles every Exception itself; what reaches here is a bug of the
        # supervisor or a BaseException: logged, never lost.
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.critical("ingest worker for %s ended: %r", printable(str(volume)), exc)

    def advance_phases(self) -> None:
        """Sessions whose footage became safe (by the wipe policy) say so: "safe, take it".

        A recorder the station mounted itself (the USB detector) is wiped then, by the
        policy, if it is still in its slot; a recorder something else mounted is wiped
        only by `evidock wipe`."""
        try:
            conn = self.station.connect()
            try:
                changed = advance_phases(conn, self.station.config.docking.wipe)
                for session_id, phase in changed:
                    self.telemetry.event(
                        "session.phase", {"session_id": session_id, "phase": phase}
                    )
                    row = conn.execute(
                        "SELECT recorder, slot, volume FROM docking_sessions WHERE session_id = ?",
                        (session_id,),
                    ).fetchone()
                    where = f"slot {row['slot']}" if row["slot"] else f"recorder {row['recorder']}"
                    if phase != "safe":
                        continue
                    self._wipe_if_docked(conn, session_id, str(row["recorder"]), row["volume"])
                    log.info("%s: safe, take it (session %s)", printable(where), session_id)
            finally:
                conn.close()
        except Exception as exc:
            log.error("session phases not updated: %s: %s", type(exc).__name__, exc)

    def _wipe_if_docked(
        self, conn: sqlite3.Connection, session_id: str, serial: str, volume_text: str
    ) -> None:
        detector = self.detector
        if not isinstance(detector, UsbDetector) or self.stop_event.is_set():
            return
        with self.lock:
            docked = [
                event
                for volume, event in self.docked.items()
                if display_path(os.fsencode(volume)) == volume_text
            ]
        if docked:  # else taken out already: nothing to wipe
            wipe_safe_recorder(
                self.station,
                conn,
                docked[0],
                detector.writable,
                serial=serial,
                session_id=session_id,
            )

    def _mark_removed(self, volume: Path) -> None:
        """The recorder left its slot: its finished sessions say so."""
        source = display_path(os.fsencode(volume))
        try:
            conn = self.station.connect()
            try:
                conn.execute(
                    "UPDATE docking_sessions SET phase = 'removed'"
                    " WHERE volume = ? AND state != 'open' AND phase != 'incomplete'",
                    (source,),
                )
            finally:
                conn.close()
        except Exception as exc:
            log.error("could not mark %s removed: %s", printable(source), exc)

    def retry_due(self) -> list[Path]:
        """Submit again the failed volumes whose back-off is over (and still mounted)."""
        now = self.clock()
        with self.lock:
            due = self.restarts.take_due(now)
        started = []
        for volume in due:
            if volume.is_dir() and self.submit(volume) is not None:
                started.append(volume)
        return started

    # --- checkpoints, clock, delivery ---------------------------------------------------

    def checkpoint(self) -> None:
        """Sign and publish a checkpoint; a failure is logged and retried at the next one."""
        # Sessions end concurrently; one checkpoint at a time keeps anchors in order.
        with self.signing:
            try:
                conn = self.station.connect()
                try:
                    anchor = anchoring.publish_checkpoint(self.station, conn, self.target)
                finally:
                    conn.close()
                self.telemetry.checkpoint(anchor)
            except Exception as exc:
                log.error(
                    "checkpoint not signed: %s: %s; tried again later", type(exc).__name__, exc
                )

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

    def deliver(self, stop: threading.Event | None = None) -> DeliveryReport:
        """One delivery pass over the due jobs this process claims; ``stop`` ends it
        between jobs, or inside a put, resumably."""
        conn = self.station.connect()
        try:
            return deliver_due(self.station, conn, self.target, stop=stop)
        finally:
            conn.close()

    def _delivery_worker(self) -> None:
        """Delivery runs here, off the main loop, until the stop (``delivery_loop`` looks
        at it between jobs and inside a put); an unexpected error is logged and the loop
        starts again after the usual wait."""
        while not self.stop_event.is_set():
            try:
                delivery_loop(
                    self.station,
                    self.target,
                    self.stop_event,
                    DELIVERY_SECONDS,
                    on_report=self._delivered,
                )
            except Exception as exc:
                log.error("delivery failed: %s: %s", type(exc).__name__, printable(str(exc)))
                self.telemetry.error("delivery", f"{type(exc).__name__}: {printable(str(exc))}")
                self.stop_event.wait(DELIVERY_SECONDS)

    def _delivered(self, report: DeliveryReport) -> None:
        self.advance_phases()
        if report.failed or report.parked:
            what = f"{report.failed} uploads failed, {report.parked} parked in this pass"
            self.telemetry.error("delivery", what)

    def _supervise_delivery(self) -> None:
        worker = self._delivery
        if worker is not None and worker.is_alive():
            return
        if worker is not None:
            log.error("the delivery worker ended; starting it again")
        self._delivery = threading.Thread(
            target=self._delivery_worker, name="evidock-delivery", daemon=True
        )
        self._delivery.start()

    def tick(self, clock_watch: ClockWatch | None = None) -> None:
        """One pass of the main loop (every ``TICK_SECONDS``): the wall clock, restarts
        that are due, the delivery worker, and the checkpoint timer, which counts seconds
        on the monotonic clock."""
        if clock_watch is not None:
            try:
                self.record_clock_jump(clock_watch)
            except Exception as exc:
                log.error("clock check failed: %s: %s", type(exc).__name__, exc)
        self.retry_due()
        self.telemetry.tick()
        now = self.clock()
        if now >= self._next_checkpoint:
            self.checkpoint()
            self._next_checkpoint = now + self._interval

    def request_stop(self) -> None:
        """Stop every worker: sessions finish or abandon (resumably) the file they are
        on and start no other; delivery stops between jobs."""
        with self.lock:
            self.stop_event.set()
            for stop in self.active.values():
                stop.set()

    def ingest_all(self, volumes: Iterable[Path]) -> list[SessionReport | None]:
        futures = [f for f in (self.submit(v) for v in volumes) if f is not None]
        return [f.result() for f in futures]

    def run_forever(self) -> None:
        detector = self._detector_factory(self.on_event)
        self.detector = detector
        detector.start()
        try:
            clock_watch = ClockWatch()
            self._supervise_delivery()
            while not self.stop_event.wait(TICK_SECONDS):
                self._supervise_delivery()
                self.tick(clock_watch)
        finally:
            self.request_stop()
            detector.stop()
            self.pool.shutdown(wait=True)
            if self._delivery is not None:
                self._delivery.join()
            self.checkpoint()
            self.telemetry.stop()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run_daemon(
    config: StationConfig, *, once: bool = False, config_file: Path | None = None
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # Start-up reconciliation, before anything is detected: opening the station closes on
    # record the sessions of processes that are gone (setting aside copies they committed
    # without a leaf); the keys folder is settled (a rotation a crash cut short is
    # finished or undone, and the identity names the current key); stale partial copies
    # are swept. A live CLI process's session is left to it.
    station = Station.open(config, config_file=config_file)
    station.record_key()
    daemon = Daemon(station)
    # The broker password is read here: one it cannot read (or others can) stops the
    # start on one line, before the boot is on record.
    daemon.telemetry.start()
    record_boot(station)
    for session_id in station.orphans_closed:
        log.warning("session %s was interrupted by a stop; closed as incomplete", session_id)
    for path in station.store.sweep_staging(config.hashing.staging_max_age_hours * 3600):
        log.info("swept stale partial copy %s", path.name)
    if once:
        reports = daemon.ingest_all(volumes_under(config.docking.mount_root))
        daemon.close()
        delivery = daemon.deliver()
        daemon.checkpoint()
        daemon.telemetry.stop()
        for line in delivery.lines():
            log.info("%s", line.strip())
        return 0 if all(r is not None and r.ok for r in reports) and delivery.ok else 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping; partial copies are kept and resume", signum)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("station %s watching %s", station.station_id, config.docking.mount_root)
    # The API binds only now, after start-up reconciliation; it stops with the daemon.
    try:
        api = serve_api(station, daemon)
    except BaseException:
        # A port that is taken ends the start on one line: the broker hears the station
        # go (its outbox kept), not a connection that simply stops answering.
        daemon.telemetry.stop()
        raise
    try:
        daemon.run_forever()
    finally:
        if api is not None:
            api.stop()
    return 0
