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
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from agent.delivery_meta import check_local, object_meta, s3_settings, uploaded_body
from agent.delivery_meta import store_hasher as store_hasher
from agent.delivery_priority import station_queue
from agent.delivery_report import DeliveryReport as DeliveryReport
from agent.delivery_report import note_failure
from agent.station import Station
from config.common import transaction, utc_now
from config.delivery import rate_at
from uploader import (
    FAILURE_LOCAL,
    FAILURE_TARGET,
    FAILURE_UNAVAILABLE,
    LEASE,
    ClaimLost,
    Confirmation,
    ConfirmationMismatch,
    DeliveryError,
    FolderTarget,
    S3Confirmation,
    S3Target,
    SourceIntegrityError,
    Target,
    Throttle,
    UploadJob,
    UploadQueue,
    UploadState,
    UploadStopped,
    read_credentials,
)

log = logging.getLogger("evidock")

Clock = Callable[[], datetime]


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


def anchor_prefix(station: Station) -> str:
    """Where this station's anchors live in a shared bucket: its id and its key's hash
    (the key now: a rotated key's checkpoints go under the new one)."""
    key_hash = station.keyring().fingerprint().replace(" ", "")[:16]
    return f"anchors/{station.station_id}/{key_hash}"


def station_throttle(station: Station) -> Throttle:
    """The station's bandwidth limit (``[delivery] bandwidth`` and ``bandwidth_schedule``
    in its time zone): one per process, shared by every upload it sends."""
    d = station.config.delivery
    zone = station.config.station.time_zone
    return Throttle(lambda moment: rate_at(d.bandwidth, d.bandwidth_schedule, zone, moment))


def deliver_due(
    station: Station,
    conn: sqlite3.Connection,
    target: Target,
    *,
    stop: threading.Event | None = None,
    clock: Clock = utc_now,
    lease: timedelta = LEASE,
    throttle: Throttle | None = None,
) -> DeliveryReport:
    """Claim and deliver, one at a time, every job due when the pass starts (the highest
    priority first, asked at each claim); report what is left (backing off, parked, held
    by another deliverer). ``stop`` is looked at between jobs and handed to each put;
    the bytes a put sends are paced by ``throttle`` (default: the station's limit)."""
    queue = station_queue(station, conn)
    pace = throttle if throttle is not None else station_throttle(station)
    report = DeliveryReport(data_dir=station.data_dir)
    claimer = f"pid {os.getpid()} {threading.current_thread().name} {secrets.token_hex(4)}"
    started = clock()
    while not (stop is not None and stop.is_set()):
        claimed = queue.claim(claimer, clock(), due_by=started, lease=lease)
        if not claimed:
            break
        claim = _Claim(queue, claimed[0], clock, lease, pace, stop)
        try:
            _deliver_one(station, conn, target, claim, report, stop)
        except BaseException:
            # Not the job's fault (a database error, an interrupt): give it back now
            # rather than make the next deliverer wait for the lease to run out.
            with contextlib.suppress(sqlite3.Error):
                queue.release(claim.job)
            raise
    report.stopped = stop is not None and stop.is_set()
    _left(report, queue, clock())
    return report


def _left(report: DeliveryReport, queue: UploadQueue, now: datetime) -> None:
    """What the queue holds after a pass."""
    counts = queue.counts()
    report.busy = queue.claimed(now)
    report.waiting = counts.get("queued", 0) - report.busy
    report.parked_total = counts.get("parked", 0)
    report.integrity_total = queue.parked_for(FAILURE_LOCAL)


def deliver_concurrently(
    station: Station,
    conn: sqlite3.Connection,
    target: Target,
    workers: int,
    *,
    stop: threading.Event | None = None,
    clock: Clock = utc_now,
    lease: timedelta = LEASE,
    throttle: Throttle | None = None,
) -> DeliveryReport:
    """One pass by ``workers`` deliverers at once, each on a thread and a connection of
    its own, each claiming its own jobs (a claim is one ``BEGIN IMMEDIATE``: two never
    take one job), all paced by one throttle. Returns their reports added up; the
    first unexpected error of a worker is raised once all have ended."""
    pace = throttle if throttle is not None else station_throttle(station)
    if workers <= 1:
        return deliver_due(
            station, conn, target, stop=stop, clock=clock, lease=lease, throttle=pace
        )
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        own = station.connect()
        try:
            reports.append(
                deliver_due(
                    station, own, target, stop=stop, clock=clock, lease=lease, throttle=pace
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [
        threading.Thread(target=work, name=f"evidock-delivery-{n + 1}", daemon=True)
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    total = DeliveryReport(data_dir=station.data_dir)
    for one in reports:
        total.add(one)
    _left(total, UploadQueue(conn), clock())
    return total


def delivery_loop(
    station: Station,
    target: Target,
    stop: threading.Event,
    interval_s: float,
    on_report: Callable[[DeliveryReport], None] | None = None,
    *,
    clock: Clock = utc_now,
    workers: int | None = None,
) -> None:
    """The daemon's delivery worker: run it in a thread of its own.

    Opens its own connection; each pass delivers what is due with ``workers``
    deliverers (default ``[delivery] workers``) sharing one bandwidth limit, then waits
    ``interval_s`` (or until ``stop``), and returns once ``stop`` is set: between jobs,
    or from inside a put, which stops resumably. An unexpected error is raised to the
    caller (the daemon's supervisor) with the job's claim given back.
    """
    count = workers if workers is not None else station.config.delivery.workers
    throttle = station_throttle(station)
    conn = station.connect()
    try:
        while not stop.is_set():
            report = deliver_concurrently(
                station, conn, target, count, stop=stop, clock=clock, throttle=throttle
            )
            if on_report is not None:
                on_report(report)
            stop.wait(interval_s)
    finally:
        conn.close()


class _Claim:
    """A claimed job and its lease: renewed as the put reports progress (when half of it
    has gone by, or when the put has new state to save); the bytes the put reports are
    paced by the throttle."""

    def __init__(
        self,
        queue: UploadQueue,
        job: UploadJob,
        clock: Clock,
        lease: timedelta,
        throttle: Throttle,
        stop: threading.Event | None,
    ):
        self.queue = queue
        self.job = job
        self.clock = clock
        self.lease = lease
        self.renew_at = clock() + lease / 2
        self.throttle = throttle
        self.stop = stop
        self.reported = 0

    def progress(self, sent: int, state: UploadState | None) -> None:
        now = self.clock()
        changed = state is not None and state != self.job.upload
        if changed or now >= self.renew_at:
            self.job = self.queue.renew(
                self.job, now, lease=self.lease, state=state if changed else None
            )
            self.renew_at = now + self.lease / 2
        self.pace(sent)

    def pace(self, sent: int) -> None:
        """Wait as the bandwidth limit asks for the bytes sent since the last report."""
        if sent > self.reported:
            fresh, self.reported = sent - self.reported, sent
            self.throttle.take(fresh, self.stop)


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
                station.ledger(conn).append("clip.uploaded", uploaded_body(job, confirmation))
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
    check_local(source, job)
    meta = object_meta(station, conn, job)
    # A put of what the target already holds confirms it without sending it again.
    held = target.put(
        job.sha256, source, meta, state=job.upload, progress=claim.progress, stop=stop
    )
    if isinstance(held, S3Confirmation) and held.parts_sent and not claim.reported:
        # A put in one piece reports nothing as it goes: its bytes are paid for now,
        # before this worker's next job.
        claim.pace(held.size)
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
    note_failure(report, job, state, reason)
