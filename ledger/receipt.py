"""C2SP tlog-proof files: offline proof that a leaf is in a signed checkpoint.

::

    c2sp.org/tlog-proof@v1
    extra <base64 leaf bytes>      (receipts only: the proof then stands alone)
    index <N>
    <base64 audit path hash, leaf's sibling first>...

    <signed checkpoint note>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.anchor import StoredCheckpoint
from ledger.checkpoint import Checkpoint, SignedNote, b64, open_checkpoint, unb64
from ledger.errors import CheckpointError, LeafFormatError, LedgerStateError, ProofError
from ledger.keys import PublicKeyFile, VerifierKey, key_fingerprint
from ledger.leaf import CLIP_INGESTED, Leaf, leaf_hash, parse_leaf
from ledger.log import Ledger
from ledger.merkle import verify_inclusion
from ledger.rules import LeafRules, station_of_origin

PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class TlogProof:
    index: int
    path: tuple[bytes, ...]
    note: str
    extra: bytes | None = None

    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64(h) for h in self.path)
        return "\n".join(lines) + "\n\n" + self.note

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or lines[0] != PROOF_HEADER:
            raise ProofError(f"not a tlog-proof: the first line must be {PROOF_HEADER}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _unb64(rest.pop(0)[len("extra ") :], "the extra data")
        if not rest or not rest[0].startswith("index "):
            raise ProofError("a tlog-proof needs an 'index N' line")
        number = rest.pop(0)[len("index ") :]
        if not number.isdigit() or (number != "0" and number.startswith("0")):
            raise ProofError(f"tlog-proof index {number!r} is not a decimal number")
        path = tuple(_unb64(line, "an audit path hash") for line in rest)
        if any(len(h) != 32 for h in path):
            raise ProofError("an audit path hash is not 32 bytes")
        return cls(int(number), path, note, extra)


def _unb64(text: str, what: str) -> bytes:
    try:
        return unb64(text, what)
    except CheckpointError as exc:
        raise ProofError(str(exc)) from None


def covering_checkpoint(checkpoints: Sequence[StoredCheckpoint], index: int) -> StoredCheckpoint:
    """The newest stored checkpoint whose tree holds leaf ``index``."""
    for stored in reversed(checkpoints):
        if stored.size > index:
            return stored
    raise LedgerStateError(f"no signed checkpoint covers leaf {index} yet: make a checkpoint first")


def make_proof(
    ledger: Ledger, index: int, checkpoint: StoredCheckpoint, *, with_leaf: bool = False
) -> TlogProof:
    path = tuple(ledger.inclusion_proof(index, checkpoint.size))
    extra = ledger.leaf(index).data if with_leaf else None
    return TlogProof(index, path, checkpoint.note, extra)


def clip_receipt(
    ledger: Ledger, clip_id: str, checkpoints: Sequence[StoredCheckpoint]
) -> TlogProof:
    """The receipt of a clip: its clip.ingested leaf's bytes (extra) and inclusion proof."""
    ingested = [leaf for leaf in ledger.find(clip_id=clip_id) if leaf.kind == CLIP_INGESTED]
    if not ingested:
        raise LedgerStateError(f"no clip.ingested leaf names clip {clip_id!r}: check the id")
    leaf = ingested[0]
    return make_proof(
        ledger, leaf.index, covering_checkpoint(checkpoints, leaf.index), with_leaf=True
    )


def verify_proof(
    text: str, keys: Sequence[VerifierKey], leaf_bytes: bytes | None = None
) -> tuple[Leaf, Checkpoint]:
    """Check a tlog-proof offline: signature, inclusion, and the leaf's own index.

    ``leaf_bytes`` defaults to the proof's extra data (a receipt). Raises ProofError,
    CheckpointError or LeafFormatError naming what is wrong.
    """
    proof = TlogProof.parse(text)
    data = leaf_bytes if leaf_bytes is not None else proof.extra
    if data is None:
        raise ProofError("the proof carries no leaf: give the leaf's bytes beside it")
    checkpoint, _keys = open_checkpoint(proof.note, keys)
    try:
        leaf = parse_leaf(data)
    except LeafFormatError as exc:
        raise LeafFormatError(
            f"the leaf beside proof {proof.index} is not canonical: {exc}"
        ) from None
    if leaf.index != proof.index:
        raise ProofError(f"the leaf says index {leaf.index}, the proof says {proof.index}")
    verify_inclusion(leaf_hash(data), proof.index, checkpoint.size, proof.path, checkpoint.root)
    return leaf, checkpoint


@dataclass
class ReceiptReport:
    """What ``evidock verify-proof`` found: the leaf (if any) and its signed checkpoint."""

    index: int
    checkpoint: Checkpoint
    key: str
    key_fingerprint: str
    leaf: Leaf | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.leaf is not None and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": 0 if self.ok else 1,
            "problems": self.problems,
            "index": self.index,
            "leaf_hash": None if self.leaf is None else self.leaf.hash_hex,
            "kind": None if self.leaf is None else self.leaf.kind,
            "at": None if self.leaf is None else self.leaf.at,
            "body": None if self.leaf is None else self.leaf.body,
            "checkpoint": {
                "origin": self.checkpoint.origin,
                "size": self.checkpoint.size,
                "root": self.checkpoint.root.hex(),
            },
            "key": self.key,
            "key_fingerprint": self.key_fingerprint,
        }

    def text(self) -> str:
        cp = self.checkpoint
        lines = [*self.problems]
        lines.append(
            f"checkpoint: {cp.origin}, size {cp.size}, root {cp.root.hex()}, "
            f"signed by {self.key} (fingerprint {self.key_fingerprint})"
        )
        if self.leaf is not None:
            body = self.leaf.body
            what = f"clip {body['clip_id']} " if isinstance(body.get("clip_id"), str) else ""
            lines.append(
                f"leaf {self.index}: {self.leaf.kind} {what}at {self.leaf.at}, "
                f"leaf hash {self.leaf.hash_hex}"
            )
        if self.ok:
            lines.append(
                f"OK: leaf {self.index} is in the station's log as of checkpoint {cp.size}, "
                "signed by the key you gave; compare the checkpoint with an anchor to know "
                "the station did not sign another history"
            )
        else:
            lines.append(f"FAILED: {len(self.problems)} problem(s)")
        return "\n".join(lines)


def read_receipt(text: str) -> tuple[TlogProof, Checkpoint]:
    """Parse a receipt and its checkpoint; ProofError / CheckpointError if it is not one.

    The signature is not checked here (``check_receipt`` does).
    """
    proof = TlogProof.parse(text)
    checkpoint = Checkpoint.parse_body(SignedNote.parse(proof.note).body)
    return proof, checkpoint


def check_receipt(text: str, key: PublicKeyFile, leaf_bytes: bytes | None = None) -> ReceiptReport:
    """Check a receipt offline against ``key``: the signature, the leaf's rules and its
    inclusion. Raises ProofError / CheckpointError when ``text`` is not a receipt at all.

    With no leaf bytes (none in the receipt, none given) only the signature is checked and
    the report's ``leaf`` is None.
    """
    proof, checkpoint = read_receipt(text)
    verifier = key.for_name(checkpoint.origin)
    report = ReceiptReport(proof.index, checkpoint, verifier.text(), key_fingerprint(key.public))
    if not SignedNote.parse(proof.note).verified_by([verifier]):
        report.problems.append(
            f"checkpoint {checkpoint.size}: no valid signature by the key you gave "
            f"(fingerprint {report.key_fingerprint}): a forged receipt, or another station's"
        )
        return report
    data = leaf_bytes if leaf_bytes is not None else proof.extra
    if data is None:
        return report
    station = station_of_origin(checkpoint.origin)
    rules = LeafRules(
        lambda _category, line: report.problems.append(line),
        station,
        f"the station of the checkpoint's origin {checkpoint.origin}",
    )
    obj, _sound = rules.check(proof.index, data)
    if obj is None:
        return report
    try:
        verify_inclusion(leaf_hash(data), proof.index, checkpoint.size, proof.path, checkpoint.root)
    except ProofError as exc:
        report.problems.append(f"leaf {proof.index}: {exc}")
    report.leaf = parse_leaf(data)
    return report
