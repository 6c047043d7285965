"""The station's keys folder, owned here alone: the signing key, its public forms, a key
rotation under way, and the last signed note.

Layout (``DIR/keys``, 0755 so that an auditor can read the public key)::

    station.ed25519            the signing key, 0600: the one private file
    station.pub.pem            its public key, 0644
    station.<hash>.pub.pem     a retired key's public key (its signed-note key hash), 0644
    last-checkpoint            the newest committed checkpoint note (ledger.anchor), 0644
    last-checkpoint.pending    a note staged before its COMMIT
    pending/station.ed25519    the next key while its rotation commits, 0600

Every operation begins under the SQLite write lock by settling what a crash left, so a
settled folder is all that signing ever sees. Under the write lock no transaction is
half-done: a pending note is promoted if the database holds it and dropped if not; a
pending key the ledger's newest ``key.rotated`` leaf names is installed (the retired public
key kept), one it does not name is dropped (its rotation never committed). A rotation's
steps, each durable and each safe to die after:

1. under the write lock: the next key saved in ``pending/``, the ``key.rotated`` leaf and a
   checkpoint signed by both keys, its note staged; COMMIT;
2. under the write lock again: the note promoted, the retired public key written, the next
   key installed (private, then public), ``pending/`` removed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Final

from ledger.anchor import (
    LAST_SIGNED_NAME,
    Anchor,
    LastSignedNote,
    latest_checkpoint,
    make_checkpoint,
    writing_or_rollback,
)
from ledger.errors import LedgerStateError, StationKeyError
from ledger.keys import (
    PRIVATE_MODE,
    PRIVATE_NAME,
    PUBLIC_MODE,
    PUBLIC_NAME,
    StationKey,
    VerifierKey,
    after_step,
    check_key_name,
    fsync_dir,
    prepare_folder,
    read_public_key,
    set_mode,
    sweep_tmp,
    write_atomic,
)
from ledger.leaf import KEY_ROTATED, Leaf
from ledger.log import Ledger, writing

PENDING_DIR: Final = "pending"
PENDING_DIR_MODE: Final = 0o700


class Keyring:
    """The keys folder of one station; ``origin`` names its key in signed notes."""

    def __init__(self, keys_dir: Path, origin: str) -> None:
        check_key_name(origin)
        self.keys_dir = keys_dir
        self.origin = origin
        self.note = LastSignedNote(keys_dir / LAST_SIGNED_NAME)

    @property
    def public_path(self) -> Path:
        return self.keys_dir / PUBLIC_NAME

    @property
    def private_path(self) -> Path:
        return self.keys_dir / PRIVATE_NAME

    @property
    def pending_path(self) -> Path:
        return self.keys_dir / PENDING_DIR / PRIVATE_NAME

    def verifier(self) -> VerifierKey:
        """The public key as it is published (read from ``public_path``, no private key)."""
        return read_public_key(self.public_path).for_name(self.origin)

    def verifier_text(self) -> str:
        """The signed-note verifier key, ``name+hash+base64``."""
        return self.verifier().text()

    def fingerprint(self) -> str:
        """SHA-256 of the raw public key, hex in groups of four, for people to compare."""
        return self.verifier().fingerprint()

    def last_signed(self) -> str | None:
        """The newest committed checkpoint note kept beside the key (promoted notes only)."""
        return self.note.text()

    def open(self, ledger: Ledger) -> StationKey:
        """Settle the folder and return the station key, made if the station has none."""
        with writing_or_rollback(ledger.conn, "keyring_open") as owned:
            self._recover(ledger, owned)
            return self._current(ledger)

    def sign(self, ledger: Ledger, extra_signers: Sequence[StationKey] = ()) -> Anchor:
        """Sign the tree head with the station key (and ``extra_signers``); keep the note."""
        with writing_or_rollback(ledger.conn, "keyring_sign") as owned:
            self._recover(ledger, owned)
            key = self._current(ledger)
            anchor = make_checkpoint(ledger, [key, *extra_signers], last_signed_file=self.note.path)
        if owned:
            after_step("sign.committed")
            self._settle_after_commit(ledger)
        return anchor

    def rotate(self, ledger: Ledger) -> tuple[StationKey, StationKey, Anchor]:
        """Replace the station key: (retired key, new key, the checkpoint both signed).

        The checkpoint carrying both signatures lets an auditor holding either key trust
        the other.
        """
        if ledger.conn.in_transaction:
            raise LedgerStateError(
                "rotate the station key outside any open transaction: its steps commit on their own"
            )
        with writing_or_rollback(ledger.conn, "keyring_rotate"):
            self._recover(ledger, True)
            old = self._current(ledger)
            new = StationKey.generate(self.origin)
            self._save_pending(new)
            try:
                ledger.append(
                    KEY_ROTATED, {"old_key": old.verifier.text(), "new_key": new.verifier.text()}
                )
                anchor = make_checkpoint(ledger, [old, new], last_signed_file=self.note.path)
            except BaseException:
                self._drop_pending()
                raise
        after_step("rotate.committed")
        self._settle_after_commit(ledger)
        return old, new, anchor

    # --- settling, under the write lock ---------------------------------------------------

    def _settle_after_commit(self, ledger: Ledger) -> None:
        # Best effort: without the lock the folder stays as a crash right after the COMMIT
        # would leave it, which the next open settles.
        with suppress(sqlite3.OperationalError), writing(ledger.conn, "keyring_settle"):
            self._recover(ledger, True)

    def _recover(self, ledger: Ledger, own_view: bool) -> None:
        prepare_folder(self.keys_dir)
        for public in [*self.keys_dir.glob("*.pub.pem"), self.note.path, self.note.pending]:
            set_mode(public, PUBLIC_MODE)
        set_mode(self.private_path, PRIVATE_MODE)
        sweep_tmp(self.keys_dir)
        self.note.settle(ledger.conn, own_view=own_view)
        self._recover_rotation(ledger)

    def _recover_rotation(self, ledger: Ledger) -> None:
        if not self.pending_path.parent.exists():
            return
        try:
            pending = StationKey.load_file(self.pending_path, self.origin)
        except StationKeyError:
            if self.pending_path.exists():
                # Unreadable, not absent: keep it. If the ledger names it, the check of
                # the station key says so; a later rotation writes over it.
                return
            self._drop_pending()
            return
        rotation = _newest_rotation(ledger)
        if rotation is not None and _names(rotation, "new_key", pending.verifier.public):
            self._finish_rotation(VerifierKey.from_text(str(rotation.body["old_key"])), pending)
        else:
            self._drop_pending()

    def _finish_rotation(self, old: VerifierKey, new: StationKey) -> None:
        retired = self.keys_dir / f"station.{old.hash.hex()}.pub.pem"
        write_atomic(retired, old.pem(), PUBLIC_MODE)
        after_step("rotate.retired-public-saved")
        write_atomic(self.private_path, new.private_pem(), PRIVATE_MODE)
        after_step("rotate.private-installed")
        write_atomic(self.public_path, new.verifier.pem(), PUBLIC_MODE)
        after_step("rotate.public-installed")
        self._drop_pending()
        after_step("rotate.pending-removed")

    def _save_pending(self, key: StationKey) -> None:
        folder = self.pending_path.parent
        folder.mkdir(mode=PENDING_DIR_MODE, exist_ok=True)
        set_mode(folder, PENDING_DIR_MODE)
        fsync_dir(self.keys_dir)
        write_atomic(self.pending_path, key.private_pem(), PRIVATE_MODE)
        after_step("rotate.pending-key-saved")

    def _drop_pending(self) -> None:
        folder = self.pending_path.parent
        if not folder.exists():
            return
        for leftover in folder.iterdir():
            leftover.unlink(missing_ok=True)
        with suppress(FileNotFoundError):
            folder.rmdir()
        fsync_dir(self.keys_dir)

    def _current(self, ledger: Ledger) -> StationKey:
        if not self.private_path.exists():
            signed = latest_checkpoint(ledger.conn)
            if signed is not None:
                raise StationKeyError(
                    f"no station key in {self.keys_dir}, but checkpoints up to size "
                    f"{signed.size} were signed with one: restore the keys folder from the "
                    "newest backup (a new key would not be trusted)"
                )
        key = StationKey.load_or_create(self.keys_dir, self.origin)
        try:
            published = self.public_path.read_bytes()
        except FileNotFoundError:
            published = b""
        if published != key.verifier.pem():
            write_atomic(self.public_path, key.verifier.pem(), PUBLIC_MODE)
        rotation = _newest_rotation(ledger)
        if rotation is not None and not _names(rotation, "new_key", key.verifier.public):
            raise StationKeyError(
                f"the ledger rotated the station key to {rotation.body['new_key']} (leaf "
                f"{rotation.index}) but {self.private_path} holds {key.verifier.text()}: "
                "restore the keys folder from the newest backup; a retired key signs nothing"
            )
        return key


def _newest_rotation(ledger: Ledger) -> Leaf | None:
    found = ledger.leaves_of_kind(KEY_ROTATED, newest_first=True, limit=1)
    return found[0] if found else None


def _names(rotation: Leaf, field: str, public: bytes) -> bool:
    try:
        return VerifierKey.from_text(str(rotation.body[field])).public == public
    except StationKeyError:
        return False


def rotate_key(
    ledger: Ledger, old: StationKey, keys_dir: Path, *, last_signed_file: Path | None = None
) -> tuple[StationKey, Anchor]:
    """The former entry point: ``Keyring(keys_dir, old.name).rotate(ledger)``, refusing
    an ``old`` key that is not the station's (the note is always ``keys_dir``'s)."""
    keyring = Keyring(keys_dir, old.name)
    if last_signed_file is not None and last_signed_file != keyring.note.path:
        raise LedgerStateError(f"the last signed note lives in {keyring.note.path}")
    if keyring.open(ledger).verifier != old.verifier:
        raise StationKeyError(f"the key given is not the station key in {keys_dir}")
    _, new, anchor = keyring.rotate(ledger)
    return new, anchor
