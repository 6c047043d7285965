"""Officer assignment: which officer (the collector, 采集人) carries which recorder, with
history.

An assignment says "from ``valid_from`` on, recorder SERIAL is officer OFFICER's"; the
next assignment of that recorder closes it (``valid_to``). Every change is an
``officer.assigned`` leaf written in the same transaction as its ``officer_assignments``
row, so the catalogue can be checked against the ledger. A recorder has two lines of
history: what people assigned (``evidock assign``: source ``cli``; a CSV import:
``csv``) and what its device-info said at each docking (``device-info``); each line's
next entry closes its previous one, so a person may date an assignment back to before
the recorder was last docked, and what a recorder says never closes a person's word.

At docking, :func:`collector_for` names the collector of a session: the officer given on
the command line, else the person-made assignment valid at that time, else the officer
the recorder's device-info carries; with none of these the source is ``"none"``: the
recorder is ingested and flagged, never refused.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from agent.clock import iso, utc_now
from agent.database import transaction
from agent.errors import EvidockError
from config.common import printable
from ledger import Ledger

SOURCES: Final = ("cli", "csv", "device-info")
# Person-made assignments outrank what a recorder says about itself.
BY_PERSON: Final = ("cli", "csv")
BY_DEVICE: Final = ("device-info",)
MAX_NAME: Final = 128
MAX_CSV_BYTES: Final = 16 * 1024 * 1024
# A bad CSV names every bad line; the first ones with their reason.
DETAILED_ROWS: Final = 10


class AssignmentError(EvidockError):
    """An assignment or an import that cannot be used as given; nothing was recorded."""


@dataclass(frozen=True)
class Assignment:
    recorder: str
    officer: str
    valid_from: str
    valid_to: str | None
    set_by: str
    source: str
    leaf_index: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """One assignment to record: what :func:`assign` and :func:`import_csv` check first."""

    recorder: str
    officer: str
    valid_from: str
    line: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What a call recorded: the new assignments, and those already in force."""

    made: list[Assignment]
    unchanged: list[Assignment]


def check_name(value: str, what: str) -> str:
    """A serial, an officer id or a person's name, fit to be recorded and printed.

    Kept as typed (a serial must match what the recorder reports), without surrounding
    blanks; control and format characters are refused (they make a name that reads
    differently from what it is).
    """
    name = value.strip()
    if not name:
        raise AssignmentError(f"the {what} is empty: give it as written on the recorder's label")
    if len(name) > MAX_NAME:
        raise AssignmentError(f"the {what} is longer than {MAX_NAME} characters")
    if printable(name) != name:
        raise AssignmentError(
            f"the {what} {printable(name)!r} holds control or format characters: type it again"
        )
    return name


def check_officer(value: str) -> str:
    return unicodedata.normalize("NFC", check_name(value, "officer"))


def parse_time(value: str) -> str:
    """An ISO time with its offset (``2026-11-22T08:00:00+08:00`` or ``...Z``), as the
    station stores times; a time without an offset is refused, never guessed."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AssignmentError(
            f"{printable(text)!r} is not a time: give it as 2026-11-22T08:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise AssignmentError(
            f"{printable(text)!r} has no time zone: give its offset, e.g. "
            f"{text[:19] if len(text) >= 19 else text}+08:00 or ...Z for UTC"
        )
    return iso(moment)


def _row(row: sqlite3.Row) -> Assignment:
    return Assignment(
        recorder=str(row["recorder"]),
        officer=str(row["officer"]),
        valid_from=str(row["valid_from"]),
        valid_to=None if row["valid_to"] is None else str(row["valid_to"]),
        set_by=str(row["set_by"]),
        source=str(row["source"]),
        leaf_index=int(row["leaf_index"]),
    )


def _line(source: str) -> tuple[str, ...]:
    """The sources of the line of history ``source`` belongs to."""
    return BY_PERSON if source in BY_PERSON else BY_DEVICE


def _in(line: tuple[str, ...]) -> str:
    return f"source IN ({', '.join('?' * len(line))})"


def current(conn: sqlite3.Connection, serial: str, source: str = "cli") -> Assignment | None:
    """The newest assignment of the recorder in the line ``source`` belongs to (people's,
    or its device-info's): the one no later assignment of that line closed."""
    line = _line(source)
    row = conn.execute(
        "SELECT * FROM officer_assignments WHERE recorder = ? AND valid_to IS NULL"
        f" AND {_in(line)} ORDER BY valid_from DESC, id DESC LIMIT 1",
        (serial, *line),
    ).fetchone()
    return None if row is None else _row(row)


def history(conn: sqlite3.Connection, serial: str | None = None) -> list[Assignment]:
    """Every assignment (of one recorder, with ``serial``), oldest first per recorder."""
    where, params = ("WHERE recorder = ?", (serial,)) if serial is not None else ("", ())
    rows = conn.execute(
        f"SELECT * FROM officer_assignments {where} ORDER BY recorder, valid_from, id", params
    )
    return [_row(row) for row in rows]


def collector_for(
    conn: sqlite3.Connection,
    serial: str,
    at_iso: str,
    *,
    device_officer: str | None,
    cli_officer: str | None,
) -> tuple[str | None, str]:
    """The collector of a docking of ``serial`` at ``at_iso`` and where it came from:
    ``"cli"`` (the officer given on the command line), ``"assignment"`` (a person-made
    assignment in force then), ``"device-info"`` (what the recorder says), or ``"none"``
    (nobody: ingest it and flag it, never refuse it)."""
    if cli_officer:
        return cli_officer, "cli"
    at = parse_time(at_iso)
    row = conn.execute(
        "SELECT officer FROM officer_assignments WHERE recorder = ? AND valid_from <= ?"
        " AND (valid_to IS NULL OR valid_to > ?) AND source IN (?, ?)"
        " ORDER BY valid_from DESC, id DESC LIMIT 1",
        (serial, at, at, *BY_PERSON),
    ).fetchone()
    if row is not None:
        return str(row["officer"]), "assignment"
    if device_officer:
        return device_officer, "device-info"
    return None, "none"


def _record(
    conn: sqlite3.Connection, ledger: Ledger, change: Change, *, set_by: str, source: str
) -> Assignment:
    """Close the open assignment of the recorder's line and record the new one (in the
    caller's transaction)."""
    previous = current(conn, change.recorder, source)
    leaf = ledger.append(
        "officer.assigned",
        {
            "recorder": change.recorder,
            "officer": change.officer,
            "valid_from": change.valid_from,
            "set_by": set_by,
            "source": source,
            "previous": previous.officer if previous else None,
        },
    )
    line = _line(source)
    conn.execute(
        "UPDATE officer_assignments SET valid_to = ? WHERE recorder = ? AND valid_to IS NULL"
        f" AND {_in(line)}",
        (change.valid_from, change.recorder, *line),
    )
    conn.execute(
        "INSERT INTO officer_assignments (recorder, officer, valid_from, valid_to, set_by,"
        " source, leaf_index) VALUES (?, ?, ?, NULL, ?, ?, ?)",
        (change.recorder, change.officer, change.valid_from, set_by, source, leaf.index),
    )
    return Assignment(
        change.recorder, change.officer, change.valid_from, None, set_by, source, leaf.index
    )


def _plan(
    conn: sqlite3.Connection, changes: Iterable[Change]
) -> tuple[list[Change], list[Assignment], list[tuple[int | None, str]]]:
    """Which changes to record, which are on record or in force already, and what is
    wrong (by line).

    Changes of one recorder apply in order; each must start after the assignment it
    closes, so history never runs backwards. A change already recorded (same recorder,
    officer and start) records nothing, so a file imported twice changes nothing.
    """
    todo: list[Change] = []
    unchanged: list[Assignment] = []
    errors: list[tuple[int | None, str]] = []
    # serial -> (officer, valid_from, line in this file or None, the open assignment)
    newest: dict[str, tuple[str, str, int | None, Assignment | None]] = {}
    for change in changes:
        recorded = conn.execute(
            "SELECT * FROM officer_assignments WHERE recorder = ? AND officer = ?"
            " AND valid_from = ?",
            (change.recorder, change.officer, change.valid_from),
        ).fetchone()
        if recorded is not None:
            unchanged.append(_row(recorded))  # this very assignment is on record already
            continue
        if change.recorder not in newest:
            found = current(conn, change.recorder)
            if found is not None:
                newest[change.recorder] = (found.officer, found.valid_from, None, found)
        before = newest.get(change.recorder)
        if before is not None and before[0] == change.officer:
            if before[3] is not None and before[3] not in unchanged:
                unchanged.append(before[3])
            continue  # already this officer's: nothing to record
        if before is not None and change.valid_from <= before[1]:
            where = f" (line {before[2]})" if before[2] is not None else ""
            errors.append(
                (
                    change.line,
                    f"recorder {printable(change.recorder)} is assigned to "
                    f"{printable(before[0])} from {before[1]}{where}: a new assignment must "
                    "start later; give a later valid_from",
                )
            )
            continue
        newest[change.recorder] = (change.officer, change.valid_from, change.line, None)
        todo.append(change)
    return todo, unchanged, errors


def assign(
    conn: sqlite3.Connection,
    ledger: Ledger,
    serial: str,
    officer: str,
    *,
    set_by: str,
    valid_from: str | None = None,
    source: str = "cli",
) -> Outcome:
    """Assign ``serial`` to ``officer`` from ``valid_from`` (default: now). Assigning a
    recorder to the officer who already has it records nothing."""
    if source not in BY_PERSON:
        raise AssignmentError(
            f"source {source!r} is not a person's ({', '.join(BY_PERSON)}); what a recorder "
            "says is recorded by record_device_officer"
        )
    change = Change(
        check_name(serial, "recorder serial"),
        check_officer(officer),
        parse_time(valid_from) if valid_from else iso(utc_now()),
    )
    by = check_name(set_by, "name of who sets it (--by)")
    with transaction(conn):
        todo, unchanged, errors = _plan(conn, [change])
        if errors:
            raise AssignmentError(errors[0][1])
        made = [_record(conn, ledger, c, set_by=by, source=source) for c in todo]
    return Outcome(made, unchanged)


def record_device_officer(
    conn: sqlite3.Connection, ledger: Ledger, serial: str, officer: str, at_iso: str
) -> Assignment | None:
    """Keep the history of what a recorder's device-info said: record ``officer`` (source
    ``device-info``) when it differs from what it said before. It never closes a
    person's assignment, nor outranks one in :func:`collector_for`. Returns the
    assignment recorded, if any."""
    at = parse_time(at_iso)
    name = check_officer(officer)
    with transaction(conn):
        said = current(conn, serial, "device-info")
        if said is not None and (said.officer == name or said.valid_from >= at):
            return None
        return _record(
            conn, ledger, Change(serial, name, at), set_by="recorder", source="device-info"
        )


def read_csv(path: Path) -> tuple[list[Change], list[tuple[int | None, str]]]:
    """The rows of an assignment CSV (``serial,officer[,valid_from]``, header optional,
    UTF-8 with or without BOM) and the problems of its bad rows, by line number."""
    text = _read_text(path)
    now = iso(utc_now())
    changes: list[Change] = []
    errors: list[tuple[int | None, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    first = True
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            values = [cell.strip() for cell in cells]
            if not any(values) or values[0].startswith("#"):
                continue
            if first and [v.casefold() for v in values[:2]] in (
                ["serial", "officer"],
                ["recorder", "officer"],
            ):
                first = False
                continue
            first = False
            try:
                changes.append(_csv_change(values, line, now))
            except AssignmentError as exc:
                errors.append((line, str(exc)))
    except csv.Error as exc:
        errors.append((start, f"not CSV ({exc})"))
    return changes, errors


def _csv_change(values: list[str], line: int, now: str) -> Change:
    if len(values) not in (2, 3):
        raise AssignmentError(
            f"{len(values)} fields, expected serial,officer or serial,officer,valid_from"
        )
    serial = check_name(values[0], "recorder serial")
    officer = check_officer(values[1])
    valid_from = parse_time(values[2]) if len(values) == 3 and values[2] else now
    return Change(serial, officer, valid_from, line)


def _read_text(path: Path) -> str:
    try:
        # O_NONBLOCK: a FIFO given as the file must not hang the command.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise AssignmentError(
            f"cannot read {path}: {exc.strerror}; give the CSV file of assignments"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AssignmentError(f"{path} is not a file: give the CSV file of assignments")
        if info.st_size > MAX_CSV_BYTES:
            raise AssignmentError(
                f"{path} is larger than {MAX_CSV_BYTES // 2**20} MiB: split it into smaller files"
            )
        with os.fdopen(os.dup(fd), "rb") as stream:
            raw = stream.read(MAX_CSV_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AssignmentError(
            f"{path}: line {line} is not UTF-8 text: save the file as UTF-8 (with or without "
            "BOM) and import it again; nothing was imported"
        ) from None


def _bad_rows(path: Path, errors: list[tuple[int | None, str]]) -> AssignmentError:
    """One line naming every bad row: the first ones with their reason, the rest by line."""
    errors = sorted(errors, key=lambda e: e[0] or 0)
    shown = "; ".join(
        f"line {line}: {reason}" if line is not None else reason
        for line, reason in errors[:DETAILED_ROWS]
    )
    rest = [str(line) for line, _ in errors[DETAILED_ROWS:]]
    more = f"; also lines {', '.join(rest)}" if rest else ""
    return AssignmentError(
        f"{path}: {len(errors)} bad row(s), nothing imported: {shown}{more}; fix them and "
        "import the file again"
    )


def import_csv(conn: sqlite3.Connection, ledger: Ledger, path: Path, *, set_by: str) -> Outcome:
    """Import every row of an assignment CSV, or none: a bad row (each named with its
    line number) records nothing. Rows already in force record nothing either, so a
    file imported twice changes nothing the second time."""
    by = check_name(set_by, "name of who imports it (--by)")
    changes, errors = read_csv(path)
    if not changes and not errors:
        raise AssignmentError(f"{path} holds no assignments: give rows serial,officer[,valid_from]")
    with transaction(conn):
        todo, unchanged, planned = _plan(conn, changes)
        errors += planned
        if errors:
            raise _bad_rows(path, errors)
        made = [_record(conn, ledger, c, set_by=by, source="csv") for c in todo]
    return Outcome(made, unchanged)
