"""The ``evidock`` command line.

Every command turns the errors users can act on into one line on stderr and an exit
code (0 done, 1 done with problems / integrity failure, 2 unusable input); tracebacks
are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from agent import (
    cases_cli,
    ledger_cli,
    purge,
    queue_cli,
    recorders_cli,
    records_cli,
    reverify,
    sensitivity_cli,
    status_cli,
    wipe,
)
from agent.access import fetch_clip
from agent.anchoring import rotate_station_key
from agent.boundary import fresh_line, run_command
from agent.cases import check_case_number, link
from agent.delivery import deliver_due, delivery_target
from agent.ingest import IngestSession, SessionReport
from agent.phases import advance_phases
from agent.progress import Progress
from agent.station_args import (
    UsageError,
    add_station_options,
    open_station,
    resolve_station,
    sign,
)
from config import check_config_file
from config.common import printable

Command = Callable[[argparse.Namespace], int]


def print_session(report: SessionReport, out: Any = None) -> None:
    """The human summary. Every name and reason here comes from the recorder (file
    names, its serial, its volume label, ffprobe's words on its clips) and goes through
    ``printable``: ESC, CR or a bidi override is shown, never obeyed by the terminal."""
    out = out or sys.stdout
    if not report.outcomes:
        print(f"{printable(report.source)}: no files on this volume; nothing to ingest", file=out)
    flagged = report.flagged
    print(
        f"session {report.session_id}: recorder {printable(report.recorder)}, "
        f"{report.count('new')} new, {report.count('seen')} already stored, "
        f"{len(report.problems)} problem(s), {len(flagged)} stored with a warning",
        file=out,
    )
    for problem in report.problems:
        print(
            f"  {problem.status}: {printable(problem.source_path)}: "
            f"{printable(problem.reason or '')}",
            file=out,
        )
    for outcome in flagged:
        print(
            f"  stored, flagged: {printable(outcome.source_path)}: "
            f"{printable(outcome.warning or '')}",
            file=out,
        )
    if report.case_number:
        print(f"  linked to case {printable(report.case_number)}", file=out)


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.case is not None:
        # A number the station's rule refuses is refused before anything is read or made.
        config, _file, _data_dir = resolve_station(args)
        check_case_number(args.case, config.cases.rule())
    station = open_station(args, create=True)
    progress = Progress("ingest", enabled=None if not args.json else False)
    stop = threading.Event()
    session = IngestSession(
        station,
        Path(args.source),
        officer=args.officer,
        recorder=args.recorder,
        on_bytes=progress.advance,
        on_plan=progress.plan,
        on_file=progress.file_done,
        stop=stop,
    )
    try:
        with _first_ctrl_c_stops(stop):
            report = session.run()
    except BaseException:
        # A session stopped by a second Ctrl-C was closed on record: sign that too.
        sign(station)
        raise
    progress.finish()
    if args.case and not stop.is_set():
        made = link(
            station.conn,
            station.ledger(),
            args.case,
            session_id=report.session_id,
            officer=args.officer,
            object_of_proof=args.object_of_proof,
            reason="linked at ingest",
            rule=station.config.cases.rule(),
        )
        report.case_number = made.case_number
    sign(station)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=1))
    else:
        print_session(report)
    if stop.is_set():
        raise KeyboardInterrupt
    return 0 if report.ok else 1


@contextmanager
def _first_ctrl_c_stops(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C finishes the file being copied and stops; a second stops now
    (the partial copy resumes next time)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        fresh_line()
        print(
            "\nevidock ingest: stopping after the file being copied (Ctrl-C again to stop "
            "now; the copy resumes next time)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_fetch(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        sha256 = fetch_clip(
            station, station.conn, args.clip_id, Path(args.out), who=args.who, purpose=args.purpose
        )
    finally:
        sign(station)
    print(f"clip {args.clip_id} -> {args.out} (sha256 {sha256}); access recorded in the ledger")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    station = open_station(args)
    report = deliver_due(station, station.conn, delivery_target(station))
    # Sessions whose clips are now all confirmed centrally become safe.
    safe = [s for s, phase in advance_phases(station.conn, station.config.docking.wipe)]
    sign(station)
    print("\n".join(report.lines()))
    if safe:
        print(f"{len(safe)} docking session(s) now safe: {', '.join(safe)}")
    return 0 if report.ok else 1


def cmd_rotate_key(args: argparse.Namespace) -> int:
    station = open_station(args)
    old, new, published = rotate_station_key(station)
    print(f"retired key: {old}")
    print(f"new key:     {new}")
    print(f"checkpoint signed by both published as {published}; publish the new key")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    name = args.file or args.config
    if not name:
        raise UsageError("give the config file to check: evidock check-config FILE")
    checked = check_config_file(Path(name))
    for warning in checked.warnings:
        print(f"{name}: {warning}", file=sys.stderr)
    config = checked.config
    print(f"{name}: valid (station {config.station.id}, data dir {config.paths.data_dir})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon import run_daemon

    config_file = Path(args.config).absolute()
    # The same checks as check-config, so a config it calls valid cannot crash the start.
    checked = check_config_file(config_file)
    for warning in checked.warnings:
        print(f"evidock run: {config_file}: {warning}", file=sys.stderr)
    return run_daemon(checked.config, once=args.once, config_file=config_file)


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    return run_demo(
        Path(args.data_dir), recorders=args.recorders, clips=args.clips, as_json=args.json
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evidock",
        description="Edge evidence ingestion for body-worn cameras: copy, hash, ledger, "
        "link, deliver, verify.",
        epilog="Exit codes: 0 done; 1 done with problems (a file not ingested, an integrity "
        "failure); 2 unusable input; 3 intact but not fully covered by signatures/anchors "
        "(verify commands).",
    )
    parser.add_argument("--version", action="version", version=f"evidock {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the whole flow on simulated recorders")
    p.add_argument("--data-dir", default="demo-data", help="station data dir (default ./demo-data)")
    p.add_argument("--recorders", type=int, default=3, help="simulated recorders to dock")
    p.add_argument("--clips", type=int, default=3, help="clips per recorder")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ingest", help="ingest a mounted recorder volume or any folder")
    p.add_argument("source", help="the recorder's mount point or a folder")
    add_station_options(p)
    p.add_argument("--officer", help="officer id (collector) of this docking")
    p.add_argument("--recorder", help="recorder serial, if the volume does not say")
    p.add_argument("--case", help="link the whole docking session to this case number")
    p.add_argument("--object-of-proof", help="what the footage proves (证明对象), with --case")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("fetch", help="copy a clip out of the station (access is logged)")
    p.add_argument("clip_id", help="clip id")
    add_station_options(p)
    p.add_argument("--out", required=True, help="new file to write")
    p.add_argument("--who", required=True, help="who reads the clip")
    p.add_argument("--purpose", required=True, help="why (case, hearing, review)")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("deliver", help="work the upload queue once")
    add_station_options(p)
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser("run", help="the station daemon")
    p.add_argument("--config", required=True, help="station config file")
    p.add_argument("--once", action="store_true", help="ingest what is docked now, then exit")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("rotate-key", help="replace the station signing key (a ledger leaf)")
    add_station_options(p)
    p.set_defaults(func=cmd_rotate_key)

    p = sub.add_parser("check-config", help="validate a station config file and its folders")
    p.add_argument("file", nargs="?", help="TOML config file")
    p.add_argument("--config", help="the same, as every other command takes it")
    p.set_defaults(func=cmd_check_config)

    ledger_cli.register(sub)
    cases_cli.register(sub)
    recorders_cli.register(sub)
    wipe.register(sub)
    records_cli.register(sub)
    sensitivity_cli.register(sub)
    reverify.register(sub)
    queue_cli.register(sub)
    purge.register(sub)
    status_cli.register(sub)
    return parser


def version() -> str:
    try:
        return metadata.version("evidock")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, letting the subcommand's own parser report options it does not know, so the
    user sees that command's usage rather than the top level's."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands = _subcommands(parser)
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    func: Command = args.func
    return run_command(f"evidock {args.command}", func, args)


if __name__ == "__main__":
    sys.exit(main())
