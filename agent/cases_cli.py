"""`evidock case create|show|list|edit|close` and `evidock link|unlink`: cases as
first-class records and the links of clips and sessions to them.

Every number entered is normalised and checked against the station's rule
(``[cases] number_pattern``) before anything is written; each change is one ledger leaf
and the station signs a checkpoint before the command returns.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

from agent import case_records
from agent.access import AccessRefused
from agent.case_records import CaseRecord
from agent.case_show import case_view, print_case, shown_value
from agent.cases import check_case_number, link
from agent.database import DB_NAME, open_readonly
from agent.errors import CaseError
from agent.sensitivity import not_allowed, record_refusal
from agent.station import Station
from agent.station_args import (
    UsageError,
    add_station_options,
    open_station,
    sign,
    station_data_dir,
)
from config.case_numbers import SENSITIVITIES, fold_case_number
from config.common import printable
from ledger import Ledger, case_members


def _yes_no(value: str) -> bool:
    if value in ("yes", "true", "1"):
        return True
    if value in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r}: write yes or no")


def cmd_link(args: argparse.Namespace) -> int:
    station = open_station(args)
    made = link(
        station.conn,
        station.ledger(),
        args.case,
        clip_id=args.clip,
        session_id=args.session,
        officer=args.officer,
        object_of_proof=args.object_of_proof,
        reason=args.reason,
        linked=args.command == "link",
        rule=station.config.cases.rule(),
    )
    what = f"clip {made.clip_id}" if made.clip_id else f"session {made.session_id}"
    number = printable(made.case_number)
    if made.leaf_index is None:
        print(f"{what} is already linked to case {number}: nothing changed, no leaf written")
        return 0
    sign(station)
    verb = "linked to" if made.outcome == "linked" else "unlinked from"
    print(f"{what} {verb} case {number} (ledger leaf {made.leaf_index})")
    if not made.case_registered and made.outcome == "linked":
        print(
            f"  no case record {number} yet (footage may be tagged first): "
            "open it with `evidock case create`"
        )
    return 0


def _fields(args: argparse.Namespace, *, creating: bool) -> dict[str, Any]:
    text = case_records.text_field
    fields: dict[str, Any] = {
        "subject": text("subject", args.subject, required=creating),
        "category": text("category", args.category, required=creating),
        "unit": text("unit", args.unit, required=creating),
        "whole_process": args.whole_process,
        "starts": case_records.moment("starts", args.starts),
        "ends": case_records.moment("ends", args.ends),
        "sensitivity": args.sensitivity,
        "retention": text("retention", args.retention),
    }
    if creating:
        fields["whole_process"] = bool(args.whole_process)
        fields["sensitivity"] = args.sensitivity or "normal"
        return fields
    return {k: v for k, v in fields.items() if v is not None}


def cmd_create(args: argparse.Namespace) -> int:
    fields = _fields(args, creating=True)
    by = case_records.text_field("by", args.by)
    station = open_station(args)
    case = case_records.create_case(
        station.conn, station.ledger(), args.case, fields, by=by, rule=station.config.cases.rule()
    )
    sign(station)
    typed = (
        ""
        if case.case_number_typed == case.case_number
        else f" (entered as {case.case_number_typed})"
    )
    print(printable(f"case {case.case_number}{typed} opened (ledger leaf {case.opened_leaf})"))
    return 0


def _who_why(args: argparse.Namespace) -> tuple[str, str]:
    by = case_records.text_field("by", args.by, required=True)
    reason = case_records.text_field("reason", args.reason, required=True)
    assert by is not None and reason is not None
    return by, reason


def _may_change_sensitivity(
    station: Station, typed_number: str, level: str, by: str, reason: str
) -> None:
    """Changing a privacy or secret case's level needs a person allowed at that level,
    as changing a clip's mark does (raising a normal case is open to anyone); a refused
    attempt is an ``access.refused`` leaf, signed, and the command exits 2."""
    case = case_records.find_case(station.conn, check_case_number(typed_number))
    if case is None or case.sensitivity == level:
        return  # edit_case says what is wrong, or that nothing changes
    policy = station.config.sensitivity
    if policy.allows(by, case.sensitivity):
        return
    leaf = record_refusal(
        station.conn, station.ledger(), who=by, purpose=reason, action="mark", via="cli",
        level=case.sensitivity, reason=not_allowed(by, case.sensitivity),
        case_number=case.case_number,
    )  # fmt: skip
    sign(station)
    raise AccessRefused(
        f"case {case.case_number} is {case.sensitivity}: {by} may not change its "
        f"sensitivity; the attempt is recorded (ledger leaf {leaf.index}); ask someone "
        f"on the station's [sensitivity] {case.sensitivity} list"
    )


def cmd_edit(args: argparse.Namespace) -> int:
    changes = _fields(args, creating=False)
    if not changes:
        raise CaseError(
            "say what changes: --subject, --category, --unit, --whole-process, --starts, "
            "--ends, --sensitivity or --retention"
        )
    by, reason = _who_why(args)
    station = open_station(args)
    if "sensitivity" in changes:
        _may_change_sensitivity(station, args.number, changes["sensitivity"], by, reason)
    case, changed = case_records.edit_case(
        station.conn, station.ledger(), args.number, changes, by=by, reason=reason
    )
    sign(station)
    shown = ", ".join(f"{k} = {shown_value(v)}" for k, v in changed.items())
    print(printable(f"case {case.case_number} changed (ledger leaf {case.changed_leaf}): {shown}"))
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    by, reason = _who_why(args)
    station = open_station(args)
    case = case_records.close_case(
        station.conn, station.ledger(), args.number, by=by, reason=reason
    )
    sign(station)
    print(f"case {printable(case.case_number)} closed (ledger leaf {case.closed_leaf})")
    return 0


def _read_only(args: argparse.Namespace) -> tuple[sqlite3.Connection, Ledger]:
    """The station's catalogue and ledger, read-only: an auditor who may read the data
    dir (or a copy of it) can look at cases, and looking never writes."""
    conn = open_readonly(station_data_dir(args) / DB_NAME)
    tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
    if "cases" not in tables:
        conn.close()
        raise UsageError(
            "this station's database predates case records: run any command that writes "
            "to it (e.g. `evidock deliver`) or the daemon once to update it"
        )
    return conn, Ledger(conn, station_id="read-only")


def cmd_show(args: argparse.Namespace) -> int:
    conn, ledger = _read_only(args)
    try:
        case = case_view(conn, ledger, args.number)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(case, ensure_ascii=False, indent=1))
    else:
        print_case(case)
    return 0


def _unregistered(conn: Any, registered: set[str]) -> list[str]:
    numbers = {
        fold_case_number(str(row[0]))
        for row in conn.execute("SELECT DISTINCT case_number FROM case_links")
    }
    return sorted(numbers - registered)


def cmd_list(args: argparse.Namespace) -> int:
    conn, ledger = _read_only(args)
    state = "open" if args.open else "closed" if args.closed else None
    try:
        cases = case_records.list_cases(conn, state)
        counts = {c.case_number: len(case_members(ledger, c.case_number)) for c in cases}
        everyone = {c.case_number for c in case_records.list_cases(conn)}
        loose = _unregistered(conn, everyone) if state is None else []
    finally:
        conn.close()
    if args.json:
        rows = [{**c.as_json(), "clips": counts[c.case_number]} for c in cases]
        print(json.dumps({"cases": rows, "unregistered": loose}, ensure_ascii=False, indent=1))
        return 0
    if not cases:
        print(f"no {state + ' ' if state else ''}cases on this station")
    for c in cases:
        print(printable(_list_line(c, counts[c.case_number])))
    if loose:
        print(printable(f"linked but no case record: {', '.join(loose)}"))
    return 0


def _list_line(case: CaseRecord, clips: int) -> str:
    state = "open" if case.is_open else "closed"
    return (
        f"{case.case_number}  {state}  {case.subject}  {case.category}  {case.unit}  "
        f"{clips} clip(s)"
    )


def _add_fields(p: argparse.ArgumentParser, *, creating: bool) -> None:
    p.add_argument("--subject", required=creating, help="the enforcement subject (当事人)")
    p.add_argument("--category", required=creating, help="case category (e.g. 行政处罚, 刑事)")
    p.add_argument("--unit", required=creating, help="the unit handling the case")
    if creating:
        p.add_argument(
            "--whole-process", action="store_true", help="whole-process recording required"
        )
    else:
        p.add_argument(
            "--whole-process",
            type=_yes_no,
            metavar="yes|no",
            help="whole-process recording required",
        )
    p.add_argument("--starts", help="when the case's enforcement starts (ISO, with offset)")
    p.add_argument("--ends", help="when it ends (ISO, with offset)")
    p.add_argument(
        "--sensitivity", choices=SENSITIVITIES, help="normal (default), privacy or secret"
    )
    p.add_argument("--retention", help="retention category (enforced by a later release)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `case` (create, show, list, edit, close), `link` and `unlink`."""
    for name, text in (
        ("link", "link a clip or session to a case"),
        ("unlink", "take back a case link (recorded, never erased)"),
    ):
        p = subparsers.add_parser(name, help=text)
        add_station_options(p)
        p.add_argument("--case", required=True, help="case number as on the case's documents")
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--clip", help="clip id")
        target.add_argument("--session", help="docking session id")
        p.add_argument("--officer", help="officer making the link")
        p.add_argument("--object-of-proof", help="what the footage proves (证明对象)")
        p.add_argument("--reason", help="why")
        p.set_defaults(func=cmd_link)

    case = subparsers.add_parser("case", help="cases: create, show, list, edit, close")
    sub = case.add_subparsers(dest="case_command", required=True, metavar="ACTION")

    p = sub.add_parser("create", help="open a case (a ledger leaf)")
    add_station_options(p)
    p.add_argument("--case", required=True, help="case number as on the case's documents")
    _add_fields(p, creating=True)
    p.add_argument("--by", help="who opens it")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("show", help="a case: its fields, its history, its links and clips")
    p.add_argument("number", help="case number (any form: brackets, full-width digits)")
    add_station_options(p, read_only=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", help="the station's cases")
    add_station_options(p, read_only=True)
    state = p.add_mutually_exclusive_group()
    state.add_argument("--open", action="store_true", help="open cases only")
    state.add_argument("--closed", action="store_true", help="closed cases only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("edit", help="change fields of an open case (a ledger leaf)")
    p.add_argument("number", help="case number")
    add_station_options(p)
    _add_fields(p, creating=False)
    p.add_argument("--by", required=True, help="who changes it")
    p.add_argument("--reason", required=True, help="why")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("close", help="close a case (a ledger leaf)")
    p.add_argument("number", help="case number")
    add_station_options(p)
    p.add_argument("--by", required=True, help="who closes it")
    p.add_argument("--reason", required=True, help="why")
    p.set_defaults(func=cmd_close)
