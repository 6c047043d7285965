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
        pin.source = f"pinned by anchor {pinning[0][0]}"
    _compare_trees(pin, checkpoint, own, pinning)
    return pin


def _compare_trees(
    pin: Pin,
    checkpoint: Checkpoint,
    own: Anchor | None,
    pinning: Sequence[tuple[str, Checkpoint, Anchor]],
) -> None:
    by_size = {cp.size: (label, cp) for label, cp, _ in pinning}
    for label, cp, anchor in pinning:
        link = None
        try:
            if cp.size == checkpoint.size:
                link = "the same tree"
                if cp.root != checkpoint.root:
                    raise ProofError("same size, another root")
            elif own is not None and own.previous_size == cp.size:
                link = "an older tree the package's extends (the package's consistency proof)"
                verify_consistency(cp.size, checkpoint.size, own.proof, cp.root, checkpoint.root)
            elif anchor.previous_size == checkpoint.size:
                link = "a newer tree that extends the package's (the anchor's consistency proof)"
                verify_consistency(checkpoint.size, cp.size, anchor.proof, checkpoint.root, cp.root)
        except ProofError as exc:
            pin.problems.append(
                f"anchor {label} (size {cp.size}) disagrees with the package's checkpoint "
                f"{checkpoint.size}: {exc}: the station signed two histories"
            )
            continue
        if link is not None:
            pin.notes.append(f"anchor {label} (size {cp.size}) holds {link}: checked")
        else:
            pin.notes.append(
                f"anchor {label} (size {cp.size}): no consistency proof links it to the "
                f"package's checkpoint {checkpoint.size}: trees not compared"
            )
        previous = by_size.get(anchor.previous_size)
        if previous is not None and anchor.previous_size != cp.size:
            try:
                verify_consistency(
                    previous[1].size, cp.size, anchor.proof, previous[1].root, cp.root
                )
            except ProofError as exc:
                pin.problems.append(
                    f"anchor {label}: not consistent with anchor {previous[0]}: {exc}: "
                    "the station signed two histories"
                )
