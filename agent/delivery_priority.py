"""Which due upload goes first: asked when a job is claimed, never fixed at its queuing.

Links change after ingest (a clip linked to a case an hour later must jump ahead of the
shift's other footage), so the queue asks this module, inside the claim's transaction,
for the rank of every due clip; equal ranks go oldest first. A clip's rank adds up:

- 4: secret (涉密) footage — a case holding it is secret, or its own mark is;
- 2: a case holds it (the one replay of links, ``ledger.case_members``);
- 1: the recorder marked it important (``important`` in its ``clip.ingested`` leaf).

So a secret case's clips go first, then other case footage (important before the rest),
then important clips no case holds yet, then everything else, each oldest first.
Only the links naming the due clips or their sessions are replayed: a claim costs a few
indexed queries, not a walk of the ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from agent.station import Station
from config.case_numbers import fold_case_number
from ledger import Ledger, case_members
from uploader import Ranker, UploadQueue

SECRET: Final = 4
CASE: Final = 2
IMPORTANT: Final = 1

_SEEN: Final = ("clip.ingested", "clip.redocked")
_LINKS: Final = ("case.linked", "case.unlinked")


@dataclass(frozen=True)
class Priority:
    rank: int
    reasons: tuple[str, ...]  # "secret", "case 朝执罚〔2026〕1号", "important"


def _ids(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _holding(ledger: Ledger, clip_ids: Sequence[str]) -> dict[str, list[str]]:
    """Clip id -> case numbers (normal form) holding it now, for the given clips."""
    conn = ledger.conn
    wanted = _ids(clip_ids)
    sessions = [
        str(row[0])
        for row in conn.execute(
            "SELECT DISTINCT session_id FROM ledger_leaves WHERE kind IN (?, ?)"
            " AND clip_id IN (SELECT value FROM json_each(?)) AND session_id IS NOT NULL",
            (*_SEEN, wanted),
        )
    ]
    numbers = {
        fold_case_number(str(row[0]))
        for row in conn.execute(
            "SELECT DISTINCT case_number FROM ledger_leaves WHERE kind IN (?, ?)"
            " AND case_number IS NOT NULL AND (clip_id IN (SELECT value FROM json_each(?))"
            " OR session_id IN (SELECT value FROM json_each(?)))",
            (*_LINKS, wanted, _ids(sessions)),
        )
    }
    held: dict[str, list[str]] = {}
    want = set(clip_ids)
    for number in sorted(numbers):
        for clip_id in case_members(ledger, number):
            if clip_id in want:
                held.setdefault(clip_id, []).append(number)
    return held


def priorities(
    conn: sqlite3.Connection, ledger: Ledger, clip_ids: Sequence[str]
) -> dict[str, Priority]:
    """Each clip's priority now (clips with none are left out)."""
    if not clip_ids:
        return {}
    wanted = _ids(clip_ids)
    held = _holding(ledger, clip_ids)
    numbers = sorted({n for found in held.values() for n in found})
    secret_cases = {
        str(row[0])
        for row in conn.execute(
            "SELECT case_number FROM cases WHERE sensitivity = 'secret'"
            " AND case_number IN (SELECT value FROM json_each(?))",
            (_ids(numbers),),
        )
    }
    secret_marks = {
        str(row[0])
        for row in conn.execute(
            "SELECT clip_id FROM clip_sensitivity WHERE sensitivity = 'secret'"
            " AND clip_id IN (SELECT value FROM json_each(?))",
            (wanted,),
        )
    }
    important = {
        str(row[0])
        for row in conn.execute(
            "SELECT clip_id FROM ledger_leaves WHERE kind = 'clip.ingested'"
            " AND clip_id IN (SELECT value FROM json_each(?))"
            " AND json_extract(CAST(data AS TEXT), '$.body.important') = 1",
            (wanted,),
        )
    }
    found: dict[str, Priority] = {}
    for clip_id in clip_ids:
        rank, reasons = 0, []
        cases = held.get(clip_id, [])
        if clip_id in secret_marks or secret_cases.intersection(cases):
            rank += SECRET
            reasons.append("secret")
        if cases:
            rank += CASE
            reasons.extend(f"case {n}" for n in cases)
        if clip_id in important:
            rank += IMPORTANT
            reasons.append("important")
        if rank:
            found[clip_id] = Priority(rank, tuple(reasons))
    return found


def ranker(station: Station) -> Ranker:
    """This station's ranker (clip ids -> rank), for ``UploadQueue``."""

    def rank(conn: sqlite3.Connection, clip_ids: Sequence[str]) -> Mapping[str, int]:
        found = priorities(conn, station.ledger(conn), clip_ids)
        return {clip_id: p.rank for clip_id, p in found.items()}

    return rank


def station_queue(station: Station, conn: sqlite3.Connection) -> UploadQueue:
    """The station's upload queue on ``conn``, claiming by priority."""
    return UploadQueue(conn, rank=ranker(station))
