"""Case mapping: a clip or a whole docking session linked to a case number.

A link is a ledger leaf (``case.linked`` / ``case.unlinked``), never an overwrite: the
``case_links`` rows are the catalogue's copy of those leaves, written in the same
transaction. Which clips a case holds is replayed from the ledger's leaves, in one place
(``ledger.membership``), for export, the CLI and the API alike.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass

from agent.clock import iso, utc_now
from agent.database import transaction
from agent.errors import CaseError
from ledger import Ledger

MAX_CASE_NUMBER = 128


@dataclass(frozen=True)
class CaseLink:
    case_number: str
    clip_id: str | None
    session_id: str | None
    officer: str | None
    object_of_proof: str | None
    leaf_index: int


def check_case_number(value: str) -> str:
    """Case numbers follow the case's documents (e.g. 京公(刑)立字〔2026〕123号)."""
    number = unicodedata.normalize("NFC", value.strip())
    if not number:
        raise CaseError("the case number is empty: give it as on the case's documents")
    if len(number) > MAX_CASE_NUMBER:
        raise CaseError(f"the case number is longer than {MAX_CASE_NUMBER} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in number):
        raise CaseError("the case number holds control characters: type it again")
    return number


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
) -> CaseLink:
    """Link (or with ``linked=False`` unlink) a clip or a session to a case."""
    number = check_case_number(case_number)
    with transaction(conn):
        clip_id, session_id = _target(conn, clip_id, session_id)
        leaf = ledger.append(
            "case.linked" if linked else "case.unlinked",
            {
                "clip_id": clip_id,
                "session_id": session_id,
                "case_number": number,
                "officer": officer,
                "object_of_proof": object_of_proof,
                "reason": reason,
            },
        )
        conn.execute(
            "INSERT INTO case_links (case_number, clip_id, session_id, officer,"
            " object_of_proof, linked, at, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                clip_id,
                session_id,
                officer,
                object_of_proof,
                int(linked),
                iso(utc_now()),
                leaf.index,
            ),
        )
    return CaseLink(number, clip_id, session_id, officer, object_of_proof, leaf.index)
