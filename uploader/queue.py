"""The durable upload queue: one row per (clip, target) in the station database.

A job is queued in the same transaction that commits its clip, so a crash can never
leave a committed clip without a job. A job is done only once the target confirmed the
size and SHA-256 of what it holds; failures back off exponentially and a job that keeps
failing is parked (kept, visible, never dropped) for IT staff to look at.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class UploadJob:
    id: int
    clip_id: str
    sha256: str
    size: int
    target: str
    state: str
    attempts: int
    last_error: str | None
    location: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _job(row: sqlite3.Row) -> UploadJob:
    return UploadJob(
        id=row["id"],
        clip_id=row["clip_id"],
        sha256=row["sha256"],
        size=row["size"],
        target=row["target"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        location=row["location"],
    )


class UploadQueue:
    """Jobs of the station database; callers group writes in their own transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def enqueue(self, clip_id: str, sha256: str, size: int, target: str, now: datetime) -> None:
        """Queue a clip for ``target``; queuing it again is a no-op."""
        stamp = _iso(now)
        self.conn.execute(
            "INSERT OR IGNORE INTO upload_jobs"
            " (clip_id, sha256, size, target, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (clip_id, sha256, size, target, stamp, stamp),
        )

    def due(self, now: datetime, limit: int = 100) -> list[UploadJob]:
        rows = self.conn.execute(
            "SELECT * FROM upload_jobs WHERE state = 'queued' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (_iso(now), limit),
        )
        return [_job(row) for row in rows]

    def jobs(self, state: str | None = None) -> list[UploadJob]:
        if state is None:
            rows = self.conn.execute("SELECT * FROM upload_jobs ORDER BY id")
        else:
            rows = self.conn.execute(
                "SELECT * FROM upload_jobs WHERE state = ? ORDER BY id", (state,)
            )
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, count(*) FROM upload_jobs GROUP BY state")
        return {state: n for state, n in rows}

    def mark_done(self, job: UploadJob, location: str, now: datetime) -> None:
        self.conn.execute(
            "UPDATE upload_jobs SET state = 'done', done_at = ?, location = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (_iso(now), location, job.id),
        )

    def mark_failed(self, job: UploadJob, error: str, now: datetime, max_attempts: int) -> None:
        attempts = job.attempts + 1
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
        state = "parked" if attempts >= max_attempts else "queued"
        self.conn.execute(
            "UPDATE upload_jobs SET state = ?, attempts = ?, last_error = ?,"
            " next_attempt_at = ? WHERE id = ?",
            (state, attempts, error, _iso(now + timedelta(seconds=delay)), job.id),
        )

    def is_delivered(self, clip_id: str) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE clip_id = ? AND state != 'done'", (clip_id,)
        ).fetchone()
        done = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE clip_id = ? AND state = 'done'", (clip_id,)
        ).fetchone()
        return bool(row[0] == 0 and done[0] > 0)
