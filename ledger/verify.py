"""The auditor's verifier: trusts only the public key and the anchors it is given.

It reads the station database without writing, recomputes every leaf hash, chain link and
Merkle node from the leaf bytes, checks every stored checkpoint and every anchor against
them, and audits the evidence store against the clip.ingested leaves.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from config.window_hash import window_hash_of
from ledger.anchor import Anchor, origin_for
from ledger.audit import ClipRecord, EvidenceFiles, Progress, audit_store
from ledger.checkpoint import Checkpoint, SignedNote
from ledger.errors import CheckpointError, ProofError
from ledger.keys import PublicKeyFile, key_fingerprint
from ledger.leaf import CLIP_INGESTED, CLIP_PURGED, KEY_ROTATED, ZERO_HASH_HEX
from ledger.merkle import EMPTY_ROOT, verify_consistency
from ledger.report import Problems, VerifyReport, report_json, report_text
from ledger.rules import LeafRules
from ledger.trust import TrustedKey, keys_for_size, trusted_keys

# report_* stay importable from here: the agent reads them from ledger.verify.
__all__ = ["VerifyReport", "report_json", "report_text", "verify_station"]

_BATCH = 20000


@dataclass
class _Walk:
    """What the single pass over the leaves learns."""

    size: int = 0
    station: str | None = None
    roots: dict[int, bytes] = field(default_factory=dict)
    nodes_expected: int = 0
    clips: list[ClipRecord] = field(default_factory=list)
    purged: set[str] = field(default_factory=set)
    rotations: list[tuple[int, str, str]] = field(default_factory=list)


def verify_station(
    conn: sqlite3.Connection,
    key: PublicKeyFile,
    anchors: Sequence[Anchor] = (),
    store: EvidenceFiles | None = None,
    *,
    key_source: str = "given",
    require_anchor: bool = False,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the ledger behind ``conn`` (read only) and optionally the evidence store.

    The report's status is 0 only when every leaf is covered by a checkpoint (stored or
    anchor) validly signed by a trusted key, and with ``require_anchor`` by an anchor.
    """
    report = VerifyReport(
        key_source=key_source,
        anchors=len(anchors),
        require_anchor=require_anchor,
        key_fingerprint=key_fingerprint(key.public),
    )
    problems = Problems(report)
    stored = [
        (size, root, _text(note))
        for size, root, note in conn.execute(
            "SELECT tree_size, CAST(root AS BLOB), CAST(note AS BLOB) FROM ledger_checkpoints"
            " ORDER BY tree_size"
        )
    ]
    wanted = {int(r[0]) for r in stored} | {_anchor_size(a) for a in anchors}
    walk = _walk_leaves(conn, wanted, problems, progress)
    report.leaves = walk.size
    report.checkpoints = len(stored)
    station = walk.station or _station_from(stored)
    origin = origin_for(station) if station else None
    notes = [str(r[2]) for r in stored] + [a.note for a in anchors]
    given = key.for_name(origin or "")
    report.key = given.text() if key.name or origin else ""
    trusted = trusted_keys(given, walk.rotations, walk.roots, notes)
    for size, root, note in stored:
        before = problems.total
        _check_checkpoint(problems, "stored checkpoint", int(size), note, walk, trusted, origin)
        if bytes(root) != _note_root(note):
            problems.add("checkpoint", f"stored checkpoint {size}: root column differs from note")
        elif problems.total == before:
            report.signed_size = max(report.signed_size, int(size))
    good, report.anchored_size = _check_anchors(problems, anchors, walk, trusted, origin)
    report.anchors_good = good
    if good:
        report.signed_size = max(report.signed_size, report.anchored_size)
    if store is not None:
        report.audit = audit_store(store, walk.clips, walk.purged, progress)
        for line in report.audit.problems:
            problems.add("store", line)
    problems.finish()
    return report


def _text(raw: bytes) -> str:
    # An attacker may store bytes that are not UTF-8; they must fail the check, not us.
    return raw.decode("utf-8", errors="replace")


def _anchor_size(anchor: Anchor) -> int:
    try:
        return anchor.checkpoint.size
    except CheckpointError:
        return -1


def _note_root(note: str) -> bytes | None:
    try:
        return Checkpoint.parse_body(SignedNote.parse(note).body).root
    except CheckpointError:
        return None


def _station_from(stored: Sequence[tuple[int, bytes, str]]) -> str | None:
    for row in stored:
        try:
            origin = Checkpoint.parse_body(SignedNote.parse(row[2]).body).origin
        except CheckpointError:
            continue
        return origin.removeprefix("evidock.station/")
    return None


def _walk_leaves(
    conn: sqlite3.Connection, wanted: set[int], problems: Problems, progress: Progress | None
) -> _Walk:
    walk = _Walk()
    rules = LeafRules(problems.add)
    total = int(conn.execute("SELECT count(*) FROM ledger_leaves").fetchone()[0])
    sha256 = hashlib.sha256
    stack: list[bytes] = []
    # Nodes computed in the current batch, per level, and the index of the first of them.
    levels: list[list[bytes]] = [[] for _ in range(64)]
    starts = [0] * 64
    prev = ZERO_HASH_HEX
    pos = 0
    if 0 in wanted:
        walk.roots[0] = EMPTY_ROOT
    cursor = _plain_cursor(conn)
    cursor.execute(
        "SELECT idx, CAST(kind AS BLOB), CAST(coalesce(data, x'') AS BLOB) FROM ledger_leaves"
        " ORDER BY idx"
    )
    node_cursor = _plain_cursor(conn)
    while rows := cursor.fetchmany(_BATCH):
        level0 = levels[0]
        starts[0] = pos
        for idx, kind, data in rows:
            if idx != pos:
                problems.add(
                    "order",
                    f"leaf row {idx} found where leaf {pos} belongs: "
                    f"leaves deleted, inserted or renumbered",
                )
            obj, sound = rules.check(pos, data)
            if obj is not None:
                _check_leaf(problems, walk, pos, kind, obj, prev, sound)
            digest = sha256(b"\x00" + data).digest()
            prev = digest.hex()
            # Fold into the compact range; every completed subtree is a stored node.
            n, level, cur = pos, 0, digest
            level0.append(cur)
            while n & 1:
                cur = sha256(b"\x01" + stack.pop() + cur).digest()
                n >>= 1
                level += 1
                nodes = levels[level]
                if not nodes:
                    starts[level] = n
                nodes.append(cur)
            stack.append(cur)
            pos += 1
            if pos in wanted:
                root = stack[-1]
                for left in reversed(stack[:-1]):
                    root = sha256(b"\x01" + left + root).digest()
                walk.roots[pos] = root
        _compare_nodes(node_cursor, problems, levels, starts)
        for level_nodes in levels:
            level_nodes.clear()
        if progress is not None:
            progress("leaves", pos, total)
    walk.size = pos
    walk.station = rules.station
    walk.nodes_expected = sum(pos >> level for level in range(pos.bit_length()))
    stored_nodes = int(conn.execute("SELECT count(*) FROM ledger_nodes").fetchone()[0])
    if stored_nodes != walk.nodes_expected:
        problems.add(
            "nodes",
            f"Merkle node table has {stored_nodes} rows, the leaves make "
            f"{walk.nodes_expected}: nodes added or removed",
        )
    return walk


def _check_leaf(
    problems: Problems,
    walk: _Walk,
    pos: int,
    kind: bytes,
    obj: dict[str, Any],
    prev: str,
    sound: bool,
) -> None:
    """What only the whole ledger can check (the chain, the kind column), and what the
    rest of the walk needs of the leaf."""
    if obj["prev"] != prev:
        problems.add(
            "chain",
            f"leaf {pos}: prev {obj['prev'][:16]}... is not the hash of "
            f"leaf {pos - 1}: the chain is broken (leaf edited, deleted or inserted)",
        )
    if obj["kind"].encode() != kind:
        problems.add("kind", f"leaf {pos}: kind column {kind!r} differs from the leaf's")
    if not sound:
        return
    body = obj["body"]
    if obj["kind"] == CLIP_INGESTED:
        walk.clips.append(
            ClipRecord(
                pos,
                body["clip_id"],
                body["sha256"],
                body["size"],
                body["window_size"],
                tuple(body["windows"]),
                window_hash_of(body),
            )
        )
    elif obj["kind"] == CLIP_PURGED:
        walk.purged.add(body["clip_id"])
    elif obj["kind"] == KEY_ROTATED:
        walk.rotations.append((pos, body["old_key"], body["new_key"]))


def _plain_cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    # Plain tuples: a sqlite3.Row per row costs more than the row's SHA-256.
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor


def _compare_nodes(
    cursor: sqlite3.Cursor, problems: Problems, levels: list[list[bytes]], starts: list[int]
) -> None:
    for level, computed in enumerate(levels):
        if not computed:
            continue
        start = starts[level]
        rows = cursor.execute(
            "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ?"
            " ORDER BY idx",
            (level, start, start + len(computed)),
        ).fetchall()
        if len(rows) == len(computed) and [row[1] for row in rows] == computed:
            continue
        stored = {int(i): bytes(h) for i, h in rows}
        for k, h in enumerate(computed):
            if stored.get(start + k) != h:
                problems.add(
                    "nodes",
                    f"Merkle node (level {level}, index {start + k}) "
                    "disagrees with the leaves or is missing",
                )


def _check_checkpoint(
    problems: Problems,
    what: str,
    size: int,
    note: str,
    walk: _Walk,
    trusted: list[TrustedKey],
    origin: str | None,
) -> Checkpoint | None:
    try:
        signed = SignedNote.parse(note)
        cp = Checkpoint.parse_body(signed.body)
    except CheckpointError as exc:
        problems.add("checkpoint", f"{what} {size}: malformed: {exc}")
        return None
    if cp.size != size:
        problems.add("checkpoint", f"{what} {size}: the note says size {cp.size}")
    if not signed.verified_by(keys_for_size(trusted, cp.size)):
        names = ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in signed.signatures)
        problems.add(
            "signature",
            f"{what} {cp.size}: no valid signature by the trusted key "
            f"(signed as {names}): forged, edited or signed by an unknown key",
        )
    if origin is not None and cp.origin != origin:
        problems.add("checkpoint", f"{what} {cp.size}: origin {cp.origin!r} is not {origin!r}")
    if cp.size > walk.size:
        problems.add(
            "truncated",
            f"{what} {cp.size}: the ledger has only {walk.size} leaves: "
            "leaves were removed or the database was restored from an older backup",
        )
    elif walk.roots.get(cp.size) != cp.root:
        problems.add(
            "root",
            f"{what} {cp.size}: the leaves give another Merkle root: "
            "history before this checkpoint was changed (a fork)",
        )
    return cp


def _check_anchors(
    problems: Problems,
    anchors: Sequence[Anchor],
    walk: _Walk,
    trusted: list[TrustedKey],
    origin: str | None,
) -> tuple[int, int]:
    """Check anchors against the ledger and each other: (good anchors, newest anchored size)."""
    good = 0
    newest = 0
    by_size: dict[int, Checkpoint] = {}
    for anchor in anchors:
        size = _anchor_size(anchor)
        before = problems.total
        cp = _check_checkpoint(problems, "anchor", size, anchor.note, walk, trusted, origin)
        if cp is None:
            continue
        by_size[cp.size] = cp
        if problems.total == before:
            good += 1
            newest = max(newest, cp.size)
    for anchor in anchors:
        cp = by_size.get(_anchor_size(anchor))
        previous = by_size.get(anchor.previous_size)
        if cp is None or previous is None:
            continue
        try:
            verify_consistency(previous.size, cp.size, anchor.proof, previous.root, cp.root)
        except ProofError as exc:
            problems.add(
                "anchor",
                f"anchor {cp.size}: not consistent with anchor "
                f"{previous.size}: {exc}: the station signed two histories",
            )
    return good, newest
