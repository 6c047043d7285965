"""``GET /api/v1/queue`` (the upload queue as ``evidock queue --json`` prints it: each job,
why a queued one goes first, and totals) and ``POST /api/v1/queue/retry`` (admins: the
jobs parked for the target's sake queued again, due now, as ``--retry-parked``; a job
parked because the station's own copy is missing or damaged stays parked: run
``evidock verify``). ``GET /api/v1/queue/retry``: the jobs a retry would queue again.
A job's state is the queue's, not evidence: no ledger leaf (``clip.uploaded`` comes when
central storage confirms the clip)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends

from agent.api.auth import STATUS_ROLES, require
from agent.api.context import Conn, Ctx
from agent.delivery_priority import priorities
from agent.queue_cli import RETRYABLE, _totals, job_json
from agent.tokens import Token
from config.common import utc_now
from uploader import UploadJob, UploadQueue

router = APIRouter(prefix="/api/v1")

QueueReader = Annotated[Token, Depends(require(*STATUS_ROLES))]
QueueAdmin = Annotated[Token, Depends(require("admin"))]


def _entries(ctx: Ctx, conn: Conn, jobs: list[UploadJob]) -> list[dict[str, Any]]:
    queued = [j.clip_id for j in jobs if j.state == "queued"]
    found = priorities(conn, ctx.station.ledger(conn), queued)
    return [job_json(j, found[j.clip_id].reasons if j.clip_id in found else ()) for j in jobs]


@router.get("/queue", summary="The upload queue: jobs and totals (clerks, admins, auditors)")
def queue(
    ctx: Ctx,
    conn: Conn,
    token: QueueReader,
    state: Literal["queued", "parked", "done"] | None = None,
) -> dict[str, Any]:
    jobs = UploadQueue(conn).jobs()
    shown = [j for j in jobs if state in (None, j.state)]
    return {"jobs": _entries(ctx, conn, shown), "totals": _totals(jobs)}


def _retryable(conn: Conn) -> list[UploadJob]:
    return [j for j in UploadQueue(conn).jobs() if j.state == "parked" and j.failure in RETRYABLE]


@router.get("/queue/retry", summary="The parked jobs a retry would queue again (admins)")
def retryable(ctx: Ctx, conn: Conn, token: QueueAdmin) -> dict[str, Any]:
    found = _retryable(conn)
    return {"count": len(found), "jobs": _entries(ctx, conn, found)}


@router.post("/queue/retry", summary="Queue again the jobs parked for the target's sake (admins)")
def retry(ctx: Ctx, conn: Conn, token: QueueAdmin) -> dict[str, Any]:
    retried = UploadQueue(conn).retry_parked(utc_now(), failure=RETRYABLE)
    jobs = UploadQueue(conn).jobs()
    return {"retried": retried, "totals": _totals(jobs)}
