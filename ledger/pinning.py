"""Pinning a package's key from outside the package: the published key, or anchors.

An anchor pins the key when it is validly signed by that key and its origin is the
package's station: the auditor got it from central storage, where the station cannot
rewrite what it handed over. Where the sizes allow, the anchor's tree is compared with
the package checkpoint's: equal sizes need equal roots; an older anchor needs the
package's consistency proof (``checkpoint.anchor``), a newer one its own proof from
the package's size. Anchors are also checked against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ledger.anchor import Anchor
from ledger.checkpoint import Checkpoint, SignedNote
from ledger.errors import CheckpointError, ProofError
from ledger.keys import PublicKeyFile, VerifierKey, key_fingerprint
from ledger.merkle import verify_consistency

PINNED_BY_PUBKEY: Final = "pinned by --pubkey"


@dataclass
class Pin:
    """Where the key came from (None: not pinned), problems found, and notes."""

    source: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pin_key(
    key: VerifierKey,
    checkpoint: Checkpoint,
    own: Anchor | None,
    pubkey: PublicKeyFile | None,
    anchors: Sequence[tuple[str, Anchor]],
) -> Pin:
    """Pin ``key`` (the package's) with ``pubkey`` or ``anchors`` ((label, anchor) pairs)."""
    pin = Pin()
    if pubkey is not None:
        if pubkey.public == key.public:
            pin.source = PINNED_BY_PUBKEY
        else:
            pin.problems.append(
                f"the package is signed by {key.text()} (fingerprint "
                f"{key_fingerprint(key.public)}), not by the public key you gave "
                f"(fingerprint {key_fingerprint(pubkey.public)})"
            )
    pinning: list[tuple[str, Checkpoint, Anchor]] = []
    for label, anchor in anchors:
        try:
            signed = SignedNote.parse(anchor.note)
            cp = Checkpoint.parse_body(signed.body)
        except CheckpointError as exc:
            pin.problems.append(f"anchor {label}: malformed: {exc}")
            continue
        if cp.origin != checkpoint.origin:
            pin.notes.append(
                f"anchor {label}: origin {cp.origin!r} is not the package's "
                f"{checkpoint.origin!r}: it does not pin the key"
            )
        elif not signed.verified_by([key]):
            pin.notes.append(
                f"anchor {label} (size {cp.size}): not signed by the package's key: it does "
                "not pin it (a forged package, or one signed after a key rotation)"
            )
        else:
            pinning.append((label, cp, anchor))
    if pinning and pin.source is None:
        newest = max(pinning, key=lambda item: item[1].size)
        pin.source = f"pinned by anchor {newest[0]}"
    _compare_trees(pin, checkpoint, own, pinning)
    return pin


def _compare_trees(
    pin: Pin,
    checkpoint: Checkpoint,
    own: Anchor | None,
    pinning: Sequence[tuple[str, Checkpoint, Anchor]],
) -> None:
    """Check every consistency proof at hand between the package's tree and the anchors'
    (tree sizes are the nodes, checked proofs the edges); say which anchors the checked
    proofs connect to the package's tree, and which could not be compared."""
    trees: dict[int, tuple[str, bytes]] = {checkpoint.size: ("the package", checkpoint.root)}
    edges: dict[int, set[int]] = {}

    def check(old: int, new: int, proof: Sequence[bytes], what: str) -> None:
        try:
            verify_consistency(old, new, proof, trees[old][1], trees[new][1])
        except ProofError as exc:
            pin.problems.append(f"{what}: {exc}: the station signed two histories")
            return
        edges.setdefault(old, set()).add(new)
        edges.setdefault(new, set()).add(old)

    for label, cp, _ in pinning:
        seen = trees.setdefault(cp.size, (f"anchor {label}", cp.root))
        if seen[1] != cp.root:
            pin.problems.append(
                f"anchor {label} and {seen[0]} are both of size {cp.size} with different roots: "
                "the station signed two histories"
            )
    if own is not None and own.previous_size in trees and own.previous_size != checkpoint.size:
        check(own.previous_size, checkpoint.size, own.proof, "the package's checkpoint.anchor")
    for label, cp, anchor in pinning:
        if anchor.previous_size in trees and anchor.previous_size != cp.size:
            check(anchor.previous_size, cp.size, anchor.proof, f"anchor {label}")
    linked, todo = {checkpoint.size}, [checkpoint.size]
    while todo:
        for near in edges.get(todo.pop(), set()) - linked:
            linked.add(near)
            todo.append(near)
    compared = sorted({cp.size for _, cp, _ in pinning} & linked)
    apart = [label for label, cp, _ in pinning if cp.size not in linked]
    if compared:
        pin.notes.append(
            f"{len(compared)} anchor tree(s) of size {compared[0]}..{compared[-1]} agree with the "
            f"package's checkpoint {checkpoint.size} through checked consistency proofs"
        )
    if apart:
        shown = ", ".join(apart[:3]) + (f" and {len(apart) - 3} more" if len(apart) > 3 else "")
        pin.notes.append(
            f"{len(apart)} anchor(s) not compared with the package's tree (no consistency proof "
            f"links them to it): {shown}"
        )
