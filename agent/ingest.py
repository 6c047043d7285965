"""One docking session: every footage file of one recorder volume, copied, hashed,
probed, ledgered and queued for delivery.

The same code serves the daemon (a volume appeared under the mount root) and
``evidock ingest`` (any folder). A file is reported ingested only after the engine
committed a verified copy and the clip row, its ledger leaf and its upload job were
committed in one transaction. Anything else is a problem of the session: it is
recorded, the recorder keeps the file, and the session ends ``incomplete``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent import metadata
from agent.assignments import collector_for, record_device_officer
from agent.clip_record import clip_id_for
from agent.clock import iso, utc_now
from agent.copying import FileCopier
from agent.database import transaction
from agent.errors import EvidockError, SourceError
from agent.outcomes import (
    NOT_PROBED_STOPPING,
    STOPPED,
    STOPPED_MID_FILE,
    FileOutcome,
    SessionReport,
    known_files,
    known_outcome,
)
from agent.sessions import close_incomplete, close_session, open_session
from agent.station import Station
from config.common import printable
from docking import (
    RecorderVolume,
    VolumeError,
    VolumeScan,
    clock_offset_seconds,
    display_path,
    open_volume,
    path_b64,
    read_recorder_clock,
)
from hashing import CopyResult
from ledger import Ledger

log = logging.getLogger("evidock")

__all__ = [
    "NOT_PROBED_STOPPING",
    "STOPPED",
    "STOPPED_MID_FILE",
    "FileOutcome",
    "IngestSession",
    "SessionReport",
    "clip_id_for",
]


def new_session_id() -> str:
    return f"S{utc_now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class IngestSession(FileCopier):
    """Ingest one recorder volume through the station's pipeline."""

    def __init__(
        self,
        station: Station,
        source: Path,
        *,
        officer: str | None = None,
        recorder: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
        on_plan: Callable[[int, int], None] | None = None,
        on_file: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        stop_mid_file: bool = False,
        recheck: str = "content",
        slot: str | None = None,
        usb: dict[str, Any] | None = None,
        profile: str | None = None,
    ) -> None:
        self.station = station
        # Set to stop: no further file is started, the rest stay on the recorder, and the
        # session closes incomplete, on record. The file being copied is finished (so
        # nothing is left committed to the store without its ledger leaf), or, with
        # ``stop_mid_file`` (the daemon, which systemd gives a bounded time to stop), its
        # copy is abandoned part-way and kept in staging, so docking again resumes it.
        self.stop = stop
        self.stop_mid_file = stop_mid_file
        self.session_id: str | None = None  # once the session is on record
        # "metadata": files whose path, size and mtime match what a finished session of
        # this recorder copied are not read again (a recorder left docked, a restart).
        self.recheck = recheck
        self.slot = slot
        self.usb = usb
        # The recorder profile: the one its USB ids name, else the station's default.
        self.profile = profile or station.config.docking.recorder_profile
        self._volume: RecorderVolume | None = None
        self._unrecorded: list[CopyResult] = []
        self.officer_source = "none"
        self.source = source
        self.officer = officer
        self.recorder_override = recorder
        self.on_bytes = on_bytes
        self.on_plan = on_plan
        self.on_file = on_file

    def run(self, conn: sqlite3.Connection | None = None) -> SessionReport:
        """Ingest the volume as one session.

        The session's own records (its opening, each file's leaf) are committed without
        waiting for the disk (``synchronous = NORMAL``): at shift change the station's
        disk is busy with 24 recorders' copies, an fsync of the database took 1 to 6 s,
        and sessions queued behind each other's commits for the write lock (one waited
        59 s to open, one gave up). Nothing is claimed on a record not yet durable: the
        closing commit is a full one (its WAL sync makes every record before it durable)
        and comes before "verified", a wipe, a checkpoint or a delivery, whose own
        commits are full too. A power cut before it loses at most this session's
        records; their copies are set aside as orphans at start-up, and the recorder,
        never wiped, still has the files.
        """
        own = conn is None
        conn = conn or self.station.connect()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return self._run(conn)
        finally:
            _synced(conn)
            if own:
                conn.close()

    def _open(self) -> RecorderVolume:
        if not self.source.exists() and not self.source.is_symlink():
            raise SourceError(f"{self.source} does not exist: give the recorder's mount point")
        if not self.source.is_dir() or self.source.is_symlink():
            raise SourceError(f"{self.source} is not a folder: give the recorder's mount point")
        try:
            return open_volume(self.source, self.profile)
        except VolumeError as exc:
            raise SourceError(str(exc)) from None

    def _run(self, conn: sqlite3.Connection) -> SessionReport:
        if shutil.which("ffprobe") is None:
            # Checked before anything is copied: a clip committed without its metadata
            # step would be evidence without a ledger leaf.
            raise metadata.FfprobeMissingError()
        volume = self._open()
        serial = self.recorder_override or volume.serial
        # The collector (采集人): the officer named for this ingest, else the assignment in
        # force, else what the recorder's device-info says; nobody is flagged, not refused.
        officer, self.officer_source = collector_for(
            conn,
            serial,
            iso(utc_now()),
            device_officer=volume.officer,
            cli_officer=self.officer,
        )
        # The mount folder's name may not be UTF-8: the ledger gets its readable form.
        source = display_path(os.fsencode(self.source))
        report = SessionReport(new_session_id(), serial, source, officer)
        self._volume = volume
        # The scan comes first (the recorder's clock may be read from its files); a scan
        # that fails is raised again once the session is on record, so it is closed there.
        scan: VolumeScan | None = None
        scan_error: Exception | None = None
        try:
            scan = volume.scan()
        except Exception as exc:
            scan_error = exc
        self._read_clock(volume, scan, report)
        known: dict[tuple[bytes, int, int], tuple[str, str]] = {}
        if self.recheck == "metadata" and scan is not None:
            known = known_files(conn, serial)
            matched = [known.get((f.rel_path, f.size, f.mtime_ns)) for f in scan.files]
            if scan.files and all(matched) and not scan.refused:
                # Nothing new on a recorder left docked: no session, nothing read.
                report.already_safe_in = max(m[1] for m in matched if m)
                report.outcomes = [
                    known_outcome(f, m) for f, m in zip(scan.files, matched, strict=True) if m
                ]
                return report
        led = self.station.ledger(conn)
        self._open_session(conn, led, report, volume)
        self.session_id = report.session_id
        # From here on the session is on record: whatever happens, it is closed on record.
        try:
            if volume.officer:
                # What the recorder says is kept as history (a person's assignment wins).
                try:
                    record_device_officer(conn, led, serial, volume.officer, iso(utc_now()))
                except EvidockError as exc:
                    log.warning("device-info officer not recorded: %s", printable(str(exc)))
            if scan_error is not None:
                raise scan_error
            assert scan is not None
            to_read = [f for f in scan.files if (f.rel_path, f.size, f.mtime_ns) not in known]
            report.outcomes += [
                known_outcome(f, known[(f.rel_path, f.size, f.mtime_ns)])
                for f in scan.files
                if (f.rel_path, f.size, f.mtime_ns) in known
            ]
            conn.execute(
                "UPDATE docking_sessions SET files = ?, bytes_total = ? WHERE session_id = ?",
                (len(to_read), sum(f.size for f in to_read), report.session_id),
            )
            if self.on_plan:
                self.on_plan(len(to_read), sum(f.size for f in to_read))
            for refusal in scan.refused:
                report.outcomes.append(
                    FileOutcome(
                        source_path=display_path(refusal.rel_path),
                        source_path_b64=path_b64(refusal.rel_path),
                        status="refused",
                        reason=refusal.reason,
                    )
                )
            self._copy_all(conn, led, report, serial, to_read)
            _synced(conn)
            close_session(conn, led, report)
        except BaseException as exc:
            self._abandon(conn, led, report, exc)
            raise
        return report

    def _open_session(
        self, conn: sqlite3.Connection, led: Ledger, report: SessionReport, volume: RecorderVolume
    ) -> None:
        report.slot, report.usb, report.officer_source = self.slot, self.usb, self.officer_source
        open_session(conn, led, report, volume)

    def _abandon(
        self, conn: sqlite3.Connection, led: Ledger, report: SessionReport, exc: BaseException
    ) -> None:
        """Close the session as incomplete, on record, when it cannot go on (Ctrl-C, a
        stop, an unexpected error): what was committed stays, the rest stays on the
        recorder, and docking it again resumes."""
        if isinstance(exc, KeyboardInterrupt):
            reason = "ingest was interrupted; dock the recorder again to finish"
        else:
            reason = f"ingest stopped by an error ({type(exc).__name__}: {exc}); dock again"
        problems = [{"path": "", "reason": reason}]
        try:
            _synced(conn)
            problems += self._set_aside_unrecorded(conn)
            with transaction(conn):
                close_incomplete(conn, led, report.session_id, problems)
        except Exception:
            # The session stays open; the next command that opens the station closes it
            # (its process will be gone).
            log.exception("could not close session %s on record", report.session_id)

    def _read_clock(
        self, volume: RecorderVolume, scan: VolumeScan | None, report: SessionReport
    ) -> None:
        """The recorder's clock by its profile's method, and its offset to the station's
        (read in the station's time zone: recorders are set to local time)."""
        try:
            clock = read_recorder_clock(volume, scan.files if scan is not None else [])
        except Exception as exc:  # a recorder with a broken clock is still ingested
            log.warning("recorder clock not read: %s", printable(str(exc)))
            return
        report.clock_method = clock.method
        if clock.recorder_time is None:
            return
        report.recorder_clock = clock.recorder_time
        zone = ZoneInfo(self.station.config.station.time_zone)
        offset = clock_offset_seconds(clock.recorder_time, utc_now(), zone)
        report.clock_offset_ms = round(offset * 1000)


def _synced(conn: sqlite3.Connection) -> None:
    """Back to full commits (an open transaction, left by an error, is rolled back)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.execute("PRAGMA synchronous = FULL")
