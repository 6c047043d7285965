"""Case mapping: a clip or a whole docking session linked to a case number.

A link is a ledger leaf (``case.linked`` / ``case.unlinked``), never an overwrite: the
``case_links`` rows are the catalogue's copy of those leaves, written in the same
transaction. Which clips a case holds is replayed from the ledger's leaves, in one place
(``ledger.case_members``), for export, the CLI and the API alike.

Numbers are compared in their normal form (``config.case_numbers``): a leaf keeps the
normal form in ``case_number`` and what was typed in ``case_number_typed``. A link that
would change nothing (the clip is in the case already) writes no leaf and says so; an
unlink of a link that does not stand is refused. A number need not belong to a case
record yet: footage is often tagged before the case is registered.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from agent.database import transaction
from agent.errors import CaseError
from config.case_numbers import (
    MAX_CASE_NUMBER,
    CaseNumberError,
    CaseNumberRule,
    fold_case_number,
    normalise_case_number,
)
from ledger import Leaf, Ledger, case_members

__all__ = ["MAX_CASE_NUMBER", "CaseLink", "check_case_number", "link", "link_history"]

_LINKS = ("case.linked", "case.unlinked")
_SEEN = ("clip.ingested", "clip.redocked")

Outcome = Literal["linked", "unlinked", "already linked"]


@dataclass(frozen=True)
class CaseLink:
    case_number: str  # the normal form
    clip_id: str | None
    session_id: str | None
    officer: str | None
    object_of_proof: str | None
    leaf_index: int | None  # None: nothing changed, no leaf written
    case_number_typed: str = ""
    outcome: Outcome = "linked"
    case_registered: bool = True


def check_case_number(value: str, rule: CaseNumberRule | None = None) -> str:
    """The normal form of a number someone entered (e.g. 京公(刑)立字〔2026〕123号);
    with ``rule``, it must also follow the agency's pattern. CaseError otherwise."""
    try:
        return rule.check(value) if rule is not None else normalise_case_number(value)
    except CaseNumberError as exc:
        raise CaseError(str(exc)) from None


def _target(
    conn: sqlite3.Connection, clip_id: str | None, session_id: str | None
) -> tuple[str | None, str | None]:
    if (clip_id is None) == (session_id is None):
        raise CaseError("name exactly one clip (--clip) or one docking session (--session)")
    if clip_id is not None:
        if conn.execute("SELECT 1 FROM clips WHERE clip_id = ?", (clip_id,)).fetchone() is None:
            raise CaseError(f"no clip {clip_id} on this station: see `evidock ingest --json`")
    elif (
        conn.execute(
            "SELECT 1 FROM docking_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        is None
    ):
        raise CaseError(f"no docking session {session_id} on this station")
    return clip_id, session_id


def link_history(ledger: Ledger, case_number: str) -> list[Leaf]:
    """Every link and unlink of the case (any form of its number), in ledger order."""
    key = fold_case_number(case_number)
    leaves = [
        leaf
        for kind in _LINKS
        for leaf in ledger.leaves_of_kind(kind)
        if isinstance(leaf.body.get("case_number"), str)
        and fold_case_number(leaf.body["case_number"]) == key
    ]
    return sorted(leaves, key=lambda leaf: leaf.index)


def _session_stands(ledger: Ledger, key: str, session_id: str) -> bool:
    """Whether the session's own last link event for this case is a link."""
    stands = False
    for leaf in ledger.find(session_id=session_id):
        body = leaf.body
        if (
            leaf.kind in _LINKS
            and not body.get("clip_id")
            and isinstance(body.get("case_number"), str)
            and fold_case_number(body["case_number"]) == key
        ):
            stands = leaf.kind == "case.linked"
    return stands


def _session_clips(ledger: Ledger, session_id: str) -> set[str]:
    return {
        str(leaf.body["clip_id"])
        for leaf in ledger.find(session_id=session_id)
        if leaf.kind in _SEEN and isinstance(leaf.body.get("clip_id"), str)
    }


def _would_change(
    ledger: Ledger, key: str, clip_id: str | None, session_id: str | None, linked: bool
) -> bool:
    """Whether a link (or unlink) of this target changes what the case holds."""
    members = case_members(ledger, key)
    if clip_id is not None:
        return (clip_id in members) != linked
    assert session_id is not None
    clips = _session_clips(ledger, session_id)
    stands = _session_stands(ledger, key, session_id)
    if linked:
        return not stands or not clips <= members.keys()
    return stands or bool(clips & members.keys())


def _registered(conn: sqlite3.Connection, key: str) -> bool:
    row = conn.execute("SELECT 1 FROM cases WHERE case_number = ?", (key,)).fetchone()
    return row is not None


def link(
    conn: sqlite3.Connection,
    ledger: Ledger,
    case_number: str,
    *,
    clip_id: str | None = None,
    session_id: str | None = None,
    officer: str | None = None,
    object_of_proof: str | None = None,
    reason: str | None = None,
    linked: bool = True,
    rule: CaseNumberRule | None = None,
) -> CaseLink:
    """Link (or with ``linked=False`` unlink) a clip or a session to a case.

    ``rule``: the station's case-number rule (``config.cases.rule()``); without it the
    number is only normalised. A link that changes nothing writes no leaf
    (``outcome == "already linked"``); an unlink of a link that does not stand raises
    CaseError and writes nothing.
    """
    typed = case_number.strip()
    with transaction(conn):
        clip_id, session_id = _target(conn, clip_id, session_id)
        number = check_case_number(case_number, rule)
        what = f"clip {clip_id}" if clip_id else f"session {session_id}"
        registered = _registered(conn, number)
        if not _would_change(ledger, number, clip_id, session_id, linked):
            if not linked:
                raise CaseError(
                    f"{what} is not linked to case {number}: nothing to unlink "
                    f"(see `evidock case show {number}`)"
                )
            return CaseLink(
                number, clip_id, session_id, officer, object_of_proof, None, typed,
                "already linked", registered,
            )  # fmt: skip
        leaf = ledger.append(
            "case.linked" if linked else "case.unlinked",
            {
                "clip_id": clip_id,
                "session_id": session_id,
                "case_number": number,
                "case_number_typed": typed,
                "officer": officer,
                "object_of_proof": object_of_proof,
                "reason": reason,
            },
        )
        conn.execute(
            "INSERT INTO case_links (case_number, case_number_typed, clip_id, session_id,"
            " officer, object_of_proof, linked, at, leaf_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                typed,
                clip_id,
                session_id,
                officer,
                object_of_proof,
                int(linked),
                leaf.at,
                leaf.index,
            ),
        )
    return CaseLink(
        number, clip_id, session_id, officer, object_of_proof, leaf.index, typed,
        "linked" if linked else "unlinked", registered,
    )  # fmt: skip
