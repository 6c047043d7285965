"""Freeing a recorder: which of its files may go, and removing exactly those, on record.

A file leaves a recorder only when (1) a ``clip.ingested`` or ``clip.redocked`` leaf of
this recorder names it and says its copy was read back and matched (``verified``);
(2) under ``after_central_confirmed``, a ``clip.uploaded`` leaf shows central storage
holding the clip's size and SHA-256; and (3) the file on the recorder is still the one
copied: the size and modification time its sighting recorded, and its first and last
windows hash (the leaf's window hash and size) as they did. Everything else stays, with
a reason a person can act on. Only footage is removed (the profile's footage folders),
never the device-info file, never a link, a pipe or a folder.

What (3) cannot see: a change inside the middle windows of a file that keeps its size
and modification time. Reading every file again would cost as much as the copy; the
first and last windows catch a recorder that rewrote or appended to a file.

Evidence first: the ``recorder.wiped`` leaf naming every file about to go, and its
``wiped_files`` rows, are committed before the first file is removed. A file that then
fails to go is reported, and the next wipe finds it again. Each file is removed with
``unlinkat`` in its folder, every folder opened below the volume's root with
``O_NOFOLLOW``, after checking that it is still the file that was checked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.recorder_files import FileState, changed_reason, check_file, remove_file
from agent.sessions import owner_alive
from agent.station_args import UsageError, add_station_options, open_station, sign
from agent.wipe_proofs import LedgerProofs, flagged_reason, newest_session, sightings_of
from config.common import iso_utc, printable, transaction, utc_now
from docking import (
    FootageFile,
    RecorderProfile,
    WipePolicy,
    display_path,
    open_volume,
    path_b64,
)
from ledger import Ledger

Policy = WipePolicy
# Loosest first: a wipe may move right along this line, never left.
POLICIES: tuple[Policy, ...] = ("after_verified", "after_central_confirmed", "never")

Writable = Callable[[Path], AbstractContextManager[Path]]


def policy_for(station: Policy, profile: RecorderProfile, asked: Policy | None = None) -> Policy:
    """The policy a wipe follows: the station's ``docking.wipe``, made stricter by the
    recorder's profile, and by ``asked`` (``--policy``), which may not be looser than
    the station's."""
    if asked is not None and POLICIES.index(asked) < POLICIES.index(station):
        raise UsageError(
            f"--policy {asked} is looser than the station's docking.wipe = "
            f'"{station}": a wipe may only be stricter; leave --policy out'
        )
    policy = profile.wipe_policy(station)
    return policy if asked is None else max(policy, asked, key=POLICIES.index)


@dataclass
class WipeEntry:
    """One entry of the recorder and what the wipe does with it.

    ``held``: it stays for a reason that would go away once it is safe (not copied yet,
    not confirmed, changed): the command exits 1. An entry kept by design (the
    device-info file, files outside the footage folders, policy ``never``) is not held.
    """

    rel_path: bytes
    remove: bool
    reason: str
    held: bool = False
    clip_id: str | None = None
    copied_in: str | None = None  # the session whose copy proves it
    state: FileState | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return display_path(self.rel_path)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "path_b64": path_b64(self.rel_path),
            "clip_id": self.clip_id,
            "copied_in": self.copied_in,
            "reason": self.reason,
            "held": self.held,
        }


@dataclass
class WipePlan:
    recorder: str
    policy: Policy
    session_id: str | None  # the recorder's session the wipe is recorded under
    entries: list[WipeEntry]

    @property
    def removable(self) -> list[WipeEntry]:
        return [e for e in self.entries if e.remove]

    @property
    def kept(self) -> list[WipeEntry]:
        return [e for e in self.entries if not e.remove]

    @property
    def held(self) -> list[WipeEntry]:
        return [e for e in self.entries if e.held]


@dataclass
class WipeReport:
    plan: WipePlan
    removed: list[WipeEntry] = field(default_factory=list)
    failed: list[tuple[WipeEntry, str]] = field(default_factory=list)
    leaf_index: int | None = None

    @property
    def ok(self) -> bool:
        """Everything the policy allows went (exit 0)."""
        return not self.failed and not self.plan.held


class WipeRefused(UsageError):
    """The wipe cannot run now (a session of the recorder is still copying)."""


# -- the plan ----------------------------------------------------------------------------

NEVER = "the wipe policy is 'never': evidock removes nothing from this recorder"
NOT_COPIED = "never copied to this station: dock the recorder again to copy it"
NOT_VERIFIED = (
    'its copy was not read back and checked (hashing.verify = "none" when it was copied): '
    "a copy not proven on the station's disk does not free the recorder"
)


def plan_wipe(
    conn: sqlite3.Connection,
    ledger: Ledger,
    volume_root: Path,
    serial: str,
    policy: Policy,
    *,
    profile: str | RecorderProfile | None = None,
    session_id: str | None = None,
) -> WipePlan:
    """What a wipe of the recorder mounted at ``volume_root`` would remove, and why the
    rest stays. Reads the recorder, writes nothing."""
    volume = open_volume(volume_root, profile)
    scan = volume.scan()
    if session_id is None:
        newest = newest_session(conn, serial)
        session_id = None if newest is None else newest["session_id"]
    entries = [
        WipeEntry(r.rel_path, False, f"{r.reason}; never removed", held=True) for r in scan.refused
    ]
    footage = volume.profile.footage_matcher()
    sightings = sightings_of(conn, serial)
    proofs = LedgerProofs(conn, ledger, serial)
    root_fd = os.open(volume.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for item in scan.files:
            if policy == "never":
                entries.append(WipeEntry(item.rel_path, False, NEVER))
            elif item.rel_path == volume.device_info_path:
                why = "the recorder's device-info file (its serial and officer): never removed"
                entries.append(WipeEntry(item.rel_path, False, why))
            elif not footage.match(os.fsdecode(item.rel_path)):
                why = (
                    f"outside the footage folders of profile {volume.profile.name!r}: only "
                    "footage is removed"
                )
                entries.append(WipeEntry(item.rel_path, False, why))
            else:
                entries.append(_judge(root_fd, proofs, sightings, item, policy))
    finally:
        os.close(root_fd)
    entries.sort(key=lambda e: e.rel_path)
    return WipePlan(serial, policy, session_id, entries)


def _judge(
    root_fd: int,
    proofs: LedgerProofs,
    sightings: dict[bytes, list[sqlite3.Row]],
    item: FootageFile,
    policy: Policy,
) -> WipeEntry:
    rel = item.rel_path
    rows = sightings.get(rel)
    if not rows:
        return WipeEntry(rel, False, NOT_COPIED, held=True)
    # The scan's lstat picks the sighting; _inspect checks the file itself again.
    row = next((r for r in rows if r["size"] == item.size and r["mtime_ns"] == item.mtime_ns), None)
    if row is None:
        if all(r["size"] is None for r in rows):
            why = (
                "copied before evidock recorded each file's size and time: dock the recorder "
                "again (nothing is stored twice), then wipe"
            )
        else:
            why = changed_reason(rows[0]["size"] or 0, item.size)
        return WipeEntry(rel, False, why, held=True)
    entry = WipeEntry(rel, False, "", held=True, clip_id=row["clip_id"])
    entry.copied_in = row["session_id"]
    copy = proofs.copy(row, rel)
    if isinstance(copy, str):
        entry.reason = copy
        return entry
    if not proofs.verified(copy):
        entry.reason = NOT_VERIFIED
        return entry
    flagged = flagged_reason(copy.ingested)
    if flagged is not None or copy.first is None or copy.last is None:
        # Only an empty file has no windows, and it is flagged.
        entry.reason = flagged or "no window hashes are recorded for it"
        return entry
    why = f"copy verified (clip {copy.clip_id}, ledger leaf {copy.leaf.index})"
    if policy == "after_central_confirmed":
        uploaded = proofs.confirmed(copy)
        if uploaded is None:
            entry.reason = (
                "central storage has not confirmed it yet, and the policy waits for that; "
                f"{proofs.upload_state(copy.clip_id)}"
            )
            return entry
        why += f", confirmed by central storage (leaf {uploaded.index})"
    found = check_file(
        root_fd,
        rel,
        row["size"],
        row["mtime_ns"],
        (copy.window_size, copy.window_hash),
        copy.first,
        copy.last,
    )
    if isinstance(found, str):
        entry.reason = found
        return entry
    entry.remove, entry.held, entry.reason, entry.state = True, False, why, found
    return entry


# -- the wipe ----------------------------------------------------------------------------


def unchanged(volume_root: Path) -> AbstractContextManager[Path]:
    """The default ``writable``: the volume is written where it is (a folder, or a mount
    that is already read-write)."""
    return nullcontext(volume_root)


def perform_wipe(
    conn: sqlite3.Connection,
    ledger: Ledger,
    volume_root: Path,
    serial: str,
    policy: Policy,
    *,
    profile: str | RecorderProfile | None = None,
    session_id: str | None = None,
    writable: Writable = unchanged,
) -> WipeReport:
    """Remove from the recorder the files the plan allows, on record first.

    ``writable(volume_root)`` makes the volume writable for the wipe only and gives the
    path to write it at (the USB detector remounts read-write, then read-only again);
    it is entered only when something may go. The plan is made again on the writable
    volume, right before the leaf, so what is removed is what was checked last.
    """
    plan = plan_wipe(
        conn, ledger, volume_root, serial, policy, profile=profile, session_id=session_id
    )
    if not plan.removable:
        return WipeReport(plan)
    with writable(volume_root) as root:
        plan = plan_wipe(conn, ledger, root, serial, policy, profile=profile, session_id=session_id)
        going = plan.removable
        if not going or plan.session_id is None:
            return WipeReport(plan)
        now = iso_utc(utc_now())
        with transaction(conn):
            leaf = ledger.append("recorder.wiped", _leaf_body(plan, going))
            conn.executemany(
                "INSERT INTO wiped_files (session_id, source_path, clip_id, wiped_at, leaf_index)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, source_path) DO UPDATE SET"
                " clip_id = excluded.clip_id, wiped_at = excluded.wiped_at,"
                " leaf_index = excluded.leaf_index",
                [(plan.session_id, e.path, e.clip_id, now, leaf.index) for e in going],
            )
            # The session a person follows: its recorder's footage is now off the recorder.
            conn.execute(
                "UPDATE docking_sessions SET phase = 'wiped' WHERE session_id = ?"
                " AND phase IN ('verified', 'safe')",
                (plan.session_id,),
            )
        report = WipeReport(plan, leaf_index=leaf.index)
        _remove(Path(root), going, report)
    return report


def _leaf_body(plan: WipePlan, going: list[WipeEntry]) -> dict[str, Any]:
    clips = list(dict.fromkeys(e.clip_id for e in going if e.clip_id is not None))
    return {
        "recorder": plan.recorder,
        "session_id": plan.session_id,
        "policy": plan.policy,
        "clips": clips,
        "files": [
            {"path": e.path, "path_b64": path_b64(e.rel_path), "clip_id": e.clip_id} for e in going
        ],
    }


def _remove(root: Path, going: list[WipeEntry], report: WipeReport) -> None:
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in going:
            problem = remove_file(root_fd, entry.rel_path, entry.state)
            if problem is None:
                report.removed.append(entry)
            else:
                report.failed.append((entry, problem))
        with contextlib.suppress(OSError):
            os.fsync(root_fd)
    finally:
        os.close(root_fd)
    # The removals reach the recorder's flash before anyone is told to take it.
    os.sync()


# -- evidock wipe ------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evidock wipe`` to the CLI."""
    p = subparsers.add_parser(
        "wipe",
        help="free a docked recorder: remove the files whose copies are proven safe",
        description="Remove from a docked recorder the footage whose copies the ledger "
        "proves verified (and confirmed by central storage, under the default policy) and "
        "that is still the file copied; list why everything else stays. The wipe is a "
        "recorder.wiped ledger leaf naming every file removed.",
        epilog="Exit codes: 0 everything the policy allows went; 1 something stays that "
        "the policy would remove once it is safe (or could not be removed); 2 unusable input.",
    )
    p.add_argument("volume", help="the recorder's mount point")
    add_station_options(p)
    p.add_argument(
        "--dry-run", action="store_true", help="list what would go and why; change nothing"
    )
    p.add_argument(
        "--policy",
        choices=POLICIES,
        help="a stricter policy than the station's docking.wipe for this wipe",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_wipe)


def cmd_wipe(args: argparse.Namespace) -> int:
    station = open_station(args)
    volume = open_volume(Path(args.volume), station.config.docking.recorder_profile)
    policy = policy_for(station.config.docking.wipe, volume.profile, args.policy)
    newest = newest_session(station.conn, volume.serial)
    if newest is not None and newest["state"] == "open" and owner_alive(newest["owner"]):
        raise WipeRefused(
            f"recorder {printable(volume.serial)} is being copied (session "
            f"{newest['session_id']}): wait until its session closes, then wipe"
        )
    led = station.ledger()
    if args.dry_run:
        report = WipeReport(
            plan_wipe(station.conn, led, volume.root, volume.serial, policy, profile=volume.profile)
        )
    else:
        report = perform_wipe(
            station.conn, led, volume.root, volume.serial, policy, profile=volume.profile
        )
        if report.leaf_index is not None:
            sign(station)
    if args.json:
        print(json.dumps(_as_json(report, args.dry_run), ensure_ascii=False, indent=1))
    else:
        print("\n".join(_lines(report, args.dry_run)))
    return 0 if report.ok else 1


def _as_json(report: WipeReport, dry_run: bool) -> dict[str, Any]:
    plan = report.plan
    return {
        "recorder": plan.recorder,
        "policy": plan.policy,
        "session_id": plan.session_id,
        "dry_run": dry_run,
        "ok": report.ok,
        "leaf_index": report.leaf_index,
        "would_remove": [e.as_json() for e in plan.removable] if dry_run else [],
        "removed": [e.as_json() for e in report.removed],
        "failed": [{**e.as_json(), "reason": why} for e, why in report.failed],
        "kept": [e.as_json() for e in plan.kept],
    }


def _lines(report: WipeReport, dry_run: bool) -> Iterator[str]:
    plan = report.plan
    going = len(plan.removable) if dry_run else len(report.removed)
    verb = "would remove" if dry_run else "removed"
    head = f"recorder {printable(plan.recorder)} (policy {plan.policy}): {verb} {going} file(s)"
    if report.leaf_index is not None:
        head += f" (ledger leaf {report.leaf_index})"
    yield f"{head}, {len(plan.kept)} stay ({len(plan.held)} until they are safe)"
    if dry_run:
        for entry in plan.removable:
            yield f"  would remove: {printable(entry.path)}: {printable(entry.reason)}"
    for entry in report.removed:
        yield f"  removed: {printable(entry.path)}"
    for entry, why in report.failed:
        yield f"  not removed: {printable(entry.path)}: {printable(why)}"
    for entry in plan.kept:
        yield f"  stays: {printable(entry.path)}: {printable(entry.reason)}"
    if dry_run:
        yield "  dry run: nothing was changed"
