"""Signing checkpoints of the ledger, and the anchors handed to the delivery side.

The station never signs two checkpoints that disagree: before signing size n it proves
that the tree of size n extends the last signed checkpoint (from the database, and from a
copy of the last note kept beside the key, so a database restored from an old backup
cannot make it sign a fork).

An anchor is the signed checkpoint plus the consistency proof from the previous one,
as text (same shape as a tlog-proof)::

    evidock.anchor@v1
    previous <size>
    <base64 hash>...

    <signed checkpoint note>
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.checkpoint import Checkpoint, SignedNote, b64, sign_checkpoint, unb64
from ledger.errors import CheckpointError, InconsistentCheckpointError, ProofError
from ledger.keys import StationKey
from ledger.leaf import KEY_ROTATED
from ledger.log import Ledger, format_at, writing
from ledger.merkle import verify_consistency

ANCHOR_HEADER: Final = "evidock.anchor@v1"
LAST_SIGNED_NAME: Final = "last-checkpoint"


def origin_for(station_id: str) -> str:
    return f"evidock.station/{station_id}"


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: str

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint.parse_body(SignedNote.parse(self.note).body)


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint and the proof that it extends the previous one."""

    note: str
    previous_size: int
    proof: tuple[bytes, ...]

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint.parse_body(SignedNote.parse(self.note).body)

    def text(self) -> str:
        lines = [ANCHOR_HEADER, f"previous {self.previous_size}", *(b64(h) for h in self.proof)]
        return "\n".join(lines) + "\n\n" + self.note

    def file_name(self) -> str:
        return f"checkpoint-{self.checkpoint.size:012d}.anchor"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or lines[0] != ANCHOR_HEADER or len(lines) < 2:
            raise CheckpointError(f"not an anchor: the first line must be {ANCHOR_HEADER}")
        word, _, number = lines[1].partition(" ")
        if word != "previous" or not number.isdigit():
            raise CheckpointError("an anchor's second line reads 'previous <size>'")
        proof = tuple(unb64(line, "an anchor proof hash") for line in lines[2:])
        if any(len(h) != 32 for h in proof):
            raise CheckpointError("an anchor proof hash is not 32 bytes")
        SignedNote.parse(note)
        return cls(note, int(number), proof)


def stored_checkpoints(conn: sqlite3.Connection) -> list[StoredCheckpoint]:
    rows = conn.execute(
        "SELECT tree_size, root, note, signed_at FROM ledger_checkpoints ORDER BY tree_size"
    ).fetchall()
    return [StoredCheckpoint(int(r[0]), bytes(r[1]), str(r[2]), str(r[3])) for r in rows]


def latest_checkpoint(conn: sqlite3.Connection) -> StoredCheckpoint | None:
    row = conn.execute(
        "SELECT tree_size, root, note, signed_at FROM ledger_checkpoints"
        " ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])


def make_checkpoint(
    ledger: Ledger,
    signers: Sequence[StationKey],
    *,
    last_signed_file: Path | None = None,
) -> Anchor:
    """Sign the ledger's current tree head (unless already signed) and return its anchor.

    Raises InconsistentCheckpointError if the tree does not extend the last signed
    checkpoint: the ledger was truncated, restored from an older backup, or rewritten.
    """
    if not signers:
        raise CheckpointError("a checkpoint needs at least one signing key")
    with writing(ledger.conn, "ledger_checkpoint"):
        size = ledger.size()
        last = _last_signed(ledger, last_signed_file)
        origin = origin_for(ledger.station_id)
        previous_size = 0 if last is None else last.size
        if size < previous_size:
            raise InconsistentCheckpointError(
                f"the ledger has {size} leaves but a checkpoint of size {previous_size} was "
                "signed: the database was truncated or restored from an older backup; "
                "restore the newest backup, do not sign"
            )
        root = ledger.root(size)
        proof = ledger.consistency_proof(previous_size, size)
        if last is not None:
            try:
                verify_consistency(previous_size, size, proof, last.root, root)
            except ProofError as exc:
                raise InconsistentCheckpointError(
                    f"the ledger does not extend the checkpoint of size {previous_size} "
                    f"({exc}): history was rewritten; do not sign, run `evidock verify`"
                ) from None
        existing = ledger.conn.execute(
            "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (size,)
        ).fetchone()
        if existing is not None and last is not None and last.size == size:
            note = str(existing[0])
            previous_size, proof = _previous_of(ledger, size)
        else:
            note = sign_checkpoint(Checkpoint(origin, size, root), signers)
            ledger.conn.execute(
                "INSERT INTO ledger_checkpoints (tree_size, root, note, signed_at)"
                " VALUES (?, ?, ?, ?)",
                (size, root, note, format_at(ledger.clock())),
            )
        if last_signed_file is not None:
            # Under the write lock, so concurrent signers leave the newest note behind.
            _write_text(last_signed_file, note)
    return Anchor(note, previous_size, tuple(proof))


def _previous_of(ledger: Ledger, size: int) -> tuple[int, list[bytes]]:
    row = ledger.conn.execute(
        "SELECT max(tree_size) FROM ledger_checkpoints WHERE tree_size < ?", (size,)
    ).fetchone()
    previous = 0 if row[0] is None else int(row[0])
    return previous, ledger.consistency_proof(previous, size)


def _last_signed(ledger: Ledger, last_signed_file: Path | None) -> Checkpoint | None:
    stored = latest_checkpoint(ledger.conn)
    candidates = [] if stored is None else [stored.checkpoint]
    if last_signed_file is not None and last_signed_file.exists():
        note = SignedNote.parse(last_signed_file.read_text("utf-8"))
        candidates.append(Checkpoint.parse_body(note.body))
    return max(candidates, key=lambda c: c.size, default=None)


def anchor_for(conn: sqlite3.Connection, ledger: Ledger, size: int) -> Anchor:
    """The anchor of the stored checkpoint of ``size``."""
    row = conn.execute(
        "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (size,)
    ).fetchone()
    if row is None:
        raise CheckpointError(f"no checkpoint of size {size} was signed")
    previous, proof = _previous_of(ledger, size)
    return Anchor(str(row[0]), previous, tuple(proof))


def rotate_key(
    ledger: Ledger, old: StationKey, keys_dir: Path, *, last_signed_file: Path | None = None
) -> tuple[StationKey, Anchor]:
    """Replace the station key: a ``key.rotated`` leaf, then a checkpoint signed by both.

    The checkpoint carrying both signatures is what lets an auditor holding either key
    trust the other. The new key is written to ``station.ed25519.new`` before the ledger
    names it, so a crash in between leaves it recoverable.
    """
    new = StationKey.generate(old.name)
    pending = keys_dir / "pending"
    new.save(pending)
    with writing(ledger.conn, "ledger_rotate"):
        ledger.append(KEY_ROTATED, {"old_key": old.verifier.text(), "new_key": new.verifier.text()})
        anchor = make_checkpoint(ledger, [old, new], last_signed_file=last_signed_file)
    retired = keys_dir / f"station.{old.verifier.hash.hex()}.pub.pem"
    retired.write_bytes(old.verifier.pem())
    new.save(keys_dir)
    for leftover in pending.iterdir():
        leftover.unlink()
    pending.rmdir()
    return new, anchor


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
