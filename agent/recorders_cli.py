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
import statistics
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


# The moments of a session after docking (see agent.phases), in the order they come.
MOMENTS = ("verified", "delivered", "safe", "wiped")


def _session_times(conn: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    """Each session's moments and seconds from docking (the ``session_times`` view); none
    on a database older than the view (opened read-only, so not updated)."""
    has_view = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'session_times'"
    ).fetchone()
    if has_view is None:
        return {}
    return {str(row["session_id"]): row for row in conn.execute("SELECT * FROM session_times")}


def _moments(times: sqlite3.Row | None) -> dict[str, Any]:
    """``verified_at``... and ``seconds_to_verified``... (None: not yet, or unknown when
    ``times_recorded`` is false: the session is older than the station keeping them)."""
    found: dict[str, Any] = {"times_recorded": bool(times is not None and times["times_recorded"])}
    for moment in MOMENTS:
        found[f"{moment}_at"] = None if times is None else times[f"{moment}_at"]
    for moment in MOMENTS:
        found[f"seconds_to_{moment}"] = None if times is None else times[f"seconds_to_{moment}"]
    return found


def session_rows(conn: sqlite3.Connection, *, active: bool = False) -> list[dict[str, Any]]:
    """Every docking session (``active``: the open ones), newest first."""
    where = "WHERE state = 'open'" if active else ""
    rows = conn.execute(
        f"SELECT * FROM docking_sessions {where} ORDER BY opened_at DESC, session_id DESC"
    ).fetchall()
    times = _session_times(conn)
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
                **_moments(times.get(str(row["session_id"]))),
            }
        )
    return found


def time_to_safe(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The station's figure of these sessions: how many became safe, the median and the
    slowest time from docking to safe."""
    timed = [r for r in rows if r["seconds_to_safe"] is not None]
    slowest = max(timed, key=lambda r: float(r["seconds_to_safe"]), default=None)
    return {
        "sessions": len(timed),
        "median_seconds": statistics.median(r["seconds_to_safe"] for r in timed) if timed else None,
        "slowest_seconds": None if slowest is None else slowest["seconds_to_safe"],
        "slowest_session": None if slowest is None else slowest["session_id"],
        "slowest_slot": None if slowest is None else slowest["slot"],
    }


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


def _duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``4 min 12 s``, ``2 h 5 min``."""
    if abs(seconds) < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _times_text(s: dict[str, Any]) -> str | None:
    """``safe after 4 min 12 s (verified 1 min 3 s, delivered 4 min 10 s)``: the wait of a
    verified session's officer, from docking; None before a session is verified."""
    if s["state"] != "closed":
        return None

    def took(moment: str) -> str | None:
        seconds = s[f"seconds_to_{moment}"]
        return None if seconds is None else _duration(float(seconds))

    unknown = not s["times_recorded"]
    verified, delivered, safe, wiped = (took(m) for m in MOMENTS)
    steps = [f"verified {verified or 'unknown'}"]
    if delivered:
        steps.append(f"delivered {delivered}")
    else:
        steps.append("delivered: unknown" if unknown else "not delivered yet")
    if wiped:
        steps.append(f"wiped {wiped}")
    if safe:
        head = f"safe after {safe}"
    elif unknown:
        head = "time to safe unknown: docked before the station kept it"
    elif s["phase"] in ("verified", "delivered"):
        head = "not safe yet"
    else:
        head = "never shown safe"
    return f"{head} ({', '.join(steps)})"


def _summary_text(rows: list[dict[str, Any]]) -> str | None:
    figure = time_to_safe(rows)
    if not figure["sessions"]:
        return None
    where = f"session {figure['slowest_session']}"
    if figure["slowest_slot"]:
        where += f", slot {figure['slowest_slot']}"
    return (
        f"time to safe of the {figure['sessions']} session(s) shown that became safe: "
        f"median {_duration(float(figure['median_seconds']))}, "
        f"slowest {_duration(float(figure['slowest_seconds']))} ({where})"
    )


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
        waited = _times_text(s)
        detail += [waited] if waited else []
        cols = (s["session_id"], s["slot"] or "-", s["recorder"])
        table.append(((*cols, _officer(s["officer"], s["officer_source"]), s["phase"]), detail))
    text = _table(("SESSION", "SLOT", "RECORDER", "OFFICER (SOURCE)", "PHASE"), table)
    summary = _summary_text(rows)
    if summary:
        text += "\n" + "\n".join(textwrap.wrap(printable(summary), WIDTH))
    return text


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
        _print_json({"sessions": rows, "time_to_safe": time_to_safe(rows)})
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
        "sessions",
        help="docking sessions: recorder, slot, officer, phase, progress and time to safe",
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


__all__ = ["AssignmentError", "recorder_rows", "register", "session_rows", "time_to_safe"]
