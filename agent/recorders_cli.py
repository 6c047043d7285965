"""`evidock recorders`, `evidock sessions` and `evidock assign`: what a person at the
station asks (which recorder, which slot, whose, how far along) and officer assignment.

``recorders``, ``sessions`` and ``assign --list`` only read: they open the station
database read-only (as ``verify`` does), so an auditor without write access may run them
on a readable data dir, and they never change the station. ``register(subparsers)`` adds
the three commands to the evidock CLI; ``recorder_rows`` and ``session_rows`` are the
same facts for the API.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sqlite3
import textwrap
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import assignments
from agent.assignments import Assignment, AssignmentError, Outcome
from agent.clock import iso, utc_now
from agent.database import DB_NAME, open_readonly
from agent.station_args import UsageError, add_station_options, open_station, sign, station_data_dir
from config.common import printable

WIDTH = 79  # a line never reaches an 80-column terminal's last column


# -- reading the station ---------------------------------------------------------------


def open_catalogue(args: argparse.Namespace) -> sqlite3.Connection:
    """The station database, read-only, of the station a command names."""
    conn = open_readonly(station_data_dir(args) / DB_NAME)
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(docking_sessions)")}
    tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
    if "phase" not in columns or "officer_assignments" not in tables:
        conn.close()
        raise UsageError(
            "this station's database predates slots and officer assignments: run any "
            "command that writes to it (e.g. `evidock deliver`) or the daemon once to update it"
        )
    return conn


def _problems(text: str | None) -> list[dict[str, Any]]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _reason(problems: list[dict[str, Any]]) -> str | None:
    """Why a session is incomplete, in one sentence: its first problem, and how many."""
    if not problems:
        return None
    first = problems[0]
    path, why = str(first.get("path") or ""), str(first.get("reason") or "no reason recorded")
    text = f"{path}: {why}" if path else why
    return text if len(problems) == 1 else f"{len(problems)} problems; first: {text}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _amount(done: int, total: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if total >= scale:
            return f"{done / scale:.1f}/{total / scale:.1f} {unit}"
    return f"{done}/{total} B"


def _phase(row: sqlite3.Row) -> str:
    if row["state"] == "incomplete":
        return "incomplete"
    if row["state"] == "closed" and row["phase"] in ("detected", "mounted", "copying"):
        return "closed"  # closed before the station tracked phases
    return str(row["phase"])


def _progress(row: sqlite3.Row, phase: str) -> str:
    """``copying 4/9 files, 1.2/3.4 GB`` while copying; what was done, after."""
    files, done = int(row["files"]), int(row["files_done"])
    total, copied = int(row["bytes_total"]), int(row["bytes_done"])
    if row["state"] != "open" and done == 0:
        done = int(row["clips_new"]) + int(row["clips_seen"])  # before progress was kept
    if row["state"] == "closed" and files == 0:
        return "nothing to copy"
    text = f"{done}/{files} files"
    if total:
        text += f", {_amount(copied, total)}" if done < files else f", {_size(total)}"
    return f"{phase} {text}" if phase == "copying" else text


def session_rows(conn: sqlite3.Connection, *, active: bool = False) -> list[dict[str, Any]]:
    """Every docking session (``active``: the open ones), newest first."""
    where = "WHERE state = 'open'" if active else ""
    rows = conn.execute(
        f"SELECT * FROM docking_sessions {where} ORDER BY opened_at DESC, session_id DESC"
    ).fetchall()
    found = []
    for row in rows:
        phase = _phase(row)
        found.append(
            {
                "session_id": row["session_id"],
                "recorder": row["recorder"],
                "slot": row["slot"],
                "usb_port": row["usb_port"],
                "officer": row["officer"],
                "officer_source": row["officer_source"],
                "state": row["state"],
                "phase": phase,
                "reason": _reason(_problems(row["problems"])) if phase == "incomplete" else None,
                "files": row["files"],
                "files_done": row["files_done"],
                "bytes_total": row["bytes_total"],
                "bytes_done": row["bytes_done"],
                "progress": _progress(row, phase),
                "opened_at": row["opened_at"],
                "closed_at": row["closed_at"],
            }
        )
    return found


def _device_officer(conn: sqlite3.Connection, serial: str) -> str | None:
    """What the recorder's device-info last said about its officer, if anything."""
    row = conn.execute(
        "SELECT officer FROM officer_assignments WHERE recorder = ? AND valid_to IS NULL"
        " AND source = 'device-info' ORDER BY valid_from DESC LIMIT 1",
        (serial,),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT officer FROM docking_sessions WHERE recorder = ?"
            " AND officer_source = 'device-info' ORDER BY opened_at DESC LIMIT 1",
            (serial,),
        ).fetchone()
    return None if row is None else row["officer"]


def recorder_rows(conn: sqlite3.Connection, now: str | None = None) -> list[dict[str, Any]]:
    """Every recorder seen, with the officer it would be collected for now."""
    now = now or iso(utc_now())
    found = []
    for row in conn.execute("SELECT * FROM recorders ORDER BY serial").fetchall():
        serial = str(row["serial"])
        officer, source = assignments.collector_for(
            conn,
            serial,
            now,
            device_officer=_device_officer(conn, serial),
            cli_officer=None,
        )
        last = conn.execute(
            "SELECT * FROM docking_sessions WHERE recorder = ?"
            " ORDER BY opened_at DESC, session_id DESC LIMIT 1",
            (serial,),
        ).fetchone()
        found.append(
            {
                "serial": serial,
                "model": row["model"],
                "serial_source": row["serial_source"],
                "officer": officer,
                "officer_source": source,
                "slot": None if last is None else last["slot"],
                "last_session": None if last is None else last["session_id"],
                "last_phase": None if last is None else _phase(last),
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
            }
        )
    return found


# -- printing ------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header: Sequence[str], rows: Sequence[tuple[Sequence[str], Sequence[str]]]) -> str:
    """Plain columns; each row may carry indented detail lines, wrapped to fit."""
    cells = [[printable(c) for c in cols] for cols, _ in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(header)]
    details: list[Sequence[str]] = [(), *(detail for _, detail in rows)]
    lines = []
    for cols, detail in zip([list(header), *cells], details, strict=True):
        padded = [c + " " * (w - _width(c)) for c, w in zip(cols, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
        for text in detail:
            lines += textwrap.wrap(
                printable(text), WIDTH, initial_indent="  ", subsequent_indent="    "
            )
    return "\n".join(lines)


def _when(stamp: str | None) -> str:
    """``2026-11-22T08:30:15.123456Z`` as ``2026-11-22 08:30:15Z``."""
    return "-" if not stamp else f"{stamp[:10]} {stamp[11:19]}Z"


def _officer(officer: str | None, source: str | None) -> str:
    if officer is None:
        return "none (flagged)"
    return f"{officer} ({source})" if source else officer


def _recorders_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no recorder has been docked at this station yet"
    table = []
    for r in rows:
        last = "never docked"
        if r["last_session"]:
            last = f"last session {r['last_session']}: {r['last_phase']}"
        detail = (last, f"first seen {_when(r['first_seen'])}, last {_when(r['last_seen'])}")
        cols = (r["serial"], r["model"] or "-", _officer(r["officer"], r["officer_source"]))
        table.append(((*cols, r["slot"] or "-"), detail))
    return _table(("RECORDER", "MODEL", "OFFICER NOW (SOURCE)", "SLOT"), table)


def _sessions_text(rows: list[dict[str, Any]], active: bool) -> str:
    if not rows:
        return "no docking session is open" if active else "no docking session yet"
    table = []
    for s in rows:
        times = f"{s['progress']}; opened {_when(s['opened_at'])}"
        if s["closed_at"]:
            times += f", closed {_when(s['closed_at'])}"
        detail = [times] + ([f"incomplete: {s['reason']}"] if s["reason"] else [])
        cols = (s["session_id"], s["slot"] or "-", s["recorder"])
        table.append(((*cols, _officer(s["officer"], s["officer_source"]), s["phase"]), detail))
    return _table(("SESSION", "SLOT", "RECORDER", "OFFICER (SOURCE)", "PHASE"), table)


def _history_text(rows: list[Assignment]) -> str:
    if not rows:
        return "no officer assignments yet: set one with `evidock assign SERIAL OFFICER`"
    table = [
        ((a.recorder, a.officer, _when(a.valid_from), _when(a.valid_to), a.set_by, a.source), ())
        for a in rows
    ]
    return _table(("RECORDER", "OFFICER", "FROM", "TO", "SET BY", "SOURCE"), table)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1))


# -- the commands ----------------------------------------------------------------------


def cmd_recorders(args: argparse.Namespace) -> int:
    conn = open_catalogue(args)
    try:
        rows = recorder_rows(conn)
    finally:
        conn.close()
    if args.json:
        _print_json({"recorders": rows})
    else:
        print(_recorders_text(rows))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    conn = open_catalogue(args)
    try:
        rows = session_rows(conn, active=args.active)
    finally:
        conn.close()
    if args.json:
        _print_json({"sessions": rows})
    else:
        print(_sessions_text(rows, args.active))
    return 0


def _local_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _check_assign_args(args: argparse.Namespace) -> str:
    """Which form of `evidock assign` was given: "list", "import" or "set"."""
    if args.list:
        if args.officer or args.import_file or args.valid_from or args.by:
            raise UsageError("--list takes only an optional SERIAL: evidock assign --list [SERIAL]")
        return "list"
    if args.import_file:
        if args.serial or args.officer or args.valid_from:
            raise UsageError(
                "--import takes the file only (valid_from goes in its third column): "
                "evidock assign --import FILE.csv --by WHO"
            )
        if not args.by:
            raise UsageError("say who imports the assignments: --by WHO")
        return "import"
    if not args.serial or not args.officer:
        raise UsageError(
            "give the recorder and its officer: evidock assign SERIAL OFFICER "
            "(or --import FILE.csv --by WHO, or --list)"
        )
    return "set"


def _made_text(outcome: Outcome, seen: set[str]) -> list[str]:
    lines = []
    for a in outcome.made:
        note = "" if a.recorder in seen else "; not docked at this station yet"
        lines.append(
            f"recorder {printable(a.recorder)} assigned to {printable(a.officer)} from "
            f"{_when(a.valid_from)} (ledger leaf {a.leaf_index}{note})"
        )
    for a in outcome.unchanged:
        lines.append(
            f"recorder {printable(a.recorder)} is already assigned to {printable(a.officer)} "
            f"(since {_when(a.valid_from)}): nothing recorded"
        )
    return lines


def cmd_assign(args: argparse.Namespace) -> int:
    form = _check_assign_args(args)
    if form == "list":
        conn = open_catalogue(args)
        try:
            rows = assignments.history(conn, args.serial)
        finally:
            conn.close()
        if args.json:
            _print_json({"assignments": [a.as_json() for a in rows]})
        else:
            print(_history_text(rows))
        return 0
    station = open_station(args)
    try:
        ledger = station.ledger()
        if form == "import":
            outcome = assignments.import_csv(
                station.conn, ledger, Path(args.import_file), set_by=args.by
            )
        else:
            outcome = assignments.assign(
                station.conn,
                ledger,
                args.serial,
                args.officer,
                set_by=args.by or _local_user(),
                valid_from=args.valid_from,
            )
        if outcome.made:
            sign(station)
        seen = {str(r[0]) for r in station.conn.execute("SELECT serial FROM recorders")}
    finally:
        station.close()
    if args.json:
        _print_json(
            {
                "assigned": [a.as_json() for a in outcome.made],
                "unchanged": [a.as_json() for a in outcome.unchanged],
            }
        )
    else:
        print("\n".join(_made_text(outcome, seen)))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `recorders`, `sessions` and `assign` to the evidock CLI."""
    p = subparsers.add_parser(
        "recorders", help="every recorder seen: model, officer now, last slot and session"
    )
    add_station_options(p, read_only=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_recorders)

    p = subparsers.add_parser(
        "sessions", help="docking sessions: recorder, slot, officer, phase and progress"
    )
    add_station_options(p, read_only=True)
    p.add_argument("--active", action="store_true", help="only the sessions still open")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_sessions)

    p = subparsers.add_parser(
        "assign",
        help="assign a recorder to an officer (a ledger leaf), import a CSV, or list history",
        description="Assign a recorder to the officer who carries it, from now or --from "
        "a time; the next assignment of the recorder closes this one. --import FILE.csv "
        "takes rows serial,officer[,valid_from] (header optional, UTF-8): all of them or, "
        "if any row is bad, none. --list shows the history.",
    )
    p.add_argument("serial", nargs="?", help="the recorder's serial")
    p.add_argument("officer", nargs="?", help="the officer's id (警号)")
    add_station_options(p)
    p.add_argument(
        "--from",
        dest="valid_from",
        metavar="ISO",
        help="valid from this time, with its offset (2026-11-22T08:00:00+08:00); default now",
    )
    p.add_argument("--by", help="who sets it (recorded); default: your user name")
    p.add_argument("--import", dest="import_file", metavar="FILE", help="a CSV of assignments")
    p.add_argument("--list", action="store_true", help="the assignment history [of SERIAL]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_assign)


__all__ = ["AssignmentError", "recorder_rows", "register", "session_rows"]
