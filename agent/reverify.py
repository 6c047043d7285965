"""`evidock reverify STATION --central`: is every upload central storage confirmed still
there, as it was confirmed?

For each ``clip.uploaded`` leaf of the station's delivery target, the target is asked what
it holds under the clip's name now: S3 the current version of the key and the version
the leaf names (size, SHA-256 metadata, ETag, version id, each compared with the leaf); a
folder its file, re-hashed. A confirmed version that is gone is *deleted*; a newer version
over it (S3 keeps the old one under a lock, but a plain GET now returns the new bytes) is
*overwritten*; other bytes or facts are *changed*. Then, where the station still has its
own copy, ranges of the stored object at fresh random offsets are re-read and compared
with it (``--sample N``: for N clips chosen at random; 0: none).

It writes nothing, no leaf either: what it sees is the state of storage the station does
not control, at one moment, and anyone with read access can see it again; the record of
what was confirmed is the ``clip.uploaded`` leaf, and a problem found here is reported
(exit 1, ``--json`` for monitoring) for a person to investigate, not settled by the
station. Exit 0 every object intact; 1 a problem (one line per clip); 2 the station or
its target cannot be used now.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.database import DB_NAME, open_readonly
from agent.station_args import UsageError, add_station_options, resolve_station, station_data_dir
from agent.verification import central_target
from config.common import printable
from hashing import EvidenceStore
from uploader import Target

RANGE_BYTES = 64 * 1024
RANGES = 3


class _Held(Protocol):
    """What a target says it holds now (``uploader.target.HeldObject``)."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...


@dataclass
class Finding:
    clip_id: str
    sha256: str
    location: str
    problem: str  # deleted, overwritten, changed, differs
    detail: str

    def line(self) -> str:
        return f"clip {self.clip_id}: {self.problem}: {self.detail}"


@dataclass
class ReverifyReport:
    target: str
    checked: int = 0
    sampled: int = 0
    other_targets: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> int:
        return 1 if self.findings else 0

    def lines(self) -> list[str]:
        out = [f.line() for f in self.findings]
        intact = self.checked - len(self.findings)
        out.append(
            f"{self.checked} confirmed upload(s) on {self.target} re-verified: {intact} intact, "
            f"{len(self.findings)} with a problem; {self.sampled} re-read against the "
            "station's copy"
        )
        if self.other_targets:
            out.append(f"{self.other_targets} upload(s) to other targets not checked")
        if self.findings:
            out.append(
                "central storage no longer holds these as confirmed: investigate them there "
                "(the station's ledger keeps what was confirmed; its copies stay until purged)"
            )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "checked": self.checked,
            "intact": self.checked - len(self.findings),
            "sampled": self.sampled,
            "other_targets": self.other_targets,
            "problems": [f.__dict__ for f in self.findings],
        }


def confirmed_uploads(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The bodies of every ``clip.uploaded`` leaf, in ledger order."""
    rows = conn.execute(
        "SELECT data FROM ledger_leaves WHERE kind = 'clip.uploaded' ORDER BY idx"
    ).fetchall()
    bodies = []
    for (data,) in rows:
        body = json.loads(bytes(data)).get("body")
        if isinstance(body, dict):
            bodies.append(body)
    return bodies


def reverify_central(
    target: Target, store: EvidenceStore, uploads: list[dict[str, Any]], sample: int | None
) -> ReverifyReport:
    """Check each confirmed upload of ``target``; re-read ``sample`` of them (None: all)."""
    report = ReverifyReport(target.name)
    mine = [body for body in uploads if body.get("target") == target.name]
    report.other_targets = len(uploads) - len(mine)
    intact: list[tuple[dict[str, Any], str | None]] = []
    for body in mine:
        report.checked += 1
        finding, version = _check(target, body)
        if finding is not None:
            report.findings.append(finding)
        elif store.contains(str(body["sha256"])):
            intact.append((body, version))
    chooser = random.Random(secrets.randbits(64))
    chosen = intact if sample is None else chooser.sample(intact, min(sample, len(intact)))
    for body, version in chosen:
        report.sampled += 1
        finding = _reread(target, store, body, version, chooser)
        if finding is not None:
            report.findings.append(finding)
    return report


def _check(target: Target, body: dict[str, Any]) -> tuple[Finding | None, str | None]:
    """One leaf against what the target holds: (a finding or None, the version to re-read)."""
    sha256, wanted = str(body["sha256"]), body.get("version_id")
    where = str(body.get("location", ""))
    current = target.held(sha256)
    pinned = target.held(sha256, wanted) if wanted else current

    def finding(problem: str, detail: str) -> tuple[Finding, None]:
        return Finding(str(body["clip_id"]), sha256, where, problem, detail), None

    if pinned is None:
        if current is None:
            return finding("deleted", f"{where} is gone: nothing is held under its name")
        return finding(
            "deleted",
            f"the confirmed version {wanted} is gone; {current.location} holds "
            f"{_facts(current)} in its place",
        )
    if wanted and current is not None and current.version_id != wanted:
        return finding(
            "overwritten",
            f"{current.location} ({_facts(current)}) was written over the confirmed "
            f"version {wanted}, which a plain read no longer returns",
        )
    if current is None:
        return finding("deleted", f"{where}: the name now reads as deleted (a delete marker)")
    differs = _differs(pinned, body)
    if differs:
        problem = "changed" if wanted else "overwritten"
        return finding(problem, f"{pinned.location} now holds {differs}")
    return None, pinned.version_id


def _facts(held: _Held) -> str:
    return f"{held.size} bytes, sha256 {held.sha256 or 'none'}"


def _differs(held: _Held, body: dict[str, Any]) -> str:
    """What ``held`` says that the leaf's confirmation did not ('' if nothing)."""
    said = []
    if held.size != body.get("confirmed_size"):
        said.append(f"{held.size} bytes, not {body.get('confirmed_size')}")
    if held.sha256 != body.get("confirmed_sha256"):
        said.append(f"sha256 {held.sha256 or 'none'}, not {body.get('confirmed_sha256')}")
    etag = body.get("etag")
    if etag and held.etag != etag:
        said.append(f"ETag {held.etag}, not {etag}")
    return "; ".join(said)


def _reread(
    target: Target,
    store: EvidenceStore,
    body: dict[str, Any],
    version: str | None,
    chooser: random.Random,
) -> Finding | None:
    """Ranges of the stored object at fresh offsets against the station's own copy."""
    sha256, size = str(body["sha256"]), int(body["confirmed_size"])
    if size == 0:
        return None
    length = min(RANGE_BYTES, size)
    local = store.path_for(sha256)
    with open(local, "rb") as mine:
        for offset in sorted({chooser.randrange(size - length + 1) for _ in range(RANGES)}):
            mine.seek(offset)
            if target.read_range(sha256, offset, length, version) != mine.read(length):
                where = str(body.get("location", ""))
                return Finding(
                    str(body["clip_id"]),
                    sha256,
                    where,
                    "differs",
                    f"{where} holds other bytes than the station's copy at bytes "
                    f"{offset}-{offset + length - 1}",
                )
    return None


def cmd_reverify(args: argparse.Namespace) -> int:
    if not args.central:
        raise UsageError("say what to re-verify: --central (the station's delivery target)")
    if args.sample is not None and args.sample < 0:
        raise UsageError(f"--sample wants a count of clips, 0 or more, not {args.sample}")
    data_dir = station_data_dir(args)
    config = resolve_station(args)[0]
    target = central_target(config, data_dir)
    conn = open_readonly(data_dir / DB_NAME)
    try:
        uploads = confirmed_uploads(conn)
    finally:
        conn.close()
    report = reverify_central(target, EvidenceStore(Path(data_dir) / "store"), uploads, args.sample)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            print(printable(line))
    return report.status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "reverify",
        help="check that central storage still holds every confirmed upload",
        description="Ask the station's delivery target what it holds now for every "
        "clip.uploaded leaf (S3: the current and the confirmed version, size, SHA-256 "
        "metadata, ETag; a folder: the file re-hashed), and re-read ranges of it against the "
        "station's own copy. Writes nothing.",
        epilog="exit status: 0 every confirmed upload intact; 1 one deleted, overwritten or "
        "changed (one line each); 2 the station or its target cannot be used now",
    )
    add_station_options(p, read_only=True)
    p.add_argument(
        "--central",
        action="store_true",
        help="re-verify the uploads to the station's delivery target (the only kind now)",
    )
    p.add_argument(
        "--sample",
        type=int,
        help="re-read ranges of N clips chosen at random (default: every clip whose copy "
        "the station still has; 0: HEAD only)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_reverify)
