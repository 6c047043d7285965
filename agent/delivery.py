"""Working the upload queue: put each due clip to its target, record the confirmation.

A deliverer works only the jobs it claimed (``UploadQueue.claim``: a lease, renewed as
the put reports progress), so the daemon's delivery worker and ``evidock deliver`` can
run together. A job is done only when the target confirmed the size and SHA-256 it
holds, and the ``clip.uploaded`` leaf carrying that confirmation is committed in the
transaction that marks the claimed job done, so a clip is recorded as uploaded at most
once per target. A station copy that is missing or not its bytes is an integrity
failure: parked at once, never retried as a target problem.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.retention import retention_of
from agent.sensitivity import cases_holding, clip_sensitivity
from agent.station import Station
from config.common import iso_utc, transaction, utc_now
from hashing import Digests, HashingError, HashOptions, hash_file
from uploader import (
    FAILURE_LOCAL,
    FAILURE_TARGET,
    FAILURE_UNAVAILABLE,
    LEASE,
    LEGAL_HOLD,
    LOCK_UNTIL,
    ClaimLost,
    Confirmation,
    ConfirmationMismatch,
    DeliveryError,
    FolderTarget,
    Hasher,
    S3Confirmation,
    S3Settings,
    S3Target,
    SourceIntegrityError,
    Target,
    UploadJob,
    UploadQueue,
    UploadState,
    UploadStopped,
    read_credentials,
)

log = logging.getLogger("evidock")

Clock = Callable[[], datetime]


@dataclass
class DeliveryReport:
    """One pass over the due queue: what was delivered, what failed, what is left."""

    delivered: int = 0
    failed: int = 0
    parked: int = 0
    waiting: int = 0
    parked_total: int = 0
    # parked because the station's own copy is missing or damaged (of parked_total)
    integrity_total: int = 0
    # queued jobs another deliverer holds a live claim on
    busy: int = 0
    # jobs finished by another deliverer after this one's claim ran out
    lost: int = 0
    stopped: bool = False
    data_dir: Path | None = None
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
        if self.busy:
            out.append(f"  {self.busy} being delivered by another deliverer right now")
        if self.stopped and self.waiting:
            out.append("  stopped before the end of the queue: the rest goes at the next pass")
        out.extend(f"  {reason}" for reason in self.reasons)
        if self.integrity_total:
            where = f" --data-dir {self.data_dir}" if self.data_dir else ""
            out.append(
                f"  {self.integrity_total} parked because the station's own copy is missing "
                f"or damaged: run `evidock verify{where}` to see what happened to the "
                "evidence store; these jobs are never retried"
            )
        if self.parked_total:
            out.append("  parked jobs are not retried: fix the cause, then retry them")
        return out


def store_hasher(options: HashOptions) -> Hasher:
    """Size and SHA-256 through the station's one hashing pipeline, for a target (what
    central storage confirms; the other digests would cost CPU for nothing)."""

    def digest(path: Path) -> Digests:
        try:
            return hash_file(path, options, sha256_only=True)
        except HashingError as exc:
            # A target reports an unreadable file as OSError (it does not know hashing).
            cause = exc.__cause__
            if isinstance(cause, OSError):
                raise OSError(cause.errno, cause.strerror, str(path)) from None
            raise OSError(errno.EIO, str(exc), str(path)) from None

    return digest


def delivery_target(station: Station) -> Target:
    """The configured delivery target: the one place from config to ``Target``."""
    delivery = station.config.delivery
    if delivery.target == "folder":
        return FolderTarget(
            delivery.central_dir, delivery.anchor_dir, hasher=store_hasher(station.options)
        )
    if delivery.target == "s3":
        # The access key is read now: a station that cannot deliver says so at start.
        return S3Target(
            s3_settings(station),
            read_credentials(delivery.s3_credentials),
            anchor_prefix=lambda: anchor_prefix(station),
        )
    raise DeliveryError(
        f"delivery target {delivery.target!r} is not built into this evidock; "
        'set delivery.target = "folder" or "s3"'
    )


def s3_settings(station: Station) -> S3Settings:
    """The ``[delivery]`` keys of the s3 target."""
    d = station.config.delivery
    return S3Settings(
        endpoint=d.s3_endpoint,
        bucket=d.s3_bucket,
        region=d.s3_region,
        addressing_style=d.s3_addressing_style,
        part_size=d.s3_part_size_mib * 1024 * 1024,
        checksums=d.s3_checksums,
        ca_file=d.s3_ca_file,
        require_object_lock=d.require_object_lock,
        lock_mode=d.lock_mode,
        lock_days=d.lock_days,
        anchor_lock_days=d.anchor_lock_days,
    )


def anchor_prefix(station: Station) -> str:
    """Where this station's anchors live in a shared bucket: its id and its key's hash
    (the key now: a rotated key's checkpoints go under the new one)."""
    key_hash = station.keyring().fingerprint().replace(" ", "")[:16]
    return f"anchors/{station.station_id}/{key_hash}"


def deliver_due(
    station: Station,
    conn: sqlite3.Connection,
    target: Target,
    *,
    stop: threading.Event | None = None,
    clock: Clock = utc_now,
    lease: timedelta = LEASE,
) -> DeliveryReport:
    """Claim and deliver, one at a time, every job due when the pass starts; report what
    is left (backing off, parked, held by another deliverer). ``stop`` is looked at
    between jobs and handed to each put."""
    queue = UploadQueue(conn)
    report = DeliveryReport(data_dir=station.data_dir)
    claimer = f"pid {os.getpid()} {threading.current_thread().name} {secrets.token_hex(4)}"
    started = clock()
    while not (stop is not None and stop.is_set()):
        claimed = queue.claim(claimer, clock(), due_by=started, lease=lease)
        if not claimed:
            break
        claim = _Claim(queue, claimed[0], clock, lease)
        try:
            _deliver_one(station, conn, target, claim, report, stop)
        except BaseException:
            # Not the job's fault (a database error, an interrupt): give it back now
            # rather than make the next deliverer wait for the lease to run out.
            with contextlib.suppress(sqlite3.Error):
                queue.release(claim.job)
            raise
    report.stopped = stop is not None and stop.is_set()
    counts = queue.counts()
    report.busy = queue.claimed(clock())
    report.waiting = counts.get("queued", 0) - report.busy
    report.parked_total = counts.get("parked", 0)
    report.integrity_total = queue.parked_for(FAILURE_LOCAL)
    return report


def delivery_loop(
    station: Station,
    target: Target,
    stop: threading.Event,
    interval_s: float,
    on_report: Callable[[DeliveryReport], None] | None = None,
    *,
    clock: Clock = utc_now,
) -> None:
    """The daemon's delivery worker: run it in a thread of its own.

    Opens its own connection, delivers what is due, then waits ``interval_s`` (or
    until ``stop``), and returns once ``stop`` is set: between jobs, or from inside a
    put, which stops resumably. An unexpected error is raised to the caller (the
    daemon's supervisor) with the job's claim given back.
    """
    conn = station.connect()
    try:
        while not stop.is_set():
            report = deliver_due(station, conn, target, stop=stop, clock=clock)
            if on_report is not None:
                on_report(report)
            stop.wait(interval_s)
    finally:
        conn.close()


class _Claim:
    """A claimed job and its lease: renewed as the put reports progress (when half of it
    has gone by, or when the put has new state to save)."""

    def __init__(self, queue: UploadQueue, job: UploadJob, clock: Clock, lease: timedelta):
        self.queue = queue
        self.job = job
        self.clock = clock
        self.lease = lease
        self.renew_at = clock() + lease / 2

    def progress(self, sent: int, state: UploadState | None) -> None:
        now = self.clock()
        changed = state is not None and state != self.job.upload
        if changed or now >= self.renew_at:
            self.job = self.queue.renew(
                self.job, now, lease=self.lease, state=state if changed else None
            )
            self.renew_at = now + self.lease / 2


def _deliver_one(
    station: Station,
    conn: sqlite3.Connection,
    target: Target,
    claim: _Claim,
    report: DeliveryReport,
    stop: threading.Event | None,
) -> None:
    job = claim.job
    queue = claim.queue
    max_attempts = station.config.delivery.max_attempts
    try:
        confirmation = _put(station, conn, target, claim, stop)
        with transaction(conn):
            # The claim is checked in the transaction that records the upload: a job
            # done by another deliverer (after this one's lease ran out) is not recorded twice.
            recorded = queue.complete(claim.job, confirmation.location, claim.clock())
            if recorded:
                station.ledger(conn).append("clip.uploaded", _uploaded(job, confirmation))
        if not recorded:
            raise ClaimLost(f"job {job.id} (clip {job.clip_id}) was taken by another deliverer")
    except UploadStopped as exc:
        if stop is not None and stop.is_set():
            queue.release(claim.job)
            return
        # Only a stop that was asked for is not a failure.
        failure: tuple[str, str, int] = (str(exc), FAILURE_UNAVAILABLE, max_attempts)
    except ClaimLost as exc:
        report.lost += 1
        log.info("clip %s -> %s: %s; left to it", job.clip_id, job.target, exc)
        return
    except SourceIntegrityError as exc:
        # An integrity failure is not retried: park it for a person at once.
        failure = (f"integrity: {exc}", FAILURE_LOCAL, 0)
    except ConfirmationMismatch as exc:
        failure = (str(exc), FAILURE_TARGET, 0)
    except DeliveryError as exc:
        failure = (str(exc), FAILURE_UNAVAILABLE, max_attempts)
    else:
        report.delivered += 1
        if job.attempts:
            log.info(
                "clip %s delivered to %s after %d failed attempt(s)",
                job.clip_id,
                job.target,
                job.attempts,
            )
        return
    _settle(claim, report, *failure)


def _put(
    station: Station,
    conn: sqlite3.Connection,
    target: Target,
    claim: _Claim,
    stop: threading.Event | None,
) -> Confirmation:
    job = claim.job
    source = station.store.path_for(job.sha256)
    _check_local(source, job)
    meta = object_meta(station, conn, job)
    # A put of what the target already holds confirms it without sending it again.
    held = target.put(
        job.sha256, source, meta, state=job.upload, progress=claim.progress, stop=stop
    )
    if isinstance(held, S3Confirmation) and held.parts_reused:
        log.info(
            "clip %s -> %s: resumed upload, %d part(s) re-used, %d sent",
            job.clip_id,
            job.target,
            held.parts_reused,
            held.parts_sent,
        )
    if held.size != job.size or held.sha256 != job.sha256:
        raise ConfirmationMismatch(
            f"{target.name} confirmed {held.size} bytes sha256 {held.sha256} for clip "
            f"{job.clip_id}, expected {job.size} bytes sha256 {job.sha256}; the clip stays "
            "local and queued"
        )
    return held


def object_meta(station: Station, conn: sqlite3.Connection, job: UploadJob) -> dict[str, Any]:
    """What central storage keeps beside a clip: its digests, size, cases, collector,
    capture time and station; for Object Lock its keep-until and whether to hold it."""
    row = conn.execute(
        "SELECT c.source_path, c.recorder, c.session_id, c.kind, c.blake3, c.size,"
        " coalesce(c.creation_time, c.recorder_time) AS capture_time, s.officer"
        " FROM clips c LEFT JOIN docking_sessions s USING (session_id) WHERE c.clip_id = ?",
        (job.clip_id,),
    ).fetchone()
    meta: dict[str, Any] = {}
    if row is not None:
        meta.update(dict(row))
        meta["collector"] = meta.pop("officer")
    meta.update({"clip_id": job.clip_id, "station": station.station_id, "sha256": job.sha256})
    meta.setdefault("size", job.size)
    ledger = station.ledger(conn)
    cases = cases_holding(ledger, job.clip_id)
    meta["case_numbers"] = cases
    if job.target == "s3":
        category, keep_until = retention_of(conn, job.clip_id, station.config.retention)
        meta["retention"] = category
        if keep_until is not None:
            meta[LOCK_UNTIL] = iso_utc(keep_until)
        level = clip_sensitivity(conn, ledger, job.clip_id, cases).level
        meta[LEGAL_HOLD] = level in station.config.delivery.legal_hold_sensitivities
    return meta


def _uploaded(job: UploadJob, confirmation: Confirmation) -> dict[str, Any]:
    """The body of ``clip.uploaded``: what the target confirmed, and where."""
    body: dict[str, Any] = {
        "clip_id": job.clip_id,
        "sha256": job.sha256,
        "target": job.target,
        "location": confirmation.location,
        "confirmed_size": confirmation.size,
        "confirmed_sha256": confirmation.sha256,
    }
    if isinstance(confirmation, S3Confirmation):
        body.update(
            etag=confirmation.etag,
            version_id=confirmation.version_id,
            lock_mode=confirmation.lock_mode,
            lock_until=confirmation.lock_until,
            legal_hold=confirmation.legal_hold,
        )
    return body


def _check_local(source: Path, job: UploadJob) -> None:
    """The station's copy is there, a regular file of the size its clip was committed with."""
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} is missing from the evidence store "
            f"({source})"
        ) from None
    except OSError as exc:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) cannot be read: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) is not a regular file"
        )
    if info.st_size != job.size:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) has {info.st_size} bytes; "
            f"it was committed with {job.size}"
        )


def _settle(
    claim: _Claim, report: DeliveryReport, reason: str, failure: str, max_attempts: int
) -> None:
    """Record a failed attempt (``max_attempts`` 0: park at once) and say so."""
    job = claim.job
    try:
        with transaction(claim.queue.conn):
            if max_attempts:
                state = claim.queue.fail(job, reason, claim.clock(), max_attempts, failure)
            else:
                state = "parked"
                claim.queue.park(job, reason, claim.clock(), failure)
    except ClaimLost as exc:
        report.lost += 1
        log.info("clip %s -> %s: %s; left to it", job.clip_id, job.target, exc)
        return
    if state == "parked":
        report.parked += 1
    else:
        state = "failed"
        report.failed += 1
    _note(report, job, state, reason)


def _note(report: DeliveryReport, job: UploadJob, state: str, reason: str) -> None:
    """Log a job's failure once per change: its first failure, a new reason, parking."""
    line = f"clip {job.clip_id} -> {job.target}: {state} (attempt {job.attempts + 1}): {reason}"
    if state == "parked":
        log.error("%s", line)
    elif job.attempts == 0 or job.last_error != reason:
        log.warning("%s", line)
    if len(report.reasons) < 10 and reason not in {r.split(": ", 2)[-1] for r in report.reasons}:
        report.reasons.append(line)
