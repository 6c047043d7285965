"""Signing checkpoints of the ledger, and the anchors handed to the delivery side.

The station never signs two checkpoints that disagree: before signing size n it proves
that the tree of size n extends the last signed checkpoint (from the database, and from a
copy of the last note kept beside the key, so a database restored from an old backup
cannot make it sign a fork).

The copy beside the key only ever describes a committed checkpoint. A new note is staged
as ``last-checkpoint.pending`` under the write lock before the COMMIT; after the COMMIT it
is promoted to ``last-checkpoint`` under the write lock again (by whoever owns the
transaction, or by the next signer). Under the write lock no transaction is half-done, so
a pending note is promoted if the database holds that exact note and discarded if not
(its transaction was rolled back, failed to commit, or died with its process).

An anchor is the signed checkpoint plus the consistency proof from the previous one,
as text (same shape as a tlog-proof)::

    evidock.anchor@v1
    previous <size>
    <base64 hash>...

    <signed checkpoint note>
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.checkpoint import Checkpoint, SignedNote, b64, sign_checkpoint, unb64
from ledger.errors import CheckpointError, InconsistentCheckpointError, ProofError
from ledger.keys import PUBLIC_MODE, StationKey, after_step, fsync_dir, write_atomic
from ledger.log import Ledger, format_at, writing
from ledger.merkle import verify_consistency

ANCHOR_HEADER: Final = "evidock.anchor@v1"
LAST_SIGNED_NAME: Final = "last-checkpoint"
PENDING_SUFFIX: Final = ".pending"


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


@contextmanager
def writing_or_rollback(conn: sqlite3.Connection, name: str) -> Iterator[bool]:
    """``writing``; yields whether this block owns the transaction. When our own COMMIT
    fails (a full disk, a deferred constraint) SQLite may keep the transaction open and
    the write lock held: it is rolled back here."""
    owned = not conn.in_transaction
    try:
        with writing(conn, name):
            yield owned
    except BaseException:
        if owned and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class LastSignedNote:
    """The newest committed checkpoint note, kept beside the key, outside the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending = path.with_name(path.name + PENDING_SUFFIX)

    def text(self) -> str | None:
        try:
            return self.path.read_text("utf-8")
        except FileNotFoundError:
            return None

    def checkpoint(self) -> Checkpoint | None:
        text = self.text()
        return None if text is None else Checkpoint.parse_body(SignedNote.parse(text).body)

    def stage(self, note: str) -> None:
        """Under the write lock, before the COMMIT of the checkpoint ``note``."""
        if self.text() == note:
            return
        write_atomic(self.pending, note.encode("utf-8"), PUBLIC_MODE)
        after_step("note.staged")

    def settle(self, conn: sqlite3.Connection, *, own_view: bool) -> None:
        """Under the write lock: promote a pending note the database holds, else drop it.

        ``own_view``: ``conn`` has written nothing in its transaction yet, so it sees what
        is committed. Inside a caller's transaction it may see its own uncommitted
        checkpoint; a connection of our own is asked then.
        """
        try:
            note = self.pending.read_text("utf-8")
        except FileNotFoundError:
            return
        if self._committed(conn, note, own_view):
            self.pending.replace(self.path)
            fsync_dir(self.path.parent)
            after_step("note.promoted")
        else:
            self.pending.unlink(missing_ok=True)
            fsync_dir(self.path.parent)

    def _committed(self, conn: sqlite3.Connection, note: str, own_view: bool) -> bool:
        try:
            size = Checkpoint.parse_body(SignedNote.parse(note).body).size
        except CheckpointError:
            return False
        current = self.checkpoint()
        if current is not None and current.size >= size and self.text() != note:
            return False  # never replace a newer note, or another of the same size
        query = "SELECT 1 FROM ledger_checkpoints WHERE tree_size = ? AND note = ?"
        if own_view:
            return conn.execute(query, (size, note)).fetchone() is not None
        database = _database_file(conn)
        if database is None:
            return False  # no second view of an in-memory database: keep the older note
        reader = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
        try:
            return reader.execute(query, (size, note)).fetchone() is not None
        finally:
            reader.close()

    def settle_after_commit(self, conn: sqlite3.Connection) -> None:
        """Promote the note just committed, under the write lock taken again.

        Best effort: if the lock cannot be had, the note stays pending and the next
        signer promotes it (the state a crash right after the COMMIT leaves).
        """
        with suppress(sqlite3.OperationalError), writing(conn, "ledger_note"):
            self.settle(conn, own_view=True)


def _database_file(conn: sqlite3.Connection) -> Path | None:
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


def make_checkpoint(
    ledger: Ledger,
    signers: Sequence[StationKey],
    *,
    last_signed_file: Path | None = None,
) -> Anchor:
    """Sign the ledger's current tree head (unless already signed) and return its anchor.

    With ``last_signed_file`` the note beside the key is checked before signing and kept
    up to date (see the module's docstring): promoted at once when this call owns the
    transaction, else by the next signer once the caller's transaction has committed.
    Raises InconsistentCheckpointError if the tree does not extend the last signed
    checkpoint: the ledger was truncated, restored from an older backup, or rewritten.
    """
    if not signers:
        raise CheckpointError("a checkpoint needs at least one signing key")
    note_file = None if last_signed_file is None else LastSignedNote(last_signed_file)
    with writing_or_rollback(ledger.conn, "ledger_checkpoint") as owned:
        anchor = _sign_locked(ledger, signers, note_file, owned)
    if owned and note_file is not None:
        after_step("sign.committed")
        note_file.settle_after_commit(ledger.conn)
    return anchor


def _sign_locked(
    ledger: Ledger, signers: Sequence[StationKey], note_file: LastSignedNote | None, owned: bool
) -> Anchor:
    if note_file is not None:
        note_file.settle(ledger.conn, own_view=owned)
    size = ledger.size()
    known = _known_signed(ledger, note_file)
    for signed in known:
        _check_extends(ledger, size, signed)
    last = max(known, key=lambda c: c.size, default=None)
    origin = origin_for(ledger.station_id)
    previous_size = 0 if last is None else last.size
    root = ledger.root(size)
    proof = ledger.consistency_proof(previous_size, size)
    existing = ledger.conn.execute(
        "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (size,)
    ).fetchone()
    if existing is not None and last is not None and last.size == size:
        note = str(existing[0])
        previous_size, proof = _previous_of(ledger, size)
    else:
        note = sign_checkpoint(Checkpoint(origin, size, root), signers)
        ledger.conn.execute(
            "INSERT INTO ledger_checkpoints (tree_size, root, note, signed_at) VALUES (?, ?, ?, ?)",
            (size, root, note, format_at(ledger.clock())),
        )
    if note_file is not None:
        # Under the write lock, so concurrent signers leave the newest note behind.
        note_file.stage(note)
    return Anchor(note, previous_size, tuple(proof))


def _previous_of(ledger: Ledger, size: int) -> tuple[int, list[bytes]]:
    row = ledger.conn.execute(
        "SELECT max(tree_size) FROM ledger_checkpoints WHERE tree_size < ?", (size,)
    ).fetchone()
    previous = 0 if row[0] is None else int(row[0])
    return previous, ledger.consistency_proof(previous, size)


def _known_signed(ledger: Ledger, note_file: LastSignedNote | None) -> list[Checkpoint]:
    """The newest checkpoint in the database and the one in the note beside the key."""
    stored = latest_checkpoint(ledger.conn)
    known = [] if stored is None else [stored.checkpoint]
    beside_key = None if note_file is None else note_file.checkpoint()
    if beside_key is not None:
        known.append(beside_key)
    return known


def _check_extends(ledger: Ledger, size: int, signed: Checkpoint) -> None:
    if size < signed.size:
        raise InconsistentCheckpointError(
            f"the ledger has {size} leaves but a checkpoint of size {signed.size} was "
            "signed: the database was truncated or restored from an older backup; "
            "restore the newest backup, do not sign"
        )
    try:
        proof = ledger.consistency_proof(signed.size, size)
        verify_consistency(signed.size, size, proof, signed.root, ledger.root(size))
    except ProofError as exc:
        raise InconsistentCheckpointError(
            f"the ledger does not extend the checkpoint of size {signed.size} "
            f"({exc}): history was rewritten; do not sign, run `evidock verify`"
        ) from None


def anchor_for(conn: sqlite3.Connection, ledger: Ledger, size: int) -> Anchor:
    """The anchor of the stored checkpoint of ``size``."""
    row = conn.execute(
        "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (size,)
    ).fetchone()
    if row is None:
        raise CheckpointError(f"no checkpoint of size {size} was signed")
    previous, proof = _previous_of(ledger, size)
    return Anchor(str(row[0]), previous, tuple(proof))
