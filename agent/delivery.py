"""Working the upload queue: put each due clip to its target, record the confirmation.

A job is done only when the target confirmed the size and SHA-256 it holds, and the
``clip.uploaded`` leaf carrying that confirmation is committed with the job's state.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.clock import utc_now
from agent.database import transaction
from agent.station import Station
from uploader import ConfirmationMismatch, DeliveryError, FolderTarget, UploadQueue


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    parked: int = 0


def folder_target(station: Station) -> FolderTarget:
    delivery = station.config.delivery
    return FolderTarget(delivery.central_dir, delivery.anchor_dir)


def deliver_due(station: Station, conn: sqlite3.Connection, target: FolderTarget) -> DeliveryReport:
    queue = UploadQueue(conn)
    ledger = station.ledger(conn)
    report = DeliveryReport()
    max_attempts = station.config.delivery.max_attempts
    for job in queue.due(utc_now()):
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
            continue
        except DeliveryError as exc:
            with transaction(conn):
                queue.mark_failed(job, str(exc), utc_now(), max_attempts)
            report.failed += 1
            continue
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
    return report
