"""``GET /api/v1/sessions`` (live and recent docking sessions, and the slots they are in)
and ``GET /api/v1/sessions/events`` (the same, as a Server-Sent-Events stream of changes).

A session is what ``evidock sessions --json`` prints of it (``session_rows``: slot,
recorder, officer, phase, files done of total, bytes done of total, its moments) plus
``safe_to_take``: the station says the recorder may be taken out, because its footage is
safe by the wipe policy (phase ``safe``, or ``wiped`` after it; ``agent.phases``).

Who sees what: an officer only their own sessions (the session's officer is the token's
owner) and the slots those are in; clerks, auditors and admins every session (a session's
progress is the station's state, not footage). The kiosk at the dock shows every slot: it
holds a ``clerk`` token whose owner names the kiosk (e.g. ``kiosk-1``): docs/api.md.

The stream polls the database every ``POLL_SECONDS`` while a client listens and sends an
event for each session whose row changed (``event: session``, data: the session as
``GET /sessions`` shows it); first, every session the token sees. A comment line
(``: heartbeat``) comes every ``HEARTBEAT_SECONDS`` so proxies keep it open. It ends when
the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from agent.api.auth import AnyCaller
from agent.api.context import ApiContext, Conn, Ctx
from agent.recorders_cli import session_rows
from agent.status import _slots as status_slots
from agent.tokens import Token
from config.policy import person_key

router = APIRouter(prefix="/api/v1")

SAFE_PHASES: Final = ("safe", "wiped")
POLL_SECONDS: Final = 0.5
HEARTBEAT_SECONDS: Final = 15.0
RECENT: Final = 50  # sessions a list shows by default, newest first


def sessions_seen(
    ctx: ApiContext, conn: sqlite3.Connection, token: Token, *, active: bool = False
) -> list[dict[str, Any]]:
    """Every session ``token`` may see, newest first, each with ``safe_to_take``."""
    found = []
    for row in session_rows(conn, active=active):
        if token.role == "officer" and person_key(row["officer"] or "") != person_key(token.owner):
            continue
        found.append({**row, "safe_to_take": row["phase"] in SAFE_PHASES})
    return found


def slots_seen(
    ctx: ApiContext, token: Token, sessions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The slots as ``evidock status`` shows them; an officer's: only those holding a
    session of theirs (what another officer's recorder is doing is not theirs to see)."""
    slots = status_slots(ctx.station, sessions)
    for slot in slots:
        if slot["session"] is not None:
            slot["session"]["safe_to_take"] = slot["session"]["phase"] in SAFE_PHASES
    if token.role == "officer":
        return [s for s in slots if s["session"] is not None]
    return slots


@router.get(
    "/sessions",
    summary="Live and recent docking sessions and the slots (officers: their own)",
)
def sessions(
    ctx: Ctx,
    conn: Conn,
    token: AnyCaller,
    active: Annotated[bool, Query(description="only the sessions still open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = RECENT,
) -> dict[str, Any]:
    seen = sessions_seen(ctx, conn, token, active=active)
    return {
        "slots": slots_seen(ctx, token, sessions_seen(ctx, conn, token)),
        "count": len(seen),
        "sessions": seen[:limit],
    }


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _snapshot(ctx: ApiContext, token: Token) -> dict[str, dict[str, Any]]:
    conn = ctx.station.connect()
    try:
        return {str(s["session_id"]): s for s in sessions_seen(ctx, conn, token)}
    finally:
        conn.close()


async def _changes(request: Request, ctx: ApiContext, token: Token) -> AsyncIterator[str]:
    known: dict[str, dict[str, Any]] = {}
    beat = time.monotonic()
    while True:
        now = await anyio.to_thread.run_sync(_snapshot, ctx, token)
        # Oldest first, so a client applying them in order ends with the newest.
        for session_id, session in reversed(now.items()):
            if known.get(session_id) != session:
                yield _event("session", session)
        known = now
        if time.monotonic() - beat >= HEARTBEAT_SECONDS:
            beat = time.monotonic()
            yield ": heartbeat\n\n"
        if ctx.stopping.is_set() or await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)


@router.get(
    "/sessions/events",
    summary="Server-Sent Events: each session's phase and progress as they change",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def session_events(request: Request, ctx: Ctx, token: AnyCaller) -> StreamingResponse:
    return StreamingResponse(
        _changes(request, ctx, token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["router", "sessions_seen", "slots_seen"]
