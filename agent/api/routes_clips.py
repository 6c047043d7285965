"""``GET /api/v1/clips`` (search, as ``evidock clips``) and ``GET /api/v1/clips/{id}``
(its metadata and its five elements, each with its value and where it came from).

What a token sees: an officer only clips of their own docking sessions (the session's
officer is the token's owner); clerks and auditors every clip; and privacy or secret
clips only when the station's ``[sensitivity]`` lists the token's owner for that level.
A clip the token may not see is left out of a search and answered 404 by id, the same
answer as a clip that does not exist, so a token learns nothing of footage it may not see.
Metadata is not footage: reading it writes no ledger leaf (viewing and downloading the
footage itself does, first: ``clip.accessed``).
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query

from agent.api.auth import ClipCaller
from agent.api.context import ApiContext, Conn, Ctx
from agent.api.errors import ApiError
from agent.cases import check_case_number
from agent.clip_facts import ClipFacts, load_clip_facts
from agent.clip_search import ClipQuery, search
from agent.errors import EvidockError
from agent.records_filters import near, time_range
from agent.tokens import Token
from config.policy import person_key
from ledger import Leaf
from ledger.elements import Element, clip_elements

router = APIRouter(prefix="/api/v1")

Integrity = Literal["ok", "truncated", "undecodable", "not_media", "not_probed"]
Sensitivity = Literal["normal", "privacy", "secret"]
ClipId = Annotated[str, Path(pattern=r"^c[0-9a-f]{24}$", description="a clip id: c + 24 hex")]


def may_see(ctx: ApiContext, token: Token, clip: ClipFacts) -> bool:
    """The one rule of which clips a token sees (see the module's docstring)."""
    if token.role == "officer" and person_key(clip.officer or "") != person_key(token.owner):
        return False
    return ctx.station.config.sensitivity.allows(token.owner, clip.sensitivity)


def _facts(ctx: ApiContext, conn: sqlite3.Connection) -> list[ClipFacts]:
    section = ctx.station.config.station
    return load_clip_facts(
        conn, ctx.station.ledger(conn), time_zone=section.time_zone, station_place=section.place
    )


def _bad_query(exc: EvidockError) -> ApiError:
    # The filters' messages name the CLI's options (--from): here they are parameters.
    return ApiError(422, "bad_request", str(exc).replace("--", ""))


@router.get("/clips", summary="Search clips (officers: their own; by sensitivity)")
def clips(
    ctx: Ctx,
    conn: Conn,
    token: ClipCaller,
    officer: str | None = None,
    unit: str | None = None,
    start: Annotated[str | None, Query(alias="from", description="a day or ISO time")] = None,
    end: Annotated[
        str | None, Query(alias="to", description="a day (inclusive) or ISO time")
    ] = None,
    case: str | None = None,
    subject: str | None = None,
    near_: Annotated[str | None, Query(alias="near", description="LAT,LON")] = None,
    radius_m: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    integrity: Integrity | None = None,
    sensitivity: Sensitivity | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    zone = ZoneInfo(ctx.station.config.station.time_zone)
    try:
        query = ClipQuery(
            officer=officer,
            unit=unit,
            span=time_range(start, end, zone),
            case=check_case_number(case) if case is not None else None,
            subject=subject,
            near=near(near_, radius_m),
            integrity=integrity,
            sensitivity=sensitivity,
        )
    except EvidockError as exc:
        raise _bad_query(exc) from None
    visible = [c for c in _facts(ctx, conn) if may_see(ctx, token, c)]
    found = search(conn, visible, query)
    return {
        "count": len(found),
        "offset": offset,
        "limit": limit,
        "clips": [c.as_json() for c in found[offset : offset + limit]],
    }


def _element(element: Element) -> dict[str, Any]:
    found: dict[str, Any] = {"value": element.value, "source": element.source}
    if element.moment is not None:
        found["start"] = element.moment.isoformat()
        found["end"] = element.end.isoformat() if element.end else None
        found["corrected"] = element.corrected
    if element.place is not None:
        found["place"] = [element.place.latitude, element.place.longitude]
        found["place_name"] = element.place_name
    return found


def _link(clip: ClipFacts) -> tuple[str, Leaf | None]:
    """The link the elements come from: one with an object of proof, else any."""
    chosen: tuple[str, Leaf | None] = ("", None)
    for number, leaf in sorted(clip.links.items()):
        if chosen[1] is None or (
            leaf.body.get("object_of_proof") and not chosen[1].body.get("object_of_proof")
        ):
            chosen = (number, leaf)
    return chosen


@router.get("/clips/{clip_id}", summary="A clip's metadata and its five elements")
def clip(ctx: Ctx, conn: Conn, token: ClipCaller, clip_id: ClipId) -> dict[str, Any]:
    found = next((c for c in _facts(ctx, conn) if c.clip_id == clip_id), None)
    if found is None or not may_see(ctx, token, found):
        raise ApiError(
            404,
            "not_found",
            f"no clip {clip_id} this token may see: check the id (GET /api/v1/clips lists "
            "the clips it may see)",
        )
    row = conn.execute(
        "SELECT sha256, blake3, sm3, size, kind, recorder, session_id, source_path,"
        " recorder_time, ingested_at, leaf_index FROM clips WHERE clip_id = ?",
        (clip_id,),
    ).fetchone()
    media = conn.execute("SELECT * FROM clip_media WHERE clip_id = ?", (clip_id,)).fetchone()
    ledger = ctx.station.ledger(conn)
    leaves = [*ledger.find(clip_id=clip_id), *ledger.find(session_id=found.session_id)]
    number, link = _link(found)
    section = ctx.station.config.station
    elements = clip_elements(
        leaves,
        clip_id,
        number,
        zone=ZoneInfo(section.time_zone),
        station_place=section.place,
        link=link,
    )
    return {
        **found.as_json(),
        "metadata": dict(row),
        "media": dict(media) if media is not None else None,
        "elements": {name: _element(element) for name, element in elements.items()},
    }
