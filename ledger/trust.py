"""Which keys may sign which checkpoints: the given key and the keys it handed over to.

A ``key.rotated`` leaf names the old and the new key. It counts once a checkpoint that
covers it (with the root the leaves give) is signed by a key already trusted: the old key
is then trusted up to the rotation, the new one from the rotation on. Starting from the
newest key works too, because the rotation's checkpoint carries both signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, SignedNote
from ledger.errors import CheckpointError, StationKeyError
from ledger.keys import VerifierKey


@dataclass(frozen=True)
class TrustedKey:
    key: VerifierKey
    min_size: int
    max_size: int | None


def keys_for_size(trusted: Sequence[TrustedKey], size: int) -> list[VerifierKey]:
    return [
        t.key for t in trusted if t.min_size <= size and (t.max_size is None or size <= t.max_size)
    ]


def trusted_keys(
    given: VerifierKey,
    rotations: Sequence[tuple[int, str, str]],
    roots: dict[int, bytes],
    notes: Sequence[str],
) -> list[TrustedKey]:
    """Close the given key over the rotations (leaf index, old key, new key) it vouches for.

    ``roots`` are the roots the leaves give at the checkpoint sizes; ``notes`` every signed
    checkpoint at hand (stored and anchors).
    """
    trusted = [TrustedKey(given, 0, None)]
    used: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index, old_text, new_text in rotations:
            if index in used:
                continue
            try:
                old, new = VerifierKey.from_text(old_text), VerifierKey.from_text(new_text)
            except StationKeyError:
                continue
            if any(_vouches(note, index, roots, trusted) for note in notes):
                # A retired key signs nothing after its rotation, even the key we were given.
                trusted = [
                    TrustedKey(t.key, t.min_size, index + 1) if t.key.public == old.public else t
                    for t in trusted
                ]
                trusted += [TrustedKey(old, 0, index + 1), TrustedKey(new, index + 1, None)]
                used.add(index)
                changed = True
    return trusted


def _vouches(note: str, index: int, roots: dict[int, bytes], trusted: list[TrustedKey]) -> bool:
    try:
        signed = SignedNote.parse(note)
        cp = Checkpoint.parse_body(signed.body)
    except CheckpointError:
        return False
    if cp.size <= index or roots.get(cp.size) != cp.root:
        return False
    return bool(signed.verified_by(keys_for_size(trusted, cp.size)))
