"""The durable upload queue: one row per (clip, target) in the station database.

A job is queued in the same transaction that commits its clip, so a crash can never
leave a committed clip without a job. A deliverer works only jobs it has **claimed**: a
claim is a lease (``claimed_by``, ``lease_until``) taken in one ``BEGIN IMMEDIATE``
transaction, so two deliverers (the daemon and ``evidock deliver``) never work the same
job at once; a crashed deliverer's lease runs out and another takes the job, with the
state its put saved (an upload id and completed parts) to resume from. A job is done
only once the target confirmed the size and SHA-256 of what it holds, and only by the
holder of its claim (so ``clip.uploaded`` is recorded at most once per clip and target).
Which due job goes first is decided when it is claimed, not when it was queued (a clip
linked to a case after its ingest jumps ahead): the agent hands the queue a ``Ranker``
(clip ids -> rank, higher first); equal ranks go oldest first. Failures back off
exponentially with full jitter (a random delay up to the exponential bound, so stations
that lost central storage together do not all come back at the same second); a job that
keeps failing, or fails its integrity, is parked (kept, visible, never dropped) with its
reason for IT staff to look at, and ``retry_parked`` queues it again.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from config.common import iso_utc, transaction
from uploader.target import UploadedPart, UploadState

BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0
# A deliverer renews its lease as its put reports progress; one that stops reporting
# (crashed, hung) loses the job to another after this long.
LEASE = timedelta(minutes=10)

# What a failing or parked job's last_error is about.
FAILURE_LOCAL = "local-integrity"  # the station's own copy is missing, unreadable or other bytes
FAILURE_TARGET = "target-integrity"  # the target holds other bytes under the clip's name
FAILURE_UNAVAILABLE = "target-unavailable"  # the target could not be reached or written
FAILURES = (FAILURE_LOCAL, FAILURE_TARGET, FAILURE_UNAVAILABLE)

# Clip ids of due jobs -> their rank (higher first; a clip left out ranks 0), asked inside
# the claim's transaction on the queue's own connection.
Ranker = Callable[[sqlite3.Connection, Sequence[str]], Mapping[str, int]]


def backoff_delay(
    attempts: int,
    rng: random.Random,
    first: float = BACKOFF_FIRST_SECONDS,
    cap: float = BACKOFF_MAX_SECONDS,
) -> float:
    """Seconds before attempt ``attempts + 1``: full jitter, a uniform draw between 0 and
    the exponential bound ``first * 2 ** (attempts - 1)`` (at most ``cap``)."""
    bound = min(first * 2.0 ** max(attempts - 1, 0), cap)
    return rng.uniform(0.0, bound)


class ClaimLost(Exception):
    """The job's lease ran out and another deliverer took it (or finished it)."""


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
    failure: str | None = None
    claimed_by: str | None = None
    lease_until: str | None = None
    # Where a resumable put of this job stands (None: nothing to resume).
    upload: UploadState | None = None
    next_attempt_at: str | None = None
    created_at: str | None = None
    done_at: str | None = None

    @property
    def sent_bytes(self) -> int:
        """Bytes a resumable put has had confirmed part by part (0: none saved)."""
        return self.upload.sent if self.upload is not None else 0


def _upload(row: sqlite3.Row) -> UploadState | None:
    if row["upload_id"] is None:
        return None
    parts = tuple(UploadedPart(**part) for part in json.loads(row["parts"] or "[]"))
    return UploadState(upload_id=row["upload_id"], parts=parts)


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
        failure=row["failure"],
        claimed_by=row["claimed_by"],
        lease_until=row["lease_until"],
        upload=_upload(row),
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        done_at=row["done_at"],
    )


def _parts_json(state: UploadState) -> str:
    return json.dumps([dataclasses.asdict(part) for part in state.parts], separators=(",", ":"))


def _holder(job: UploadJob) -> str:
    if job.claimed_by is None:
        raise ValueError(f"job {job.id} is not claimed: take it with UploadQueue.claim first")
    return job.claimed_by


class UploadQueue:
    """Jobs of the station database.

    ``claim``, ``renew`` and ``release`` commit on their own (inside a caller's open
    transaction they join it); ``complete``, ``fail`` and ``park`` run in the caller's
    transaction, beside the ledger leaf that records the outcome.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        rank: Ranker | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.conn = conn
        self.rank = rank
        # Injectable so that a test draws known delays; SystemRandom needs no seeding.
        self.rng = rng if rng is not None else random.SystemRandom()

    def enqueue(self, clip_id: str, sha256: str, size: int, target: str, now: datetime) -> None:
        """Queue a clip for ``target``; queuing it again is a no-op."""
        stamp = iso_utc(now)
        self.conn.execute(
            "INSERT OR IGNORE INTO upload_jobs"
            " (clip_id, sha256, size, target, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (clip_id, sha256, size, target, stamp, stamp),
        )

    def claim(
        self,
        claimer: str,
        now: datetime,
        *,
        due_by: datetime | None = None,
        lease: timedelta = LEASE,
        limit: int = 1,
    ) -> list[UploadJob]:
        """Take up to ``limit`` jobs due by ``due_by`` (default ``now``) that nobody holds
        a live lease on, for ``claimer`` until ``now + lease``: the highest ranked first
        (``rank``, asked now), then the oldest."""
        until = iso_utc(now + lease)
        with transaction(self.conn):
            rows = self.conn.execute(
                "SELECT * FROM upload_jobs WHERE state = 'queued' AND next_attempt_at <= ?"
                " AND (claimed_by IS NULL OR lease_until <= ?)"
                " ORDER BY created_at, id" + ("" if self.rank else " LIMIT ?"),
                (iso_utc(due_by or now), iso_utc(now)) + (() if self.rank else (limit,)),
            ).fetchall()
            if self.rank is not None and rows:
                ranks = self.rank(self.conn, [row["clip_id"] for row in rows])
                # sorted() is stable: equal ranks keep the oldest-first order.
                rows = sorted(rows, key=lambda row: -ranks.get(row["clip_id"], 0))[:limit]
            self.conn.executemany(
                "UPDATE upload_jobs SET claimed_by = ?, lease_until = ? WHERE id = ?",
                [(claimer, until, row["id"]) for row in rows],
            )
        return [
            dataclasses.replace(_job(row), claimed_by=claimer, lease_until=until) for row in rows
        ]

    def renew(
        self,
        job: UploadJob,
        now: datetime,
        *,
        lease: timedelta = LEASE,
        state: UploadState | None = None,
    ) -> UploadJob:
        """Extend the claim (and save ``state``, if given); :class:`ClaimLost` if the
        job is no longer this claimer's to work."""
        until = iso_utc(now + lease)
        with transaction(self.conn):
            if state is None:
                cursor = self.conn.execute(
                    "UPDATE upload_jobs SET lease_until = ?"
                    " WHERE id = ? AND claimed_by = ? AND state = 'queued'",
                    (until, job.id, _holder(job)),
                )
            else:
                cursor = self.conn.execute(
                    "UPDATE upload_jobs SET lease_until = ?, upload_id = ?, parts = ?"
                    " WHERE id = ? AND claimed_by = ? AND state = 'queued'",
                    (until, state.upload_id, _parts_json(state), job.id, _holder(job)),
                )
        if cursor.rowcount != 1:
            raise ClaimLost(f"job {job.id} (clip {job.clip_id}) was taken by another deliverer")
        return dataclasses.replace(job, lease_until=until, upload=state or job.upload)

    def release(self, job: UploadJob) -> bool:
        """Give the job back untouched (a stop, not a failure); its saved state stays."""
        with transaction(self.conn):
            cursor = self.conn.execute(
                "UPDATE upload_jobs SET claimed_by = NULL, lease_until = NULL"
                " WHERE id = ? AND claimed_by = ?",
                (job.id, _holder(job)),
            )
        return cursor.rowcount == 1

    def complete(self, job: UploadJob, location: str, now: datetime) -> bool:
        """Mark the claimed job done; False (nothing changed) if the claim was lost or
        the job is no longer queued. Run it in the transaction that records the upload,
        and record it only when this returns True."""
        if not self.conn.in_transaction:
            raise RuntimeError("complete() belongs inside the transaction recording the upload")
        cursor = self.conn.execute(
            "UPDATE upload_jobs SET state = 'done', done_at = ?, location = ?,"
            " attempts = attempts + 1, last_error = NULL, failure = NULL,"
            " claimed_by = NULL, lease_until = NULL, upload_id = NULL, parts = NULL"
            " WHERE id = ? AND claimed_by = ? AND state = 'queued'",
            (iso_utc(now), location, job.id, _holder(job)),
        )
        return cursor.rowcount == 1

    def fail(
        self,
        job: UploadJob,
        error: str,
        now: datetime,
        max_attempts: int,
        failure: str = FAILURE_UNAVAILABLE,
    ) -> str:
        """Count a failed attempt: back off, or park after ``max_attempts``. Returns the
        job's new state; :class:`ClaimLost` if the job is no longer this claimer's."""
        attempts = job.attempts + 1
        delay = backoff_delay(attempts, self.rng)
        state = "parked" if attempts >= max_attempts else "queued"
        cursor = self.conn.execute(
            "UPDATE upload_jobs SET state = ?, attempts = ?, last_error = ?, failure = ?,"
            " next_attempt_at = ?, claimed_by = NULL, lease_until = NULL"
            " WHERE id = ? AND claimed_by = ? AND state = 'queued'",
            (
                state,
                attempts,
                error,
                failure,
                iso_utc(now + timedelta(seconds=delay)),
                job.id,
                _holder(job),
            ),
        )
        if cursor.rowcount != 1:
            raise ClaimLost(f"job {job.id} (clip {job.clip_id}) was taken by another deliverer")
        return state

    def park(self, job: UploadJob, error: str, now: datetime, failure: str) -> None:
        """Park the job at once (an integrity failure is never retried blindly)."""
        self.fail(job, error, now, max_attempts=job.attempts + 1, failure=failure)

    def retry_parked(self, now: datetime, *, failure: str | Iterable[str] | None = None) -> int:
        """Queue parked jobs again, due ``now`` with a fresh count of attempts: those of
        ``failure`` (a class or several; None: every parked job). Their last error stays
        until the next attempt says otherwise. Commits on its own; returns how many."""
        wanted = (failure,) if isinstance(failure, str) else failure
        sql = (
            "UPDATE upload_jobs SET state = 'queued', attempts = 0, next_attempt_at = ?,"
            " claimed_by = NULL, lease_until = NULL WHERE state = 'parked'"
        )
        params: tuple[str, ...] = (iso_utc(now),)
        if wanted is not None:
            classes = tuple(wanted)
            unknown = sorted(set(classes) - set(FAILURES))
            if unknown:
                raise ValueError(f"unknown failure class {unknown}; one of {list(FAILURES)}")
            sql += f" AND failure IN ({', '.join('?' for _ in classes)})"
            params += classes
        with transaction(self.conn):
            return self.conn.execute(sql, params).rowcount

    def due(self, now: datetime, limit: int = 100) -> list[UploadJob]:
        """Jobs due by ``now`` that nobody holds a live claim on (a look; claims nothing)."""
        stamp = iso_utc(now)
        rows = self.conn.execute(
            "SELECT * FROM upload_jobs WHERE state = 'queued' AND next_attempt_at <= ?"
            " AND (claimed_by IS NULL OR lease_until <= ?)"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (stamp, stamp, limit),
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

    def claimed(self, now: datetime) -> int:
        """Queued jobs some deliverer holds a live claim on."""
        row = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE state = 'queued' AND lease_until > ?",
            (iso_utc(now),),
        ).fetchone()
        return int(row[0])

    def parked_for(self, failure: str) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE state = 'parked' AND failure = ?",
            (failure,),
        ).fetchone()
        return int(row[0])

    def is_delivered(self, clip_id: str) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE clip_id = ? AND state != 'done'", (clip_id,)
        ).fetchone()
        done = self.conn.execute(
            "SELECT count(*) FROM upload_jobs WHERE clip_id = ? AND state = 'done'", (clip_id,)
        ).fetchone()
        return bool(row[0] == 0 and done[0] > 0)
