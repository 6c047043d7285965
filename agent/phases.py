"""The phase of a docking session, as a person at the station follows it, and when each
step happened (the officer's wait at shift change, per recorder):

``copying`` → ``verified`` (every copy re-read and in the ledger) → ``delivered`` (central
storage confirmed every clip) → ``safe`` (the recorder may be taken: its footage is safe by
the station's wipe policy) → ``wiped`` → ``removed``; or ``incomplete`` with its reason.

The moments kept in the session row: docked (``opened_at``), verified (``closed_at`` of a
closed session), delivered (``delivered_at``: when central storage confirmed the last of
its clips, from ``upload_jobs.done_at``; never before it was verified), safe (``safe_at``:
when the station said so); wiped is the first ``wiped_files.wiped_at`` of the session. The
view ``session_times`` gives each moment and the seconds from docking to it.

Delivery makes a session safe under every policy: under ``after_central_confirmed`` that
is the rule; ``never`` is the strictest policy (nothing is ever wiped by the station), so
its recorders are safe no sooner than that, and no later either: once central storage
holds every clip, nothing more the station could do would make the footage safer, and an
officer must not wait for a wipe that never comes. Under ``after_verified`` a session is
safe once verified and its delivery is recorded when it comes, whatever its phase by then.
So with these policies ``delivered`` is a moment, not a phase a session stays in.

The detector's own states (detected, mounted) come before a session exists and are shown
from the detector. A session with nothing to copy is safe as soon as it closes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from config.common import iso_utc, transaction, utc_now

PHASES = ("copying", "verified", "delivered", "safe", "wiped", "removed", "incomplete")


def advance_phases(
    conn: sqlite3.Connection, wipe_policy: str, *, clock: Callable[[], datetime] = utc_now
) -> list[tuple[str, str]]:
    """Record the delivery of closed sessions whose clips are now all confirmed centrally
    and move those the wipe policy makes safe to ``safe``; returns the (session id, new
    phase) pairs that changed."""
    changed: list[tuple[str, str]] = []
    with transaction(conn):
        now = iso_utc(clock())
        rows = conn.execute(
            "SELECT session_id, phase, closed_at, delivered_at FROM docking_sessions"
            " WHERE state = 'closed'"
            " AND (delivered_at IS NULL OR phase IN ('verified', 'delivered'))"
        ).fetchall()
        for row in rows:
            session_id, verified = str(row["session_id"]), str(row["closed_at"])
            delivered: str | None = row["delivered_at"]
            if delivered is None:
                delivered = _delivered_at(conn, session_id, verified, now)
                if delivered is not None:
                    conn.execute(
                        "UPDATE docking_sessions SET delivered_at = ? WHERE session_id = ?",
                        (delivered, session_id),
                    )
            if row["phase"] not in ("verified", "delivered"):
                continue  # safe, wiped or removed already: only its delivery was news
            if wipe_policy == "after_verified":
                became = verified
            elif delivered is not None:
                became = delivered
            else:
                continue
            # Stored times are iso_utc text of one width, so text order is time order.
            conn.execute(
                "UPDATE docking_sessions SET phase = 'safe', safe_at = ? WHERE session_id = ?",
                (max(now, became), session_id),
            )
            changed.append((session_id, "safe"))
    return changed


def _delivered_at(conn: sqlite3.Connection, session_id: str, verified: str, now: str) -> str | None:
    """When central storage confirmed the last of the session's clips (a clip's first
    confirmation; ``now`` for a job done without its time), never before the session was
    verified (clips it saw again may have been delivered long before); None while any
    clip waits."""
    row = conn.execute(
        "SELECT count(*), count(done), max(done) FROM ("
        " SELECT (SELECT min(coalesce(j.done_at, ?)) FROM upload_jobs j"
        "  WHERE j.clip_id = g.clip_id AND j.state = 'done') AS done"
        " FROM (SELECT DISTINCT clip_id FROM sightings WHERE session_id = ?) g)",
        (now, session_id),
    ).fetchone()
    clips, confirmed, last = int(row[0]), int(row[1]), row[2]
    if confirmed < clips:
        return None
    return verified if last is None else max(str(last), verified)
