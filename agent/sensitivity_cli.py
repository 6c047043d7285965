"""`evidock clip mark` (a clip's own sensitivity) and `evidock retention` (each clip's
retention category and keep-until date)."""

from __future__ import annotations

import argparse

from agent.access import AccessRefused
from agent.retention import record_retentions, retention_json
from agent.sensitivity import clip_sensitivity, mark_clip
from agent.station_args import add_station_options, open_station, sign
from config.case_numbers import SENSITIVITIES
from config.common import iso_utc, printable


def cmd_mark(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        ledger = station.ledger()
        made = mark_clip(
            station.conn, ledger, station.config.sensitivity, args.clip_id, args.sensitivity,
            by=args.by, reason=args.reason,
        )  # fmt: skip
        if made.refused is not None:
            sign(station)
            raise AccessRefused(made.refused)
        if made.leaf_index is None:
            print(f"clip {made.clip_id} is marked {made.level} already: nothing changed")
            return 0
        sign(station)
        now = clip_sensitivity(station.conn, ledger, made.clip_id)
        print(
            f"clip {made.clip_id} marked {made.level} (was {made.previous}; "
            f"ledger leaf {made.leaf_index})"
        )
        if now.level != made.level:
            print(printable(f"  it stays {now.level} through {now.because()}"))
    finally:
        station.close()
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        computed_at, found = record_retentions(
            station.conn, station.ledger(), station.config.retention
        )
    finally:
        station.close()
    if args.json:
        print(retention_json(computed_at, found))
        return 0
    if not found:
        print("no clips on this station")
    for r in found:
        until = "no date" if r.keep_until is None else iso_utc(r.keep_until)[:10]
        case = f" (case {r.decided_by})" if r.decided_by else ""
        print(
            printable(f"{r.clip_id}  {r.category} {r.period}{case}  keep until {until}: {r.note}")
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `clip` (mark) and `retention`."""
    clip = subparsers.add_parser("clip", help="one clip: mark its sensitivity")
    sub = clip.add_subparsers(dest="clip_command", required=True, metavar="ACTION")
    p = sub.add_parser(
        "mark",
        help="set a clip's own sensitivity (a ledger leaf)",
        description="Set a clip's own sensitivity. The stricter of it and its cases' wins. "
        "Anyone may raise a mark; changing a privacy or secret mark needs a person the "
        "station's [sensitivity] config allows at that level (else refused and recorded).",
    )
    p.add_argument("clip_id", help="the clip's id")
    add_station_options(p)
    p.add_argument("--sensitivity", required=True, choices=SENSITIVITIES, help="the new mark")
    p.add_argument("--by", required=True, help="who marks it (recorded in the ledger)")
    p.add_argument("--reason", required=True, help="why (recorded in the ledger)")
    p.set_defaults(func=cmd_mark)

    p = subparsers.add_parser(
        "retention",
        help="each clip's retention category and keep-until date",
        description="List each clip's retention category and keep-until date, from the "
        "cases holding it and the station's [retention] config, and keep them in the "
        "clip_retention table. Purges nothing.",
    )
    add_station_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_retention)
