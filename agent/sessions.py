"""Who holds a docking session open, and closing on record the sessions nobody holds.

A session row carries its owner: the boot id, pid and start time of the process that
opened it. A session whose owner is gone (killed with ``kill -9``, crashed, the station
rebooted) is closed as ``incomplete`` by the next command that opens the station for
writing, with a ``docking.closed`` leaf; one whose owner still runs is left alone, so a
daemon starting beside a running ``evidock ingest`` does not close that ingest's session.
"""

from __future__ import annotations

import json
import os
import sqlite3
from functools import cache
from pathlib import Path

from agent.clock import iso, utc_now
from agent.database import transaction
from agent.errors import SourceError
from agent.outcomes import SessionReport
from docking import RecorderVolume
from hashing import EvidenceStore
from ledger import Ledger

INTERRUPTED = "the station stopped before this docking session closed; dock the recorder again"
_PROC = Path("/proc")


@cache
def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def current_owner() -> str:
    pid = os.getpid()
    return f"{_boot_id()}/{pid}/{_start_time(pid) or '?'}"


def owner_alive(owner: str | None) -> bool:
    if not owner:
        return False  # sessions opened before owners were recorded
    boot, _, rest = owner.partition("/")
    pid_text, _, start = rest.partition("/")
    if boot != _boot_id() or not pid_text.isdigit():
        return False
    found = _start_time(int(pid_text))
    return found is not None and found == start


def close_orphaned_sessions(
    conn: sqlite3.Connection,
    ledger: Ledger,
    store: EvidenceStore | None = None,
    *,
    reason: str = INTERRUPTED,
) -> list[str]:
    """Close, on record, every open session whose process is gone; return their ids.

    Their committed clips stay committed; files not yet copied are still on the
    recorder (nothing is wiped before its session closes), so docking it again finishes
    the work, resuming partial copies. When no live session remains, copies such a
    process committed to the store without their ledger leaf are set aside (kept, out of
    the audited evidence) and named in the closing leaf.
    """
    closed: list[str] = []
    with transaction(conn):
        rows = conn.execute(
            "SELECT session_id, owner FROM docking_sessions WHERE state = 'open' ORDER BY opened_at"
        ).fetchall()
        gone = [row["session_id"] for row in rows if not owner_alive(row["owner"])]
        if not gone:
            return []
        live = len(rows) > len(gone)
        set_aside = [] if live or store is None else _set_aside_orphans(conn, store)
        for session_id in gone:
            problems = [{"path": "", "reason": reason}]
            if session_id == gone[0]:
                problems += [
                    {
                        "path": str(path.relative_to(store.root)) if store else str(path),
                        "reason": "a copy committed without its ledger leaf by the stopped "
                        "process; set aside, the recorder still holds the file",
                    }
                    for path in set_aside
                ]
            close_incomplete(conn, ledger, session_id, problems)
            closed.append(session_id)
    return closed


def _set_aside_orphans(conn: sqlite3.Connection, store: EvidenceStore) -> list[Path]:
    known = {str(row[0]) for row in conn.execute("SELECT sha256 FROM clips")}
    moved: list[Path] = []
    for name, _path in list(store.iter_objects()):
        if name in known or len(name) != 64:
            continue  # wrong names are the auditor's business, not a crash's
        try:
            target = store.set_aside(name)
        except (OSError, ValueError):
            continue
        if target is not None:
            moved.append(target)
    return moved


def close_incomplete(
    conn: sqlite3.Connection, ledger: Ledger, session_id: str, problems: list[dict[str, str]]
) -> None:
    """Close one open session as incomplete (inside the caller's transaction)."""
    clips = conn.execute(
        "SELECT count(*) FROM sightings WHERE session_id = ?", (session_id,)
    ).fetchone()[0]
    leaf = ledger.append(
        "docking.closed", {"session_id": session_id, "clips": clips, "problems": problems}
    )
    conn.execute(
        "UPDATE docking_sessions SET state = 'incomplete', phase = 'incomplete', closed_at = ?,"
        " problems = ?, closed_leaf = ? WHERE session_id = ? AND state = 'open'",
        (iso(utc_now()), json.dumps(problems, ensure_ascii=False), leaf.index, session_id),
    )


def open_session(
    conn: sqlite3.Connection, led: Ledger, report: SessionReport, volume: RecorderVolume
) -> None:
    """Put a docking session on record: ``docking.opened`` and its row, in one transaction.

    Two recorders reporting one serial are two devices, never one: the second is refused
    while the first one's session is open (checked under the write lock)."""
    serial, officer = report.recorder, report.officer
    now = iso(utc_now())
    with transaction(conn):
        other = conn.execute(
            "SELECT session_id, volume, slot FROM docking_sessions"
            " WHERE recorder = ? AND state = 'open' AND volume != ?",
            (serial, report.source),
        ).fetchone()
        if other is not None:
            where = f"slot {other['slot']}" if other["slot"] else other["volume"]
            raise SourceError(
                f"recorder serial {serial} is already docked at {where} (session "
                f"{other['session_id']}): two recorders reporting one serial are not "
                "merged; take this one out and have its serial checked"
            )
        conn.execute(
            "INSERT INTO recorders (serial, model, serial_source, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET last_seen = ?",
            (serial, volume.model, volume.serial_source, now, now, now),
        )
        opened = led.append(
            "docking.opened",
            {
                "session_id": report.session_id,
                "recorder": serial,
                "volume": report.source,
                "officer": officer,
                "officer_source": report.officer_source,
                "recorder_model": volume.model,
                "slot": report.slot,
                "usb": report.usb,
                "recorder_clock": {
                    "time": report.recorder_clock,
                    "method": report.clock_method,
                    "offset_ms": report.clock_offset_ms,
                },
            },
        )
        conn.execute(
            "INSERT INTO docking_sessions (session_id, recorder, volume, officer,"
            " opened_at, state, files, opened_leaf, owner, slot, usb_port, phase,"
            " clock_offset_ms, officer_source)"
            " VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, 'copying', ?, ?)",
            (
                report.session_id,
                serial,
                report.source,
                officer,
                now,
                0,
                opened.index,
                current_owner(),
                report.slot,
                (report.usb or {}).get("port_path"),
                report.clock_offset_ms,
                report.officer_source,
            ),
        )


def close_session(conn: sqlite3.Connection, led: Ledger, report: SessionReport) -> None:
    """Close a session on record: ``docking.closed`` and its row (``verified`` when every
    file is safe, else ``incomplete`` with its problems)."""
    problems = [{"path": p.source_path, "reason": p.reason} for p in report.problems]
    with transaction(conn):
        closed = led.append(
            "docking.closed",
            {
                "session_id": report.session_id,
                "clips": report.count("new") + report.count("seen"),
                "problems": problems,
            },
        )
        conn.execute(
            "UPDATE docking_sessions SET closed_at = ?, state = ?, clips_new = ?,"
            " clips_seen = ?, problems = ?, closed_leaf = ?, phase = ?"
            " WHERE session_id = ?",
            (
                iso(utc_now()),
                "closed" if report.ok else "incomplete",
                report.count("new"),
                report.count("seen"),
                json.dumps(problems, ensure_ascii=False),
                closed.index,
                "verified" if report.ok else "incomplete",
                report.session_id,
            ),
        )
