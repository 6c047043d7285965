"""Incident feeds: imported on record, matched to the clips of their officer.

An import is one ``incident.imported`` leaf (the feed's name and SHA-256, its new
incidents, its rejected lines with their line numbers), written in the transaction that
adds the ``incidents`` rows. An incident already on the station (same case, officer,
start and end) is not added again; a feed with nothing new and nothing rejected writes
no leaf.

Matching: a clip's capture window (agent.clip_facts) is compared with the incidents of
its collector (the docking's officer). Incidents whose time, widened by ``slack_s`` on
both sides, overlaps the window (touching counts; a photo is an instant) name the cases
the clip may belong to:

- one case: the clip is linked to it through agent.cases' link, reason
  ``incident feed (incident.imported leaf N, line L)``, so its elements show the source;
- two or more cases: nothing is linked; the clip goes on the review list (``ambiguous``);
- none, but an incident within ``close_s``: the review list (``close``);
- an officer with no incident: nothing is linked, nothing flagged.

A clip a person unlinked from a case is never linked to it again by the feed. A clip
the recorder marked important (``important`` in its ``clip.ingested`` leaf) and in no
case yet is on the review list too, with high priority, for tagging.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from agent.cases import link
from agent.clip_facts import ClipFacts, parse_moment
from agent.clock import iso, utc_now
from agent.database import transaction
from agent.incident_feed import Feed
from config.case_numbers import fold_case_number
from ledger import Ledger

DEFAULT_SLACK_S: Final = 120
DEFAULT_CLOSE_S: Final = 1800
REASON: Final = "incident feed"


@dataclass(frozen=True)
class StoredIncident:
    id: int
    case_number: str
    officer: str
    start: datetime
    end: datetime
    subject: str | None
    line: int
    leaf_index: int


@dataclass
class ImportResult:
    leaf_index: int | None
    added: int
    known: int
    rejected: list[dict[str, Any]]


@dataclass
class MatchResult:
    linked: list[tuple[str, str]] = field(default_factory=list)  # (clip, case)
    reviews: list[tuple[str, str, list[str]]] = field(default_factory=list)  # new ones
    already: int = 0  # single matches already linked (or refused by a person's unlink)


def import_feed(
    conn: sqlite3.Connection, ledger: Ledger, feed: Feed, *, by: str | None
) -> ImportResult:
    """Put the feed's new incidents on record: one leaf and their rows, one transaction."""
    with transaction(conn):
        new = [
            i
            for i in feed.incidents
            if conn.execute(
                "SELECT 1 FROM incidents WHERE case_number = ? AND officer = ? AND starts = ?"
                " AND ends = ?",
                (i.case_number, i.officer, i.as_leaf()["start"], i.as_leaf()["end"]),
            ).fetchone()
            is None
        ]
        # The same incident twice in one feed is one incident.
        unique = list({(i.case_number, i.officer, i.start, i.end): i for i in new}.values())
        rejected = [r.as_leaf() for r in feed.rejected]
        if not unique and not rejected:
            return ImportResult(None, 0, len(feed.incidents), [])
        leaf = ledger.append(
            "incident.imported",
            {
                "source": feed.source,
                "file_sha256": hashlib.sha256(feed.data).hexdigest(),
                "incidents": [i.as_leaf() for i in unique],
                "rejected": rejected,
                "by": by,
            },
        )
        for i in unique:
            body = i.as_leaf()
            conn.execute(
                "INSERT INTO incidents (case_number, case_number_typed, officer, starts, ends,"
                " subject, category, unit, source, line, leaf_index)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    i.case_number, i.case_number_typed, i.officer, body["start"], body["end"],
                    i.subject, i.category, i.unit, feed.source, i.line, leaf.index,
                ),
            )  # fmt: skip
    return ImportResult(leaf.index, len(unique), len(feed.incidents) - len(unique), rejected)


def stored_incidents(conn: sqlite3.Connection) -> dict[str, list[StoredIncident]]:
    """Officer -> their incidents, by start."""
    found: dict[str, list[StoredIncident]] = {}
    for row in conn.execute("SELECT * FROM incidents ORDER BY starts, id"):
        start = parse_moment(row["starts"], UTC)
        end = parse_moment(row["ends"], UTC)
        assert start is not None and end is not None
        found.setdefault(row["officer"], []).append(
            StoredIncident(
                row["id"],
                row["case_number"],
                row["officer"],
                start,
                end,
                row["subject"],
                row["line"],
                row["leaf_index"],
            )
        )
    return found


def _near(clip: ClipFacts, incident: StoredIncident, seconds: float) -> bool:
    assert clip.start is not None and clip.end is not None
    widen = timedelta(seconds=seconds)
    return clip.start <= incident.end + widen and clip.end >= incident.start - widen


def _unlinked_by_person(conn: sqlite3.Connection, clip_id: str, case_number: str) -> bool:
    rows = conn.execute(
        "SELECT case_number FROM case_links WHERE clip_id = ? AND linked = 0", (clip_id,)
    )
    return any(fold_case_number(str(row[0])) == case_number for row in rows)


def match_incidents(
    conn: sqlite3.Connection,
    ledger: Ledger,
    clips: list[ClipFacts],
    *,
    slack_s: float = DEFAULT_SLACK_S,
    close_s: float = DEFAULT_CLOSE_S,
) -> MatchResult:
    """Link each clip whose window meets exactly one case's incidents of its officer;
    put the ambiguous and the close ones on the review list (see the module docstring)."""
    result = MatchResult()
    incidents = stored_incidents(conn)
    last_import = conn.execute("SELECT max(leaf_index) FROM incidents").fetchone()[0]
    for clip in clips:
        theirs = incidents.get(clip.officer or "")
        if not theirs or clip.start is None or clip.end is None:
            continue
        hits = [i for i in theirs if _near(clip, i, slack_s)]
        cases = sorted({i.case_number for i in hits})
        if len(cases) == 1:
            number = cases[0]
            if number in clip.links or _unlinked_by_person(conn, clip.clip_id, number):
                result.already += 1
                continue
            first = hits[0]
            made = link(
                conn,
                ledger,
                number,
                clip_id=clip.clip_id,
                reason=f"{REASON} (incident.imported leaf {first.leaf_index}, line {first.line})",
                rule=None,  # checked against the rule when the feed was read
            )
            if made.leaf_index is None:
                result.already += 1
            else:
                clip.links[number] = ledger.leaf(made.leaf_index)
                result.linked.append((clip.clip_id, number))
            continue
        reason = "ambiguous"
        if not cases:
            reason = "close"
            cases = sorted({i.case_number for i in theirs if _near(clip, i, close_s)})
        if not cases or set(cases) & clip.links.keys():
            continue  # nothing near, or a person already chose among them
        if _add_review(conn, clip.clip_id, reason, cases, last_import):
            result.reviews.append((clip.clip_id, reason, cases))
    return result


def _add_review(
    conn: sqlite3.Connection, clip_id: str, reason: str, cases: list[str], import_leaf: int
) -> bool:
    with transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO link_reviews (clip_id, reason, candidates, at, import_leaf)"
            " VALUES (?, ?, ?, ?, ?)",
            (clip_id, reason, json.dumps(cases, ensure_ascii=False), iso(utc_now()), import_leaf),
        )
    return cursor.rowcount == 1


@dataclass(frozen=True)
class ReviewItem:
    clip: ClipFacts
    reason: str  # ambiguous, close, important
    candidates: list[str]
    priority: str  # high (the recorder's important mark) or normal

    def as_json(self) -> dict[str, Any]:
        clip = self.clip
        return {
            "clip_id": clip.clip_id,
            "officer": clip.officer,
            "recorder": clip.recorder,
            "start": clip.start.isoformat() if clip.start else None,
            "end": clip.end.isoformat() if clip.end else None,
            "reason": self.reason,
            "candidates": self.candidates,
            "priority": self.priority,
            "important": clip.important,
        }


def review_list(conn: sqlite3.Connection, clips: list[ClipFacts]) -> list[ReviewItem]:
    """What a person must decide: ambiguous and close matches of clips still in no
    case, and important clips in no case; important first, then by time."""
    by_id = {clip.clip_id: clip for clip in clips}
    items: list[ReviewItem] = []
    listed: set[str] = set()
    for row in conn.execute("SELECT clip_id, reason, candidates FROM link_reviews ORDER BY id"):
        clip = by_id.get(row["clip_id"])
        if clip is None or clip.links:
            continue  # decided: a person linked it
        priority = "high" if clip.important else "normal"
        items.append(ReviewItem(clip, row["reason"], json.loads(row["candidates"]), priority))
        listed.add(clip.clip_id)
    for clip in clips:
        if clip.important and not clip.links and clip.clip_id not in listed:
            items.append(ReviewItem(clip, "important", [], "high"))
    far = datetime.max.replace(tzinfo=UTC)
    items.sort(key=lambda i: (i.priority != "high", i.clip.start or far, i.clip.clip_id))
    return items
