"""The ledger's `evidock` subcommands: verify, proof, export, verify-package,
verify-proof, pubkey.

``register(subparsers)`` adds them to the evidock CLI; each sets ``func(args) -> int``.
``main(argv)`` runs them on their own (``python3 -m agent.ledger_cli verify ...``).
Exit codes: 0 all holds, 1 an integrity problem was found, 2 a usage problem, 3 (the
verifiers) intact but not proven: leaves no trusted checkpoint signs, or a package key
that nothing outside the package pins.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from agent.access import AccessRefused
from agent.anchoring import KEYS_DIR
from agent.boundary import run_command
from agent.database import DB_NAME, open_readonly
from agent.errors import EvidockError
from agent.progress import StageProgress
from agent.sensitivity import check_export
from agent.station import Station
from agent.station_args import (
    UsageError,
    add_station_options,
    open_station,
    resolve_station,
    sign,
    station_data_dir,
)
from agent.verification import (
    read_key,
    read_labeled_anchors,
    station_anchors,
    verify_data_dir,
)
from config import ConfigError
from config.common import printable
from config.timestamping import TimestampingSection
from ledger import (
    PUBLIC_NAME,
    CheckpointError,
    ProofError,
    check_receipt,
    clip_receipt,
    export_case,
    origin_for,
    read_public_key,
    read_receipt,
    report_json,
    report_text,
    stored_checkpoints,
    verify_package,
)

Command = Callable[[argparse.Namespace], int]

EXIT_CODES = """exit status:
  0  every leaf is intact and covered by a checkpoint signed by the trusted key
     (with --require-anchor: also by an anchor given)
  1  an integrity problem was found (each is named)
  2  the input cannot be used (data dir, key, anchor)
  3  intact but not proven: some leaves are not signed by a trusted checkpoint
     (with --require-anchor: not covered by an anchor); they are only the station's word
"""

PACKAGE_EXIT_CODES = """exit status:
  0  every file matches its signed leaf and the key is pinned (--pubkey or --anchor)
  1  an integrity problem was found (each is named)
  2  not an evidence package, or a key / anchor that cannot be used
  3  internally consistent only: no --pubkey or --anchor pins the package's key
"""

PROOF_EXIT_CODES = """exit status:
  0  the leaf is in the checkpoint signed by the key given
  1  it is not (a wrong signature, leaf or proof)
  2  not a receipt, an unusable key, or no leaf bytes to check (give --leaf)
"""


def _station_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT data FROM ledger_leaves ORDER BY idx LIMIT 1").fetchone()
    if row is None:
        raise UsageError("the ledger is empty: nothing to do until the station has run")
    try:
        station = json.loads(bytes(row[0])).get("station")
    except (ValueError, AttributeError):
        station = None
    if not isinstance(station, str) or not station:
        raise UsageError("leaf 0 names no station: run `evidock verify` on this data dir")
    return station


def _lines(texts: list[str]) -> list[str]:
    """Each text as one line safe to print: a newline inside one cannot start a line
    that looks like the report's own."""
    return [printable(text) for text in texts]


def _on_terminal(text: str) -> str:
    """Report text safe to print on a terminal: names in it (a recorder's file, a
    package's, a receipt's origin) may hold ESC, CR or bidi controls; each becomes a
    visible escape. ``--json`` output is exact instead (JSON escapes them)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _stage_progress(args: argparse.Namespace) -> StageProgress:
    return StageProgress(enabled=False if getattr(args, "json", False) else None)


def cmd_verify(args: argparse.Namespace) -> int:
    data_dir = station_data_dir(args)
    given = station_anchors(data_dir, args.anchor, lambda: resolve_station(args)[0])
    timestamping, not_checked = _timestamping(args)
    progress = _stage_progress(args)
    try:
        outcome = verify_data_dir(
            data_dir,
            pubkey=Path(args.pubkey) if args.pubkey else None,
            read=given.anchors,
            require_anchor=args.require_anchor,
            progress=progress,
            timestamping=timestamping,
        )
    finally:
        progress.finish()
    for note in given.notes:
        print(printable(f"evidock verify: {note}"), file=sys.stderr)
    report = outcome.report
    stamps = [*outcome.timestamps, *not_checked]
    if args.json:
        found = json.loads(report_json(report))
        found["timestamps"] = {"lines": stamps, "invalid": outcome.timestamp_invalid}
        found["status"], found["ok"] = outcome.status, outcome.ok
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        print(_on_terminal(report_text(replace(report, problems=_lines(report.problems)))))
        for line in stamps:
            print(_on_terminal(line))
    return outcome.status


def _timestamping(args: argparse.Namespace) -> tuple[TimestampingSection | None, list[str]]:
    """The station's TSA settings for checking its tokens; an auditor with a copy of the
    data dir but not its config still verifies, and is told the tokens were not checked."""
    try:
        return resolve_station(args)[0].timestamping, []
    except (EvidockError, ConfigError) as exc:
        return None, [f"trusted timestamps not checked: {exc}"]


def cmd_proof(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        ledger = station.ledger()
        checkpoints = stored_checkpoints(station.conn)
        if not checkpoints or checkpoints[-1].size < ledger.size():
            sign(station)
            checkpoints = stored_checkpoints(station.conn)
        text = clip_receipt(ledger, args.clip_id, checkpoints).text()
    finally:
        station.close()
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    station = open_station(args)
    progress = _stage_progress(args)
    settings = station.config.station
    try:
        levels = _may_export(station, args)
        result = export_case(
            station.ledger(),
            station.store,
            station.keyring(),
            args.case,
            Path(args.out),
            who=args.who,
            purpose=args.purpose,
            progress=progress,
            station_name=settings.name,
            station_place=settings.place,
            time_zone=settings.time_zone,
            language=args.language or settings.language,
            pdf=not args.no_pdf,
            sensitivity=levels,
        )
        # The export's own checkpoint is signed; its anchor goes where the station's go.
        sign(station)
    finally:
        progress.finish()
        station.close()
    print(
        f"exported case {result.case_number}: {len(result.clips)} clips, {result.leaves} "
        f"leaves, checkpoint {result.checkpoint_size} -> {result.out}"
    )
    if result.pdf is not None:
        print(f"custody report: custody.html and {result.pdf} (in SHA256SUMS)")
    elif result.pdf_note is not None:
        print(printable(f"custody report: custody.html only; {result.pdf_note}"))
    return 0


def _may_export(station: Station, args: argparse.Namespace) -> dict[str, str] | None:
    """Each clip's sensitivity, for the package; refused (recorded, signed) when the
    person may not see one of the case's clips. Empty --who/--purpose: export says so."""
    if not args.who.strip() or not args.purpose.strip():
        return None
    levels, refused = check_export(
        station.conn, station.ledger(), station.config.sensitivity, args.case,
        who=args.who, purpose=args.purpose, via="cli",
    )  # fmt: skip
    if refused is not None:
        sign(station)
        raise AccessRefused(refused)
    return levels


def cmd_verify_package(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give the folder `evidock export` wrote")
    pinned = read_key(Path(args.pubkey)) if args.pubkey else None
    anchors = read_labeled_anchors([Path(a) for a in args.anchor or []])
    progress = _stage_progress(args)
    try:
        report = verify_package(folder, pinned, anchors, progress=progress)
    finally:
        progress.finish()
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        safe = replace(report, problems=_lines(report.problems), notes=_lines(report.notes))
        print(_on_terminal(safe.text()))
    return report.status


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def cmd_verify_proof(args: argparse.Namespace) -> int:
    receipt = Path(args.receipt)
    try:
        text = _read_bytes(receipt, "the receipt").decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{receipt} is not a receipt (not UTF-8 text): give a file `evidock proof` wrote"
        ) from None
    try:
        read_receipt(text)
    except (ProofError, CheckpointError) as exc:
        raise UsageError(
            f"{receipt} is not a receipt ({exc}): give a file `evidock proof` wrote"
        ) from None
    leaf = _read_bytes(Path(args.leaf), "the leaf") if args.leaf else None
    report = check_receipt(text, read_key(Path(args.pubkey)), leaf)
    if report.leaf is None and not report.problems:
        raise UsageError(
            f"{receipt} holds no leaf bytes: its checkpoint (size {report.checkpoint.size}) is "
            f"validly signed, and it proves that leaf {report.index} is in it only for the leaf "
            "whose bytes hash to the tree's leaf hash; give those bytes with --leaf FILE "
            f"(in an export: leaves/{report.index:012d}.json)"
        )
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(_on_terminal(replace(report, problems=_lines(report.problems)).text()))
    return 0 if report.ok else 1


def cmd_pubkey(args: argparse.Namespace) -> int:
    data_dir = station_data_dir(args)
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
    raw = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "verify",
        help="verify the ledger and the evidence store",
        description="Verify a station's ledger, its signed checkpoints, the anchors given "
        "and the evidence store, trusting only the public key and the anchors.",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    add_station_options(p, read_only=True)
    p.add_argument(
        "--pubkey",
        help="station public key (PEM or signed-note verifier key); default: the station's "
        "own, which proves less",
    )
    p.add_argument(
        "--anchor",
        action="append",
        default=[],
        help="anchor file; a folder of them (a shared folder: this station's are taken); "
        "'central' (or 's3'): the station's anchors read back from its delivery target "
        "(repeatable)",
    )
    p.add_argument(
        "--require-anchor",
        action="store_true",
        help="exit 3 unless an anchor given covers every leaf",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("proof", help="write a clip's receipt (a C2SP tlog-proof)")
    p.add_argument("clip_id", help="the clip's id")
    add_station_options(p)
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_proof)

    p = subparsers.add_parser("export", help="export a case's evidence package")
    add_station_options(p)
    p.add_argument("--case", required=True, help="case number")
    p.add_argument("--out", required=True, help="new (or empty) folder for the package")
    p.add_argument("--who", required=True, help="who exports (recorded in the ledger)")
    p.add_argument("--purpose", required=True, help="why (recorded in the ledger)")
    p.add_argument(
        "--language",
        choices=("zh-CN", "en"),
        help="language of the custody report (default: the station's station.language)",
    )
    p.add_argument(
        "--no-pdf",
        action="store_true",
        help="write custody.html only (default: also custody.pdf, printed by headless "
        "Chromium when it is installed)",
    )
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "verify-package",
        help="check an evidence package offline",
        description="Check an evidence package offline. The key inside the package proves "
        "nothing alone: pin it with --pubkey or with anchors from central storage.",
        epilog=PACKAGE_EXIT_CODES,
        formatter_class=raw,
    )
    p.add_argument("dir", help="the package folder")
    p.add_argument("--pubkey", help="pin the station public key (PEM or verifier key)")
    p.add_argument(
        "--anchor",
        action="append",
        help="anchor file from central storage, or a folder of them (repeatable): pins the "
        "key that signed it",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify_package)

    p = subparsers.add_parser(
        "verify-proof",
        help="check a receipt (C2SP tlog-proof) offline",
        description="Check a receipt written by `evidock proof`: the checkpoint's signature "
        "by the key given, the leaf's rules and its inclusion in the checkpoint.",
        epilog=PROOF_EXIT_CODES,
        formatter_class=raw,
    )
    p.add_argument("receipt", help="the receipt file")
    p.add_argument("--leaf", help="the leaf's bytes, when the receipt does not hold them")
    p.add_argument("--pubkey", required=True, help="station public key (PEM or verifier key)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_verify_proof)

    p = subparsers.add_parser("pubkey", help="print the station public key")
    add_station_options(p)
    p.add_argument("--note", action="store_true", help="as a signed-note verifier key")
    p.set_defaults(func=cmd_pubkey)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a ledger subcommand without the rest of the evidock CLI."""
    parser = argparse.ArgumentParser(prog="evidock", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    func: Command = args.func
    return run_command(f"evidock {args.command}", func, args)


if __name__ == "__main__":
    sys.exit(main())
