"""The ledger's `evidock` subcommands: verify, proof, export, verify-package, pubkey.

``register(subparsers)`` adds them to the evidock CLI; each sets ``func(args) -> int``.
``main(argv)`` runs them on their own (``python3 -m agent.ledger_cli verify ...``).
Exit codes: 0 all holds, 1 an integrity problem was found, 2 a usage problem.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path

from agent.anchoring import KEYS_DIR
from agent.database import DB_NAME, DatabaseError, open_readonly, open_station_db
from agent.verification import VerificationInputError, verify_data_dir
from hashing import EvidenceStore
from ledger import (
    InconsistentCheckpointError,
    Ledger,
    LedgerError,
    PublicKeyFile,
    StationKey,
    clip_receipt,
    export_case,
    make_checkpoint,
    origin_for,
    read_public_key,
    verify_package,
)
from ledger.anchor import LAST_SIGNED_NAME, stored_checkpoints
from ledger.keys import PRIVATE_NAME, PUBLIC_NAME
from ledger.report import report_json, report_text

Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Something the user gave cannot be used; the message says what to give instead."""


def _one_line_errors(name: str) -> Callable[[Command], Command]:
    def wrap(func: Command) -> Command:
        @wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return func(args)
            except InconsistentCheckpointError as exc:
                print(f"evidock {name}: {exc}", file=sys.stderr)
                return 1
            except (UsageError, LedgerError, DatabaseError) as exc:
                print(f"evidock {name}: {exc}", file=sys.stderr)
                return 2
            except sqlite3.DatabaseError as exc:
                print(f"evidock {name}: station database error: {exc}", file=sys.stderr)
                return 2

        return run

    return wrap


def _station_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT data FROM ledger_leaves ORDER BY idx LIMIT 1").fetchone()
    if row is None:
        raise UsageError("the ledger is empty: nothing to do until the station has run")
    station = json.loads(bytes(row[0])).get("station")
    if not isinstance(station, str):
        raise UsageError("leaf 0 names no station: run `evidock verify` on this data dir")
    return station


def _data_dir(args: argparse.Namespace) -> Path:
    data_dir = Path(args.data_dir)
    if not (data_dir / DB_NAME).is_file():
        raise UsageError(f"no {DB_NAME} in {data_dir}: give the station's data dir")
    return data_dir


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr, flush=True)


@_one_line_errors("verify")
def cmd_verify(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    show = sys.stderr.isatty() and not args.json
    try:
        outcome = verify_data_dir(
            data_dir,
            pubkey=Path(args.pubkey) if args.pubkey else None,
            anchors=[Path(name) for name in args.anchor or []],
            progress=_progress if show else None,
        )
    except VerificationInputError as exc:
        raise UsageError(str(exc)) from None
    if show:
        print(file=sys.stderr)
    report = outcome.report
    print(report_json(report) if args.json else report_text(report))
    return 0 if report.ok else 1


def _writable(data_dir: Path) -> tuple[sqlite3.Connection, Ledger, StationKey]:
    conn = open_station_db(data_dir / DB_NAME)
    station = _station_id(conn)
    keys = data_dir / KEYS_DIR
    if not (keys / PRIVATE_NAME).is_file():
        raise UsageError(f"no station key in {keys}: run this on the station that holds the key")
    return conn, Ledger(conn, station), StationKey.load(keys, origin_for(station))


@_one_line_errors("proof")
def cmd_proof(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    conn, ledger, key = _writable(data_dir)
    try:
        checkpoints = stored_checkpoints(conn)
        if not checkpoints or checkpoints[-1].size < ledger.size():
            make_checkpoint(ledger, [key], last_signed_file=data_dir / KEYS_DIR / LAST_SIGNED_NAME)
            checkpoints = stored_checkpoints(conn)
        text = clip_receipt(ledger, args.clip_id, checkpoints).text()
    finally:
        conn.close()
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    return 0


@_one_line_errors("export")
def cmd_export(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    conn, ledger, key = _writable(data_dir)
    try:
        result = export_case(
            ledger,
            EvidenceStore(data_dir / "store"),
            key,
            args.case,
            Path(args.out),
            who=args.who,
            purpose=args.purpose,
            last_signed_file=data_dir / KEYS_DIR / LAST_SIGNED_NAME,
        )
    finally:
        conn.close()
    print(
        f"exported case {result.case_number}: {len(result.clips)} clips, {result.leaves} "
        f"leaves, checkpoint {result.checkpoint_size} -> {result.out}"
    )
    return 0


@_one_line_errors("verify-package")
def cmd_verify_package(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give an evidence package folder")
    pinned: PublicKeyFile | None = read_public_key(Path(args.pubkey)) if args.pubkey else None
    report = verify_package(folder, pinned)
    print(
        json.dumps(report.as_json(), ensure_ascii=False, indent=2) if args.json else report.text()
    )
    return 0 if report.ok else 1


@_one_line_errors("pubkey")
def cmd_pubkey(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    key = read_public_key(data_dir / KEYS_DIR / PUBLIC_NAME)
    if not args.note:
        sys.stdout.write(key.for_name("x").pem().decode())
        return 0
    conn = open_readonly(data_dir / DB_NAME)
    try:
        station = _station_id(conn)
    finally:
        conn.close()
    print(key.for_name(origin_for(station)).text())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ledger's subcommands to the evidock CLI."""
    p = subparsers.add_parser("verify", help="verify the ledger and the evidence store")
    p.add_argument("--data-dir", required=True, help="station data dir (a copy will do)")
    p.add_argument("--pubkey", help="station public key (PEM or signed-note verifier key)")
    p.add_argument(
        "--anchor", action="append", help="anchor file, or a folder of them (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("proof", help="write a clip's receipt (a C2SP tlog-proof)")
    p.add_argument("clip_id", help="the clip's id")
    p.add_argument("--data-dir", required=True, help="station data dir")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_proof)

    p = subparsers.add_parser("export", help="export a case's evidence package")
    p.add_argument("--data-dir", required=True, help="station data dir")
    p.add_argument("--case", required=True, help="case number")
    p.add_argument("--out", required=True, help="new folder for the package")
    p.add_argument("--who", default="cli", help="who exports (recorded in the ledger)")
    p.add_argument("--purpose", default="", help="why (recorded in the ledger)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("verify-package", help="check an evidence package offline")
    p.add_argument("dir", help="the package folder")
    p.add_argument("--pubkey", help="pin the station public key")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify_package)

    p = subparsers.add_parser("pubkey", help="print the station public key")
    p.add_argument("--data-dir", required=True, help="station data dir")
    p.add_argument("--note", action="store_true", help="as a signed-note verifier key")
    p.set_defaults(func=cmd_pubkey)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a ledger subcommand without the rest of the evidock CLI."""
    parser = argparse.ArgumentParser(prog="evidock", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
