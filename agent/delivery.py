"""Working the upload queue: put each due clip to its target, record the confirmation.

A job is done only when the target confirmed the size and SHA-256 it holds, and the
``clip.uploaded`` leaf carrying that confirmation is committed with the job's state.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field

from agent.clock import utc_now
from agent.database import transaction
from agent.station import Station
from uploader import ConfirmationMismatch, DeliveryError, FolderTarget, UploadJob, UploadQueue

log = logging.getLogger("evidock")

BATCH = 100


@dataclass
class DeliveryReport:
    """One pass over the due queue: what was delivered, what failed, what is left."""

    delivered: int = 0
    failed: int = 0
    parked: int = 0
    waiting: int = 0
    parked_total: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.parked_total == 0

    def lines(self) -> list[str]:
        out = [
            f"delivered {self.delivered}, failed {self.failed} (will be retried), "
            f"parked {self.parked}; left in the queue: {self.waiting} waiting to be "
            f"retried, {self.parked_total} parked for a person"
        ]
        out.extend(f"  {reason}" for reason in self.reasons)
        if self.parked_total:
            out.append("  parked jobs are not retried: fix the cause, then retry them")
        return out


def folder_target(station: Station) -> FolderTarget:
    delivery = station.config.delivery
    return FolderTarget(delivery.central_dir, delivery.anchor_dir)


def deliver_due(station: Station, conn: sqlite3.Connection, target: FolderTarget) -> DeliveryReport:
    """Work every job due now, in batches; report what is left (backing off, parked)."""
    queue = UploadQueue(conn)
    report = DeliveryReport()
    started = utc_now()
    while batch := queue.due(started, limit=BATCH):
        for job in batch:
            _deliver_one(station, conn, queue, target, job, report)
    counts = queue.counts()
    report.waiting = counts.get("queued", 0)
    report.parked_total = counts.get("parked", 0)
    return report


def _deliver_one(
    station: Station,
    conn: sqlite3.Connection,
    queue: UploadQueue,
    target: FolderTarget,
    job: UploadJob,
    report: DeliveryReport,
) -> None:
    ledger = station.ledger(conn)
    max_attempts = station.config.delivery.max_attempts
    row = conn.execute(
        "SELECT source_path, recorder, session_id, kind FROM clips WHERE clip_id = ?",
        (job.clip_id,),
    ).fetchone()
    meta = dict(row) if row is not None else {}
    meta.update({"clip_id": job.clip_id, "station": station.station_id, "sha256": job.sha256})
    try:
        confirmation = target.put(job.sha256, station.store.path_for(job.sha256), meta)
        if confirmation.size != job.size or confirmation.sha256 != job.sha256:
            raise ConfirmationMismatch(
                f"{target.name} confirmed {confirmation.size} bytes sha256 "
                f"{confirmation.sha256} for clip {job.clip_id}, expected {job.size} bytes "
                f"sha256 {job.sha256}; the clip stays local and queued"
            )
    except ConfirmationMismatch as exc:
        with transaction(conn):
            # An integrity failure is not retried blindly: park it for a person.
            queue.mark_failed(job, str(exc), utc_now(), max_attempts=job.attempts + 1)
        report.parked += 1
        _note(report, job, "parked", str(exc))
        return
    except DeliveryError as exc:
        parks = job.attempts + 1 >= max_attempts
        with transaction(conn):
            queue.mark_failed(job, str(exc), utc_now(), max_attempts)
        if parks:
            report.parked += 1
            _note(report, job, "parked", str(exc))
        else:
            report.failed += 1
            _note(report, job, "failed", str(exc))
        return
    with transaction(conn):
        ledger.append(
            "clip.uploaded",
            {
                "clip_id": job.clip_id,
                "sha256": job.sha256,
                "target": job.target,
                "location": confirmation.location,
                "confirmed_size": confirmation.size,
                "confirmed_sha256": confirmation.sha256,
            },
        )
        queue.mark_done(job, confirmation.location, utc_now())
    report.delivered += 1
    if job.attempts:
        log.info(
            "clip %s delivered to %s after %d failed attempt(s)",
            job.clip_id,
            job.target,
            job.attempts,
        )


def _note(report: DeliveryReport, job: UploadJob, state: str, reason: str) -> None:
    """Log a job's failure once per change: its first failure, a new reason, parking."""
    line = f"clip {job.clip_id} -> {job.target}: {state} (attempt {job.attempts + 1}): {reason}"
    if state == "parked":
        log.error("%s", line)
    elif job.attempts == 0 or job.last_error != reason:
        log.warning("%s", line)
    if len(report.reasons) < 10 and reason not in {r.split(": ", 2)[-1] for r in report.reasons}:
        report.reasons.append(line)
