"""``/healthz`` (no token: the process answers), ``/readyz`` (the station's database
answers) and ``/api/v1/status`` (the same data as ``evidock status --json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent.api.auth import AnyCaller, StatusCaller
from agent.api.context import Conn, Ctx
from agent.status import station_status

router = APIRouter()


@router.get("/healthz", summary="The API answers (no token needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The station's database answers")
def readyz(ctx: Ctx, conn: Conn, token: AnyCaller) -> dict[str, Any]:
    leaves = ctx.station.ledger(conn).size()
    return {"status": "ready", "station": ctx.station.station_id, "ledger_leaves": leaves}


@router.get("/api/v1/status", summary="The station at a glance (as evidock status --json)")
def status(ctx: Ctx, conn: Conn, token: StatusCaller) -> dict[str, Any]:
    return station_status(ctx.station, conn)
