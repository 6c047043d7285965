"""Retention (保管期限): how long each clip must be kept, from the cases that hold it.

A clip that no case holds takes ``[retention] unlinked``, counted from its ingest. A
clip a case holds takes that case's retention category — the case's ``retention``
field, else its ``category`` — looked up in ``[retention.categories]`` (a name not
there, or a number with no case record: ``uncategorised``), counted from the case's
closing; while the case is open there is no date yet: the clip is kept. A clip held by
several cases takes the longest (no date beats any date).

:func:`retention_of` is what purge and Object Lock (the delivery issue) ask; nothing is
purged here. ``clip_retention`` rows are the retention last computed (by
``evidock retention``), for SQL readers; they are derived, not evidence, so a change of
one writes no leaf: every input (links, case records and their closing, the config's
digest at boot) is in the ledger already, and a purge records what it relied on.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.database import transaction
from agent.errors import EvidockError
from agent.sensitivity import case_holdings, cases_holding
from config.common import iso_utc, utc_now
from config.policy import RetentionSection, keep_until
from ledger import Ledger


class RetentionError(EvidockError):
    """A retention question about a clip this station does not hold."""


@dataclass(frozen=True)
class ClipRetention:
    clip_id: str
    category: str  # "unlinked", a key of [retention.categories], or "uncategorised"
    keep_until: datetime | None  # None: no date (permanent, or its case is still open)
    decided_by: str | None  # the case number that gave the longest; None when unlinked
    period: str  # "90d", "2y", "permanent"...
    note: str  # why there is no date, or from when the period counts

    def as_json(self) -> dict[str, str | None]:
        return {
            "clip_id": self.clip_id,
            "category": self.category,
            "keep_until": None if self.keep_until is None else iso_utc(self.keep_until),
            "decided_by": self.decided_by,
            "period": self.period,
            "note": self.note,
        }


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _for_case(
    conn: sqlite3.Connection, policy: RetentionSection, clip_id: str, ingested: datetime, n: str
) -> ClipRetention:
    row = conn.execute(
        "SELECT category, retention, closed_at FROM cases WHERE case_number = ?", (n,)
    ).fetchone()
    if row is None:
        category, period = "uncategorised", policy.uncategorised
        return ClipRetention(
            clip_id, category, None, n, period, f"case {n} has no case record: kept"
        )
    case_category, case_retention, closed_at = row
    category, period = policy.period_of(case_retention or case_category)
    if closed_at is None:
        return ClipRetention(clip_id, category, None, n, period, f"case {n} is open: kept")
    base = max(ingested, _time(str(closed_at)))
    until = keep_until(base, period)
    note = "permanent" if until is None else f"counted from the closing of case {n}"
    return ClipRetention(clip_id, category, until, n, period, note)


def _longest(found: list[ClipRetention]) -> ClipRetention:
    # No date is longer than any date; on a tie the first (by case number) stays.
    undated = [r for r in found if r.keep_until is None]
    if undated:
        return undated[0]
    return max(found, key=lambda r: r.keep_until or datetime.min.replace(tzinfo=UTC))


def _retention(
    conn: sqlite3.Connection,
    policy: RetentionSection,
    clip_id: str,
    ingested_at: str,
    numbers: list[str],
) -> ClipRetention:
    ingested = _time(ingested_at)
    if not numbers:
        until = keep_until(ingested, policy.unlinked)
        note = "permanent" if until is None else "counted from its ingest"
        return ClipRetention(clip_id, "unlinked", until, None, policy.unlinked, note)
    return _longest([_for_case(conn, policy, clip_id, ingested, n) for n in sorted(numbers)])


def _reader(conn: sqlite3.Connection) -> Ledger:
    row = conn.execute("SELECT data FROM ledger_leaves ORDER BY idx LIMIT 1").fetchone()
    station = json.loads(bytes(row[0])).get("station") if row is not None else None
    # Only reads: the station id matters to appends alone.
    return Ledger(conn, station if isinstance(station, str) and station else "reader")


def clip_retention(
    conn: sqlite3.Connection, clip_id: str, policy: RetentionSection, ledger: Ledger | None = None
) -> ClipRetention:
    """The clip's retention now, with where it comes from."""
    row = conn.execute("SELECT ingested_at FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()
    if row is None:
        raise RetentionError(f"no clip {clip_id} on this station: see `evidock retention`")
    numbers = cases_holding(ledger or _reader(conn), clip_id)
    return _retention(conn, policy, clip_id, str(row[0]), numbers)


def retention_of(
    conn: sqlite3.Connection, clip_id: str, policy: RetentionSection
) -> tuple[str, datetime | None]:
    """(retention category, keep until) of a clip, computed afresh: what purge and
    Object Lock ask. ``None``: no date — keep it (permanent, or a case still open).
    ``policy`` is the station's ``config.retention``."""
    found = clip_retention(conn, clip_id, policy)
    return found.category, found.keep_until


def all_retentions(
    conn: sqlite3.Connection, ledger: Ledger, policy: RetentionSection
) -> list[ClipRetention]:
    """Every clip's retention, in ingest order (one replay of every case's links)."""
    held = case_holdings(ledger)
    rows = conn.execute("SELECT clip_id, ingested_at FROM clips ORDER BY leaf_index")
    return [_retention(conn, policy, str(c), str(at), held.get(str(c), [])) for c, at in rows]


def record_retentions(
    conn: sqlite3.Connection, ledger: Ledger, policy: RetentionSection
) -> tuple[str, list[ClipRetention]]:
    """Compute every clip's retention and keep it in ``clip_retention``; returns when."""
    found = all_retentions(conn, ledger, policy)
    now = iso_utc(utc_now())
    with transaction(conn):
        conn.executemany(
            "INSERT INTO clip_retention (clip_id, category, keep_until, decided_by,"
            " computed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (clip_id) DO UPDATE SET"
            " category = excluded.category, keep_until = excluded.keep_until,"
            " decided_by = excluded.decided_by, computed_at = excluded.computed_at",
            [(r.clip_id, r.category, r.as_json()["keep_until"], r.decided_by, now) for r in found],
        )
    return now, found


def retention_json(computed_at: str, found: list[ClipRetention]) -> str:
    return json.dumps(
        {"computed_at": computed_at, "clips": [r.as_json() for r in found]},
        ensure_ascii=False,
        indent=1,
    )
