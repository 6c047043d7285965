"""`evidock incidents import|match|review`, `completeness`, `gaps`, `stats` and `clips`:
what the station's records say of its footage (docs/records.md).

Only `incidents import` and `incidents match` write: the import's leaf and the links
they make, signed before the command returns. The others read.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent import completeness as completeness_report
from agent import incidents
from agent.case_records import find_case
from agent.cases import check_case_number
from agent.clip_facts import ClipFacts, load_cases, load_clip_facts
from agent.clip_search import ClipQuery, result_json, result_lines, search
from agent.database import DB_NAME, open_readonly
from agent.errors import CaseError
from agent.incident_feed import read_feed
from agent.records_filters import near, time_range
from agent.station import Station
from agent.station_args import (
    UsageError,
    add_station_options,
    open_station,
    resolve_station,
    sign,
)
from agent.stats import COLUMNS, compute_stats, table_lines
from agent.stats_chart import write_png
from agent.whole_process import DEFAULT_MAX_GAP_S, Coverage, Gap, coverage
from config import StationConfig
from config.case_numbers import SENSITIVITIES
from config.common import printable
from ledger import Ledger

INTEGRITY = ("ok", "truncated", "undecodable", "not_media", "not_probed")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def _metres(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of metres") from None


@dataclass(frozen=True)
class _Reader:
    """The station read-only: what the reading commands need (an auditor with read access
    to the data dir, or a copy of it, may run them; they never write)."""

    conn: sqlite3.Connection
    config: StationConfig

    def ledger(self) -> Ledger:
        return Ledger(self.conn, station_id=self.config.station.id)


def _read_only(args: argparse.Namespace) -> _Reader:
    config, _file, data_dir = resolve_station(args)
    conn = open_readonly(data_dir / DB_NAME)
    tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
    if not {"incidents", "link_reviews", "clip_media", "cases"} <= tables:
        conn.close()
        raise UsageError(
            "this station's database predates case records and clip media: run any "
            "command that writes to it (e.g. `evidock deliver`) or the daemon once to update it"
        )
    return _Reader(conn, config)


def _clips(station: Station | _Reader) -> list[ClipFacts]:
    section = station.config.station
    return load_clip_facts(
        station.conn, station.ledger(), time_zone=section.time_zone, station_place=section.place
    )


def _print_lines(lines: list[str]) -> None:
    # Names come from recorders and feeds: each line shown, never obeyed by the terminal.
    for line in lines:
        print(printable(line))


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1))


def _match_lines(result: incidents.MatchResult) -> list[str]:
    lines = [f"linked: clip {clip} -> case {case}" for clip, case in result.linked]
    lines += [
        f"for review: clip {clip} ({reason}: {', '.join(cases)})"
        for clip, reason, cases in result.reviews
    ]
    lines.append(
        f"{len(result.linked)} clip(s) linked by the feed, {len(result.reviews)} put up for "
        f"review, {result.already} already linked (see `evidock incidents review`)"
    )
    return lines


def _match(station: Station, args: argparse.Namespace) -> incidents.MatchResult:
    return incidents.match_incidents(
        station.conn,
        station.ledger(),
        _clips(station),
        slack_s=args.slack_s,
        close_s=max(args.close_s, args.slack_s),
    )


def cmd_import(args: argparse.Namespace) -> int:
    station = open_station(args)
    feed = read_feed(Path(args.file), station.config.cases.rule())
    by = args.by.strip() if args.by and args.by.strip() else None
    made = incidents.import_feed(station.conn, station.ledger(), feed, by=by)
    result = _match(station, args)
    sign(station)
    for rejected in made.rejected:
        print(
            printable(
                f"evidock incidents import: {feed.source}: line {rejected['line']}: "
                f"{rejected['reason']} (line not imported)"
            ),
            file=sys.stderr,
        )
    if args.json:
        _print_json(
            {
                "leaf_index": made.leaf_index,
                "added": made.added,
                "already_known": made.known,
                "rejected": made.rejected,
                "linked": [{"clip_id": c, "case_number": n} for c, n in result.linked],
                "reviews": [
                    {"clip_id": c, "reason": r, "candidates": n} for c, r, n in result.reviews
                ],
            }
        )
    else:
        leaf = f" (ledger leaf {made.leaf_index})" if made.leaf_index is not None else ""
        print(
            printable(
                f"{feed.source}: {made.added} incident(s) added, {made.known} already on the "
                f"station, {len(made.rejected)} line(s) rejected{leaf}"
            )
        )
        _print_lines(_match_lines(result))
    return 1 if made.rejected else 0


def cmd_match(args: argparse.Namespace) -> int:
    station = open_station(args)
    result = _match(station, args)
    sign(station)
    if args.json:
        _print_json(
            {
                "linked": [{"clip_id": c, "case_number": n} for c, n in result.linked],
                "reviews": [
                    {"clip_id": c, "reason": r, "candidates": n} for c, r, n in result.reviews
                ],
            }
        )
    else:
        _print_lines(_match_lines(result))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    station = _read_only(args)
    items = incidents.review_list(station.conn, _clips(station))
    if args.json:
        _print_json({"count": len(items), "items": [i.as_json() for i in items]})
        return 0
    if not items:
        print("nothing to review")
    for item in items:
        clip = item.clip
        when = clip.start.isoformat(timespec="seconds") if clip.start else "no capture time"
        why = {
            "ambiguous": "several cases' incidents overlap it",
            "close": "no incident overlaps it, but one is close",
            "important": "the recorder marked it important; it is in no case",
        }[item.reason]
        cases = f": {', '.join(item.candidates)}" if item.candidates else ""
        print(
            printable(
                f"[{item.priority}] clip {clip.clip_id}  {clip.officer or '-'}  {when}  "
                f"{why}{cases}"
            )
        )
    if items:
        print("decide with `evidock link --case N --clip ID`")
    return 0


def cmd_completeness(args: argparse.Namespace) -> int:
    station = _read_only(args)
    groups = completeness_report.completeness(_clips(station), officer=args.officer, unit=args.unit)
    if args.json:
        _print_json(completeness_report.report_json(groups))
    else:
        _print_lines(completeness_report.report_lines(groups))
    return 0


def cmd_gaps(args: argparse.Namespace) -> int:
    station = _read_only(args)
    number = check_case_number(args.case)
    case = load_cases(station.conn).get(number)
    if case is None or find_case(station.conn, number) is None:
        raise CaseError(f"no case {number} on this station: see `evidock case list`")
    zone = ZoneInfo(station.config.station.time_zone)
    cover = coverage(case, _clips(station), zone, args.max_gap_s)
    if args.json:
        _print_json(cover.as_json())
    else:
        _print_lines(_gap_lines(cover))
    return 1 if case.whole_process and cover.merged else 0


def _gap_line(gap: Gap) -> str:
    return f"    {gap.start.isoformat()} - {gap.end.isoformat()}  {gap.seconds:g} s"


def _gap_lines(cover: Coverage) -> list[str]:
    case = cover.case
    lines = [
        f"case {case.case_number}: {cover.clips} clip(s), {cover.start.isoformat()} to "
        f"{cover.end.isoformat()} ({'the case' if cover.bounds_from == 'case' else 'its clips'}"
        f"), gaps longer than {cover.max_gap_s:g} s"
    ]
    if not case.whole_process:
        lines.append("  (this case does not require whole-process recording: for information)")
    for recorder, gaps in sorted(cover.per_recorder.items()):
        officers = ", ".join(sorted(cover.officers.get(recorder, set()))) or "-"
        lines.append(f"  recorder {recorder} ({officers}): {len(gaps)} gap(s)")
        lines += [_gap_line(g) for g in gaps]
    lines.append(f"  merged: {len(cover.merged)} gap(s)")
    lines += [
        f"    {g.start.isoformat()} - {g.end.isoformat()}  {g.seconds:g} s" for g in cover.merged
    ]
    if cover.untimed:
        lines.append(f"  {len(cover.untimed)} clip(s) with no capture time are not counted")
    return lines


def cmd_stats(args: argparse.Namespace) -> int:
    station = _read_only(args)
    zone = ZoneInfo(station.config.station.time_zone)
    span = time_range(args.start, args.end, zone)
    stats = compute_stats(
        station.conn,
        _clips(station),
        by=args.by,
        period=args.period,
        span=span,
        zone=zone,
        max_gap_s=args.max_gap_s,
    )
    if args.png:
        title = f"{station.config.station.name}: recording by {args.by}"
        out = write_png(stats, Path(args.png), title)
        print(printable(f"chart written to {out}"))
    elif args.json:
        _print_json(stats.as_json())
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in stats.rows:
            writer.writerow(row.as_json())
    else:
        _print_lines(table_lines(stats))
    return 0


def cmd_clips(args: argparse.Namespace) -> int:
    station = _read_only(args)
    zone = ZoneInfo(station.config.station.time_zone)
    query = ClipQuery(
        officer=args.officer,
        unit=args.unit,
        span=time_range(args.start, args.end, zone),
        case=check_case_number(args.case) if args.case is not None else None,
        subject=args.subject,
        near=near(args.near, args.radius_m),
        integrity=args.integrity,
        sensitivity=args.sensitivity,
    )
    found = search(station.conn, _clips(station), query)
    if args.json:
        _print_json(result_json(found))
    else:
        _print_lines(result_lines(found))
    return 0


def _matching_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--slack-s",
        type=_seconds,
        default=incidents.DEFAULT_SLACK_S,
        help="seconds an incident is widened by on each side "
        f"(default {incidents.DEFAULT_SLACK_S})",
    )
    p.add_argument(
        "--close-s",
        type=_seconds,
        default=incidents.DEFAULT_CLOSE_S,
        help="a clip this near an incident, but not overlapping, is put up for review "
        f"(default {incidents.DEFAULT_CLOSE_S})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `incidents`, `completeness`, `gaps`, `stats` and `clips`."""
    inc = subparsers.add_parser("incidents", help="incident feeds: import, match, review")
    sub = inc.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    p = sub.add_parser("import", help="import a CSV or JSON incident feed and link its clips")
    p.add_argument("file", help="FILE.csv (with a header) or FILE.json (a list of objects)")
    add_station_options(p)
    p.add_argument("--by", help="who imports it")
    _matching_options(p)
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("match", help="match the stored incidents against clips docked since")
    add_station_options(p)
    _matching_options(p)
    p.set_defaults(func=cmd_match)
    p = sub.add_parser("review", help="matches not guessed, and important clips in no case")
    add_station_options(p, read_only=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_review)

    p = subparsers.add_parser("completeness", help="clips missing any of the five elements")
    add_station_options(p, read_only=True)
    p.add_argument("--officer", help="only this officer's clips")
    p.add_argument("--unit", help="only this unit's clips")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_completeness)

    p = subparsers.add_parser("gaps", help="gaps in a whole-process case's recorded coverage")
    add_station_options(p, read_only=True)
    p.add_argument("--case", required=True, help="case number (any form)")
    p.add_argument(
        "--max-gap-s",
        type=_seconds,
        default=DEFAULT_MAX_GAP_S,
        help=f"report gaps longer than this (default {DEFAULT_MAX_GAP_S})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_gaps)

    p = subparsers.add_parser("stats", help="recording statistics per officer or unit")
    add_station_options(p, read_only=True)
    p.add_argument("--by", choices=("officer", "unit"), default="officer", help="group by")
    p.add_argument("--period", choices=("day", "week", "month"), help="one row per period")
    p.add_argument("--from", dest="start", help="first day (2026-11-20) or ISO time with offset")
    p.add_argument("--to", dest="end", help="last day (included) or ISO time with offset")
    p.add_argument(
        "--max-gap-s",
        type=_seconds,
        default=DEFAULT_MAX_GAP_S,
        help=f"whole-process gaps longer than this count (default {DEFAULT_MAX_GAP_S})",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--csv", action="store_true", help="print CSV")
    out.add_argument("--png", metavar="FILE", help="draw a chart into FILE (needs Chromium)")
    p.set_defaults(func=cmd_stats)

    p = subparsers.add_parser("clips", help="find clips")
    add_station_options(p, read_only=True)
    p.add_argument("--officer", help="the collector (docking officer)")
    p.add_argument("--unit", help="the unit")
    p.add_argument("--from", dest="start", help="day or ISO time with offset")
    p.add_argument("--to", dest="end", help="day (included) or ISO time with offset")
    p.add_argument("--case", help="case number (any form)")
    p.add_argument("--subject", help="enforcement subject (当事人), or part of it")
    p.add_argument("--near", metavar="LAT,LON", help="within --radius-m of this point")
    p.add_argument("--radius-m", type=_metres, help="metres, with --near")
    p.add_argument("--integrity", choices=INTEGRITY, help="integrity class")
    p.add_argument("--sensitivity", choices=SENSITIVITIES, help="strictest of its cases'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_clips)
