"""Cases through the API, as ``evidock case`` and ``evidock link|unlink`` (``agent.cases``,
``agent.case_records``, ``agent.case_show``): each change one ledger leaf naming the
token's owner; any form of a number finds the same case.

- ``GET /cases`` (``?state=open|closed``), ``GET /cases/{number}``: clerks and auditors.
- ``POST /cases``: clerks. A number the agency's rule (``[cases] number_pattern``)
  refuses is 422 with the expected form.
- ``GET /cases/{number}/links``: the case's link history (clerks, auditors).
- ``POST /cases/{number}/links`` (a clip or a docking session, with the object of proof):
  clerks, and officers for their own sessions' footage (the kiosk's tagging).
- ``DELETE /cases/{number}/links/{target}`` (a clip or session id, ``?reason=``): an
  unlink is a ``case.unlinked`` leaf, never a deletion of evidence or of the link's
  record; ``GET`` of the same path: that target's link history in the case.

The station signs its next checkpoint on the daemon's timer (the leaves are in the
ledger when the answer is sent).
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from agent import case_records
from agent.api.auth import require
from agent.api.context import ApiContext, Conn, Ctx
from agent.api.errors import ApiError
from agent.case_show import case_view
from agent.cases import CaseLink, check_case_number, link, link_history
from agent.errors import CaseError
from agent.tokens import Token
from config.policy import person_key

router = APIRouter(prefix="/api/v1")

READ_ROLES = ("clerk", "auditor")
LINK_ROLES = ("clerk", "officer")
CaseReader = Annotated[Token, Depends(require(*READ_ROLES))]
CaseClerk = Annotated[Token, Depends(require("clerk"))]
CaseLinker = Annotated[Token, Depends(require(*LINK_ROLES))]
Number = Annotated[
    str, Path(min_length=1, max_length=128, description="a case number, in any form")
]
Target = Annotated[
    str,
    Path(pattern=r"^(c[0-9a-f]{24}|S[0-9A-Za-z_-]{1,64})$", description="a clip or session id"),
]
Text = Annotated[str | None, Field(default=None, max_length=case_records.MAX_TEXT)]


def _rule_error(ctx: ApiContext, typed: str) -> ApiError | None:
    """A 422 naming the agency's expected form, if ``typed`` does not follow the rule."""
    try:
        check_case_number(typed, ctx.station.config.cases.rule())
    except CaseError as exc:
        return ApiError(422, "bad_case_number", str(exc))
    return None


def _number(typed: str) -> str:
    try:
        return check_case_number(typed)
    except CaseError as exc:
        raise ApiError(422, "bad_case_number", str(exc)) from None


@router.get("/cases", summary="Cases on record (clerks, auditors)")
def cases(
    conn: Conn, token: CaseReader, state: Literal["open", "closed"] | None = None
) -> dict[str, Any]:
    found = case_records.list_cases(conn, state)
    return {"count": len(found), "cases": [c.as_json() for c in found]}


@router.get("/cases/{number}", summary="A case: its record, history, links and clips")
def case(ctx: Ctx, conn: Conn, token: CaseReader, number: Number) -> dict[str, Any]:
    _number(number)
    try:
        return case_view(conn, ctx.station.ledger(conn), number)
    except CaseError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


class NewCase(BaseModel):
    """A case to open, as ``evidock case create`` takes it."""

    model_config = ConfigDict(extra="forbid")
    case_number: str = Field(min_length=1, max_length=128, description="as typed")
    subject: str = Field(min_length=1, max_length=case_records.MAX_TEXT, description="当事人")
    category: str = Field(min_length=1, max_length=case_records.MAX_TEXT)
    unit: str = Field(min_length=1, max_length=case_records.MAX_TEXT)
    whole_process: bool = Field(default=False, description="whole-process recording required")
    starts: str | None = Field(default=None, description="ISO time with offset")
    ends: str | None = Field(default=None, description="ISO time with offset")
    sensitivity: Literal["normal", "privacy", "secret"] = "normal"
    retention: Text = None


@router.post("/cases", status_code=201, summary="Open a case (clerks); a case.opened leaf")
def create(ctx: Ctx, conn: Conn, token: CaseClerk, new: NewCase) -> dict[str, Any]:
    refused = _rule_error(ctx, new.case_number)
    if refused is not None:
        raise refused
    text = case_records.text_field
    try:
        fields = {
            "subject": text("subject", new.subject, required=True),
            "category": text("category", new.category, required=True),
            "unit": text("unit", new.unit, required=True),
            "whole_process": new.whole_process,
            "starts": case_records.moment("starts", new.starts),
            "ends": case_records.moment("ends", new.ends),
            "sensitivity": new.sensitivity,
            "retention": text("retention", new.retention),
        }
    except CaseError as exc:
        raise ApiError(422, "bad_request", str(exc).replace("--", "")) from None
    try:
        made = case_records.create_case(
            conn,
            ctx.station.ledger(conn),
            new.case_number,
            fields,
            by=token.owner,
            rule=ctx.station.config.cases.rule(),
        )
    except CaseError as exc:
        if "exists already" in str(exc):
            raise ApiError(409, "case_exists", str(exc)) from None
        raise ApiError(422, "bad_request", str(exc).replace("--", "")) from None
    return made.as_json()


def _history(conn: sqlite3.Connection, ctx: ApiContext, number: str) -> list[dict[str, Any]]:
    view_leaves = link_history(ctx.station.ledger(conn), number)
    return [
        {
            "leaf": leaf.index,
            "at": leaf.at,
            "action": "linked" if leaf.kind == "case.linked" else "unlinked",
            **{k: leaf.body.get(k) for k in ("clip_id", "session_id", "officer")},
            **{k: leaf.body.get(k) for k in ("object_of_proof", "reason", "case_number_typed")},
        }
        for leaf in view_leaves
    ]


@router.get("/cases/{number}/links", summary="The case's links and unlinks, oldest first")
def links(ctx: Ctx, conn: Conn, token: CaseReader, number: Number) -> dict[str, Any]:
    key = _number(number)
    return {"case_number": key, "links": _history(conn, ctx, key)}


class NewLink(BaseModel):
    """What to link: exactly one of a clip or a docking session."""

    model_config = ConfigDict(extra="forbid")
    clip_id: str | None = Field(default=None, pattern=r"^c[0-9a-f]{24}$")
    session_id: str | None = Field(default=None, max_length=64)
    object_of_proof: Text = Field(default=None, description="证明对象: what the footage proves")
    reason: Text = None


def _own(conn: sqlite3.Connection, token: Token, clip_id: str | None, session: str | None) -> None:
    """An officer links only their own sessions' footage; another's is as if missing."""
    if token.role != "officer":
        return
    if clip_id is not None:
        rows = conn.execute(
            "SELECT d.officer FROM sightings s JOIN docking_sessions d USING (session_id)"
            " WHERE s.clip_id = ?",
            (clip_id,),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT officer FROM docking_sessions WHERE session_id = ?", (session,)
        ).fetchall()
    if not any(person_key(r[0] or "") == person_key(token.owner) for r in rows):
        what = f"clip {clip_id}" if clip_id else f"session {session}"
        raise ApiError(404, "not_found", f"no {what} of yours on this station: check the id")


def _answer(made: CaseLink) -> dict[str, Any]:
    return {
        "case_number": made.case_number,
        "clip_id": made.clip_id,
        "session_id": made.session_id,
        "outcome": made.outcome,
        "leaf": made.leaf_index,
        "case_registered": made.case_registered,
    }


@router.post("/cases/{number}/links", summary="Link a clip or session (clerks; officers: own)")
def add_link(
    ctx: Ctx, conn: Conn, token: CaseLinker, number: Number, new: NewLink
) -> dict[str, Any]:
    refused = _rule_error(ctx, number)
    if refused is not None:
        raise refused
    if (new.clip_id is None) == (new.session_id is None):
        raise ApiError(422, "bad_request", "give exactly one of clip_id or session_id")
    _own(conn, token, new.clip_id, new.session_id)
    try:
        made = link(
            conn,
            ctx.station.ledger(conn),
            number,
            clip_id=new.clip_id,
            session_id=new.session_id,
            officer=token.owner,
            object_of_proof=new.object_of_proof,
            reason=new.reason,
            rule=ctx.station.config.cases.rule(),
        )
    except CaseError as exc:
        if str(exc).startswith("no "):
            raise ApiError(404, "not_found", str(exc)) from None
        raise
    return _answer(made)


def _split(target: str) -> tuple[str | None, str | None]:
    return (target, None) if target.startswith("c") else (None, target)


@router.get("/cases/{number}/links/{target}", summary="One clip's or session's link history")
def target_links(
    ctx: Ctx, conn: Conn, token: CaseReader, number: Number, target: Target
) -> dict[str, Any]:
    key = _number(number)
    found = [
        entry
        for entry in _history(conn, ctx, key)
        if target in (entry["clip_id"], entry["session_id"])
    ]
    return {"case_number": key, "target": target, "links": found}


@router.delete(
    "/cases/{number}/links/{target}",
    summary="Unlink a clip or session: a case.unlinked leaf (evidence is never deleted)",
)
def remove_link(
    ctx: Ctx,
    conn: Conn,
    token: CaseLinker,
    number: Number,
    target: Target,
    reason: Annotated[str | None, Query(max_length=case_records.MAX_TEXT)] = None,
) -> dict[str, Any]:
    clip_id, session_id = _split(target)
    _own(conn, token, clip_id, session_id)
    try:
        made = link(
            conn,
            ctx.station.ledger(conn),
            number,
            clip_id=clip_id,
            session_id=session_id,
            officer=token.owner,
            reason=reason,
            linked=False,
        )
    except CaseError as exc:
        if "nothing to unlink" in str(exc):
            raise ApiError(409, "not_linked", str(exc)) from None
        raise
    return _answer(made)
