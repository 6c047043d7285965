"""The phase of a docking session, as a person at the station follows it:

``copying`` → ``verified`` (every copy re-read and in the ledger) → ``delivered`` (central
storage confirmed every clip) → ``safe`` (the recorder may be taken: its footage is safe by
the station's wipe policy) → ``wiped`` → ``removed``; or ``incomplete`` with its reason.

The detector's own states (detected, mounted) come before a session exists and are shown
from the detector. A session with nothing to copy is safe as soon as it closes.
"""

from __future__ import annotations

import sqlite3

from config.common import transaction

PHASES = ("copying", "verified", "delivered", "safe", "wiped", "removed", "incomplete")


def advance_phases(conn: sqlite3.Connection, wipe_policy: str) -> list[tuple[str, str]]:
    """Move closed sessions forward as their clips are confirmed centrally; returns the
    (session id, new phase) pairs that changed."""
    changed: list[tuple[str, str]] = []
    with transaction(conn):
        rows = conn.execute(
            "SELECT session_id, phase FROM docking_sessions"
            " WHERE state = 'closed' AND phase IN ('verified', 'delivered')"
        ).fetchall()
        for row in rows:
            waiting = conn.execute(
                "SELECT count(*) FROM sightings g WHERE g.session_id = ? AND NOT EXISTS ("
                " SELECT 1 FROM upload_jobs j WHERE j.clip_id = g.clip_id AND j.state = 'done')",
                (row["session_id"],),
            ).fetchone()[0]
            # Delivered (every clip confirmed centrally) is safe under every policy;
            # "after_verified" makes a verified session safe already.
            safe = waiting == 0 or wipe_policy == "after_verified"
            phase = "safe" if safe else "verified"
            if phase != row["phase"]:
                conn.execute(
                    "UPDATE docking_sessions SET phase = ? WHERE session_id = ?",
                    (phase, row["session_id"]),
                )
                changed.append((str(row["session_id"]), phase))
    return changed
