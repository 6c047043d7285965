"""`evidock queue`: the upload queue as IT sees it, and parked jobs sent back to it.

Every job: its clip, target, state, attempts, next attempt, last error and its failure
class, the bytes a resumable upload has had confirmed, and (while queued) why it goes
before others; then totals. A parked job is a clip not delivered: the command exits 1
while any is left, so a monitoring script sees it. ``--retry-parked`` queues again the
jobs parked for the target's sake (unreachable, or holding other bytes: causes IT can
fix outside the station); a job parked because the station's own copy is missing or
damaged stays, and the command says to run ``evidock verify``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from agent.delivery_priority import priorities
from agent.station_args import add_station_options, open_station
from config.common import printable, utc_now
from uploader import FAILURE_LOCAL, FAILURE_TARGET, FAILURE_UNAVAILABLE, UploadJob, UploadQueue

STATES: Final = ("queued", "parked", "done")
# Parked for the target's sake: a person can fix the cause outside the station.
RETRYABLE: Final = (FAILURE_UNAVAILABLE, FAILURE_TARGET)


def job_json(job: UploadJob, reasons: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": job.id,
        "clip_id": job.clip_id,
        "sha256": job.sha256,
        "target": job.target,
        "state": job.state,
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at if job.state == "queued" else None,
        "last_error": job.last_error,
        "failure": job.failure,
        "size": job.size,
        "sent_bytes": job.size if job.state == "done" else job.sent_bytes,
        "resumable": job.upload is not None,
        "claimed_by": job.claimed_by,
        "lease_until": job.lease_until,
        "priority": list(reasons),
        "queued_at": job.created_at,
        "done_at": job.done_at,
        "location": job.location,
    }


def _totals(jobs: list[UploadJob]) -> dict[str, Any]:
    by_state = {state: sum(j.state == state for j in jobs) for state in STATES}
    parked = [j for j in jobs if j.state == "parked"]
    return {
        **by_state,
        "jobs": len(jobs),
        "bytes_waiting": sum(j.size - j.sent_bytes for j in jobs if j.state == "queued"),
        "parked_by_failure": {
            failure: sum(j.failure == failure for j in parked)
            for failure in sorted({j.failure or "unknown" for j in parked})
        },
    }


def _line(entry: dict[str, Any]) -> str:
    head = f"{entry['clip_id']} -> {entry['target']}: {entry['state']}"
    parts = [f"attempts {entry['attempts']}"]
    if entry["state"] == "queued":
        parts.append(f"next attempt {entry['next_attempt_at']}")
        if entry["claimed_by"]:
            parts.append(f"being delivered (lease until {entry['lease_until']})")
    if entry["resumable"] or entry["state"] != "done":
        parts.append(f"sent {entry['sent_bytes']} of {entry['size']} bytes")
    if entry["priority"]:
        parts.append("first: " + ", ".join(entry["priority"]))
    if entry["state"] == "done":
        parts.append(f"confirmed at {entry['location']}")
    text = f"{head} ({'; '.join(parts)})"
    if entry["last_error"] and entry["state"] != "done":
        what = "parked" if entry["state"] == "parked" else "last error"
        text += f"\n    {what} [{entry['failure']}]: {entry['last_error']}"
    return printable(text)


def cmd_queue(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        queue = UploadQueue(station.conn)
        retried = None
        if args.retry_parked:
            retried = queue.retry_parked(utc_now(), failure=RETRYABLE)
        jobs = queue.jobs()
        shown = [j for j in jobs if args.state in (None, j.state)]
        queued = [j.clip_id for j in shown if j.state == "queued"]
        found = priorities(station.conn, station.ledger(), queued)
    finally:
        station.close()
    entries = [job_json(j, found[j.clip_id].reasons if j.clip_id in found else ()) for j in shown]
    totals = _totals(jobs)
    integrity = sum(j.state == "parked" and j.failure == FAILURE_LOCAL for j in jobs)
    if args.json:
        out: dict[str, Any] = {"jobs": entries, "totals": totals}
        if retried is not None:
            out["retried"] = retried
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        if retried is not None:
            print(f"{retried} parked job(s) queued again, due now")
        for entry in entries:
            print(_line(entry))
        print(
            f"{totals['jobs']} job(s): {totals['queued']} queued "
            f"({totals['bytes_waiting']} bytes to send), {totals['parked']} parked, "
            f"{totals['done']} done"
        )
        if integrity:
            where = f" --data-dir {station.data_dir}"
            print(
                f"{integrity} parked because the station's own copy is missing or damaged: "
                f"run `evidock verify{where}`; --retry-parked leaves them parked"
            )
        elif totals["parked"]:
            print("fix the cause, then `evidock queue --retry-parked` queues them again")
    return 1 if totals["parked"] else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "queue",
        help="the upload queue: every job, why it waits, totals; retry parked jobs",
        description="List the upload queue: each job's clip, target, state, attempts, next "
        "attempt, last error and failure class, bytes sent, and why it goes first; then "
        "totals. Exit 1 while a job is parked.",
    )
    add_station_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--state", choices=STATES, help="only jobs in this state")
    p.add_argument(
        "--retry-parked",
        action="store_true",
        help="queue again the jobs parked for the target's sake (not a damaged local copy)",
    )
    p.set_defaults(func=cmd_queue)
