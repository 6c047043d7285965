"""The ledger for auditors and IT (roles ``auditor`` and ``admin``):

- ``GET /api/v1/ledger/checkpoints``: the signed checkpoints, newest first (size, root,
  signed at, the signed note), and the leaves no checkpoint signs yet.
- ``GET /api/v1/ledger/access-log``: every ``clip.accessed`` and ``access.refused`` leaf
  (调阅记录), newest first, filtered by ``who`` (any form of the person id), ``clip``,
  ``from`` and ``to`` (a day, local and inclusive, or an ISO time), with ``limit``.
- ``POST /api/v1/ledger/verify``: ``evidock verify --json`` run now, read-only, on the
  station's data dir (its own public key; the station's trusted-timestamp settings), and
  its result; ``GET`` of the same path: the last result this API served (null before).
  Verifying reads every stored clip: it takes as long as the CLI's run.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from agent.api.auth import METRICS_ROLES, require
from agent.api.context import Conn, Ctx
from agent.api.errors import ApiError
from agent.errors import EvidockError
from agent.records_filters import time_range
from agent.tokens import Token
from agent.verification import verify_data_dir
from config.common import iso_utc, utc_now
from config.policy import person_key
from ledger import report_json

router = APIRouter(prefix="/api/v1")

LEDGER_ROLES: Final = METRICS_ROLES  # auditor, admin
LedgerCaller = Annotated[Token, Depends(require(*LEDGER_ROLES))]
ACCESS_KINDS: Final = ("clip.accessed", "access.refused")

_last: dict[str, Any] = {}  # station data dir -> the last verify result served
_verifying = threading.Lock()  # one run at a time: each reads the whole store


@router.get("/ledger/checkpoints", summary="Signed checkpoints, newest first (auditors, admins)")
def checkpoints(
    ctx: Ctx,
    conn: Conn,
    token: LedgerCaller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT tree_size, root, note, signed_at FROM ledger_checkpoints"
        " ORDER BY tree_size DESC LIMIT ?",
        (limit,),
    ).fetchall()
    leaves = ctx.station.ledger(conn).size()
    newest = int(rows[0]["tree_size"]) if rows else 0
    return {
        "leaves": leaves,
        "unsigned_leaves": leaves - newest,
        "checkpoints": [
            {
                "tree_size": r["tree_size"],
                "root": bytes(r["root"]).hex(),
                "signed_at": r["signed_at"],
                "note": r["note"],
            }
            for r in rows
        ],
    }


def _access(leaf: Any) -> dict[str, Any]:
    body = leaf.body
    return {
        "leaf": leaf.index,
        "at": leaf.at,
        "event": "accessed" if leaf.kind == "clip.accessed" else "refused",
        **{k: body.get(k) for k in ("who", "clip_id", "case_number", "purpose", "action")},
        **{k: body.get(k) for k in ("via", "sensitivity", "reason")},
    }


@router.get(
    "/ledger/access-log",
    summary="Accesses to footage and refused attempts, newest first (auditors, admins)",
)
def access_log(
    ctx: Ctx,
    conn: Conn,
    token: LedgerCaller,
    who: str | None = None,
    clip: Annotated[str | None, Query(pattern=r"^c[0-9a-f]{24}$")] = None,
    start: Annotated[str | None, Query(alias="from", description="a day or ISO time")] = None,
    end: Annotated[
        str | None, Query(alias="to", description="a day (inclusive) or ISO time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    try:
        span = time_range(start, end, ZoneInfo(ctx.station.config.station.time_zone))
    except EvidockError as exc:
        raise ApiError(422, "bad_request", str(exc).replace("--", "")) from None
    ledger = ctx.station.ledger(conn)
    found = []
    for kind in ACCESS_KINDS:
        for leaf in ledger.leaves_of_kind(kind):
            if who is not None and person_key(str(leaf.body.get("who"))) != person_key(who):
                continue
            if clip is not None and leaf.body.get("clip_id") != clip:
                continue
            if not span.holds(datetime.fromisoformat(leaf.at.replace("Z", "+00:00"))):
                continue
            found.append(leaf)
    found.sort(key=lambda leaf: leaf.index, reverse=True)
    return {"count": len(found), "entries": [_access(leaf) for leaf in found[:limit]]}


@router.post(
    "/ledger/verify",
    summary="Verify the station now, read-only, as `evidock verify` (auditors, admins)",
)
def verify(ctx: Ctx, token: LedgerCaller) -> dict[str, Any]:
    station = ctx.station
    with _verifying:
        outcome = verify_data_dir(station.data_dir, timestamping=station.config.timestamping)
    found = json.loads(report_json(outcome.report))
    found["timestamps"] = {"lines": list(outcome.timestamps), "invalid": outcome.timestamp_invalid}
    found["status"], found["ok"] = outcome.status, outcome.ok
    result = {"at": iso_utc(utc_now()), "by": token.owner, "result": found}
    _last[str(station.data_dir)] = result
    return result


@router.get("/ledger/verify", summary="The last verify result this API served (or null)")
def last_verify(ctx: Ctx, token: LedgerCaller) -> dict[str, Any]:
    return {"last": _last.get(str(ctx.station.data_dir))}
