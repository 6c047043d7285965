"""What `evidock case show` shows: a case's record, its history, its links (who, when,
as typed) and the clips it holds now, from the ledger (any form of its number)."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent import case_records
from agent.cases import check_case_number, link_history
from agent.errors import CaseError
from config.common import printable
from ledger import Leaf, Ledger, case_members

_RECORD_KINDS = ("case.opened", "case.changed", "case.closed")


def shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def _link_json(leaf: Leaf) -> dict[str, Any]:
    body = leaf.body
    return {
        "leaf": leaf.index,
        "at": leaf.at,
        "action": "linked" if leaf.kind == "case.linked" else "unlinked",
        "clip_id": body.get("clip_id"),
        "session_id": body.get("session_id"),
        "officer": body.get("officer"),
        "object_of_proof": body.get("object_of_proof"),
        "reason": body.get("reason"),
        "case_number": body.get("case_number"),
        "case_number_typed": body.get("case_number_typed", body.get("case_number")),
    }


def _record_json(leaf: Leaf) -> dict[str, Any]:
    body = leaf.body
    return {
        "leaf": leaf.index,
        "at": leaf.at,
        "event": leaf.kind.removeprefix("case."),
        "by": body.get("by"),
        "reason": body.get("reason"),
        "changes": body.get("changes"),
        "previous": body.get("previous"),
    }


def case_view(conn: sqlite3.Connection, ledger: Ledger, typed_number: str) -> dict[str, Any]:
    """Everything `case show` shows: the record, its history, its links and its clips."""
    number = check_case_number(typed_number)
    case = case_records.find_case(conn, number)
    links = link_history(ledger, number)
    if case is None and not links:
        raise CaseError(
            f"no case {number} on this station (no record, no link): see `evidock case list`"
        )
    history = [leaf for leaf in ledger.find(case_number=number) if leaf.kind in _RECORD_KINDS]
    members = case_members(ledger, number)
    return {
        "case_number": number,
        "registered": case is not None,
        "case": None if case is None else case.as_json(),
        "history": [_record_json(leaf) for leaf in history],
        "links": [_link_json(leaf) for leaf in links],
        "clips": [{"clip_id": c, "linked_by_leaf": leaf.index} for c, leaf in members.items()],
    }


def print_case(case: dict[str, Any]) -> None:
    out = [f"case {case['case_number']}"]
    record = case["case"]
    if record is None:
        out[0] += ": no case record (linked footage only): open it with `evidock case create`"
    else:
        if record["case_number_typed"] != record["case_number"]:
            out[0] += f" (entered as {record['case_number_typed']})"
        out[0] += ": open" if record["closed_at"] is None else f": closed {record['closed_at']}"
        for label, key in (
            ("subject (当事人)", "subject"),
            ("category", "category"),
            ("unit", "unit"),
            ("whole-process recording", "whole_process"),
            ("starts", "starts"),
            ("ends", "ends"),
            ("sensitivity", "sensitivity"),
            ("retention", "retention"),
        ):
            out.append(f"  {label}: {shown_value(record[key])}")
    if case["history"]:
        out.append("history:")
    for event in case["history"]:
        line = f"  {event['at']}  leaf {event['leaf']}  {event['event']}"
        line += f" by {shown_value(event['by'])}"
        if event["changes"]:
            line += ": " + ", ".join(
                f"{k} {shown_value(event['previous'].get(k))} -> {shown_value(v)}"
                for k, v in event["changes"].items()
            )
        if event["reason"]:
            line += f" ({event['reason']})"
        out.append(line)
    out.append(f"links ({len(case['links'])}):")
    for made in case["links"]:
        what = f"clip {made['clip_id']}" if made["clip_id"] else f"session {made['session_id']}"
        line = f"  {made['at']}  leaf {made['leaf']}  {made['action']:8} {what}"
        line += f" by {shown_value(made['officer'])}"
        if made["case_number_typed"] != case["case_number"]:
            line += f" as {made['case_number_typed']}"
        if made["reason"]:
            line += f": {made['reason']}"
        out.append(line)
    out.append(f"clips ({len(case['clips'])}):")
    out += [f"  {c['clip_id']}  linked by leaf {c['linked_by_leaf']}" for c in case["clips"]]
    print("\n".join(printable(line) for line in out))
