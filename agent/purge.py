"""`evidock purge`: local copies removed once central storage holds them and their
retention is over — never to make room.

A clip's copy leaves the station's evidence store only when both hold:

1. central confirmation: for every configured delivery target, a ``clip.uploaded``
   leaf whose confirmed size and SHA-256 are the clip's own;
2. its retention is over: ``retention_of`` (the longest of its cases', or
   ``[retention] unlinked``) gives a keep-until date, and that date has passed. No date
   (a case still open, a permanent category) keeps it.

Evidence first: the ``clip.purged`` leaf — with what it relied on: the upload leaves'
indexes and locations, the retention category and the keep-until date — is committed
before the file is removed. A file that then fails to go is reported (exit 1), and the
next purge, finding the leaf, removes it. ``evidock verify`` counts a purged clip's
missing file as no problem (``ledger.audit``). ``--dry-run`` lists what would go and why
every other clip stays; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.retention import retention_of
from agent.station import Station
from agent.station_args import add_station_options, open_station, sign
from config.common import iso_utc, printable, transaction, utc_now

# The one call that removes evidence (a test makes it refuse: root may remove any file).
unlink: Callable[[Path], None] = os.unlink


@dataclass
class PurgeEntry:
    clip_id: str
    sha256: str
    action: str  # "purge", "purged" (done now), "keep", "gone" (purged before)
    reason: str
    keep_until: str | None = None
    uploads: list[dict[str, Any]] = field(default_factory=list)
    leaf: int | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "sha256": self.sha256,
            "action": self.action,
            "reason": self.reason,
            "keep_until": self.keep_until,
            "uploads": self.uploads,
            "leaf": self.leaf,
            "problem": self.problem,
        }


def _uploads(station: Station, clip_id: str, sha256: str, size: int) -> dict[str, dict[str, Any]]:
    """Target -> the newest ``clip.uploaded`` leaf confirming this clip's own bytes."""
    found: dict[str, dict[str, Any]] = {}
    for leaf in station.ledger().find(clip_id=clip_id):
        body = leaf.body
        if (
            leaf.kind == "clip.uploaded"
            and body.get("confirmed_sha256") == sha256
            and body.get("confirmed_size") == size
        ):
            found[str(body["target"])] = {
                "target": body["target"],
                "leaf": leaf.index,
                "location": body["location"],
            }
    return found


def _purged_leaf(station: Station, clip_id: str) -> int | None:
    row = station.conn.execute(
        "SELECT idx FROM ledger_leaves WHERE kind = 'clip.purged' AND clip_id = ?"
        " ORDER BY idx LIMIT 1",
        (clip_id,),
    ).fetchone()
    return None if row is None else int(row[0])


def plan(station: Station, now: datetime) -> list[PurgeEntry]:
    """Every clip of the station and what a purge at ``now`` does with it."""
    targets = [station.config.delivery.target]
    entries = []
    rows = station.conn.execute("SELECT clip_id, sha256, size FROM clips ORDER BY leaf_index")
    for clip_id, sha256, size in rows.fetchall():
        purged = _purged_leaf(station, clip_id)
        if purged is not None:
            present = station.store.path_for(sha256).exists()
            entries.append(
                PurgeEntry(
                    clip_id,
                    sha256,
                    "purge" if present else "gone",
                    f"purged on record (leaf {purged})"
                    + ("; its file is still here: removed now" if present else ""),
                    leaf=purged,
                )
            )
            continue
        uploads = _uploads(station, clip_id, sha256, size)
        missing = [t for t in targets if t not in uploads]
        if missing:
            entries.append(
                PurgeEntry(
                    clip_id,
                    sha256,
                    "keep",
                    f"central storage ({', '.join(missing)}) has not confirmed it: "
                    "see `evidock queue`",
                )
            )
            continue
        confirmed = [uploads[t] for t in targets]
        category, until = retention_of(station.conn, clip_id, station.config.retention)
        if until is None:
            why = f"retention {category}: no keep-until date (permanent, or its case is open)"
            entries.append(PurgeEntry(clip_id, sha256, "keep", why, uploads=confirmed))
            continue
        stamp = iso_utc(until)
        if until > now:
            why = f"retention {category}: kept until {stamp}"
            entries.append(PurgeEntry(clip_id, sha256, "keep", why, stamp, confirmed))
            continue
        why = f"retention {category} over ({stamp}) and confirmed by {', '.join(targets)}"
        entries.append(PurgeEntry(clip_id, sha256, "purge", why, stamp, confirmed))
    return entries


def _remove(station: Station, sha256: str) -> str | None:
    """Remove the evidence file of ``sha256``; a problem, or None."""
    path = station.store.path_for(sha256)
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file: left for a person to look at"
        unlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} could not be removed: {exc.strerror}; the next purge tries again"
    return None


def purge(
    station: Station, *, now: datetime | None = None, dry_run: bool = False
) -> list[PurgeEntry]:
    """Purge what may go at ``now`` (default: the clock); with ``dry_run`` only say."""
    entries = plan(station, now or utc_now())
    if dry_run:
        return entries
    for entry in entries:
        if entry.action != "purge":
            continue
        if entry.leaf is None:
            with transaction(station.conn):
                leaf = station.ledger().append(
                    "clip.purged",
                    {
                        "clip_id": entry.clip_id,
                        "sha256": entry.sha256,
                        "reason": entry.reason,
                        "keep_until": entry.keep_until,
                        "uploads": entry.uploads,
                    },
                )
            entry.leaf = leaf.index
        entry.problem = _remove(station, entry.sha256)
        entry.action = "purged" if entry.problem is None else "purge"
    return entries


def cmd_purge(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        entries = purge(station, dry_run=args.dry_run)
        if not args.dry_run and any(e.leaf is not None and e.action == "purged" for e in entries):
            sign(station)
    finally:
        station.close()
    problems = [e for e in entries if e.problem]
    if args.json:
        out = {"dry_run": args.dry_run, "clips": [e.as_json() for e in entries]}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        _print(entries, args.dry_run)
    return 1 if problems else 0


def _print(entries: list[PurgeEntry], dry_run: bool) -> None:
    words = {"purge": "would purge" if dry_run else "not purged", "purged": "purged"}
    for e in entries:
        if e.action == "gone":
            continue
        said = words.get(e.action, "stays")
        line = f"{e.clip_id}: {said}: {e.reason}"
        if e.problem:
            line += f"; {e.problem}"
        print(printable(line))
    done = sum(e.action == "purged" for e in entries)
    due = sum(e.action == "purge" for e in entries)
    kept = sum(e.action == "keep" for e in entries)
    gone = sum(e.action == "gone" for e in entries)
    head = f"{due} would be purged" if dry_run else f"{done} purged"
    print(f"{head}, {kept} kept, {gone} purged before")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "purge",
        help="remove local copies central storage confirmed whose retention is over",
        description="Remove a clip's local copy only once every configured target "
        "confirmed it (a clip.uploaded leaf) and its retention is over; never to make "
        "room. Each purge is a clip.purged leaf, written before the file is removed.",
    )
    add_station_options(p)
    p.add_argument(
        "--dry-run", action="store_true", help="say what would go and why the rest stays"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_purge)
