"""Trusted timestamps in an evidence package, and their offline check.

::

    OUT/timestamps/checkpoint-<size>.anchor        an anchor the station had timestamped
    OUT/timestamps/checkpoint-<size>.anchor.tsr    the TSA's token over it (DER, as received)
    OUT/timestamps/checkpoint-<size>.anchor.proof  its consistency proof to the package's
                                                   checkpoint (one base64 hash a line)
    OUT/timestamps/tsa-ca.pem                      the CA the station checked the tokens with

A token proves that its anchor existed at genTime; the proof shows that the package's
checkpoint extends that anchor, so every leaf of the package with an index below the
anchor's size existed then too. ``openssl ts -verify -data X.anchor -in X.anchor.tsr
-CAfile tsa-ca.pem`` checks a token by hand. The tokens are the station's working
catalogue (``checkpoint_timestamps``, kept by ``agent.timestamping``), read here only.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ledger.anchor import Anchor
from ledger.checkpoint import Checkpoint, SignedNote, b64, unb64
from ledger.errors import LedgerError
from ledger.keys import VerifierKey
from ledger.log import Ledger
from ledger.merkle import verify_consistency
from ledger.timestamp import TOKEN_SUFFIX, TimestampError, check_token, read_certificates

TIMESTAMPS: Final = "timestamps"
PROOF_SUFFIX: Final = ".proof"
CA_FILE: Final = "tsa-ca.pem"


def write_timestamps(ledger: Ledger, out: Path, size: int) -> int:
    """Put every kept token of an anchor of at most ``size`` leaves into ``out``, with
    its anchor and the proof that the tree of ``size`` extends it; how many."""
    try:
        rows = ledger.conn.execute(
            "SELECT anchor_name, tree_size, anchor, token, tsa_ca FROM checkpoint_timestamps"
            " WHERE token IS NOT NULL AND tree_size <= ? ORDER BY tree_size",
            (size,),
        ).fetchall()
    except sqlite3.OperationalError:  # a station without timestamps
        return 0
    if not rows:
        return 0
    folder = out / TIMESTAMPS
    folder.mkdir()
    cas: dict[str, None] = {}
    for name, tree_size, text, token, ca in rows:
        (folder / name).write_text(text, "utf-8")
        (folder / f"{name}{TOKEN_SUFFIX}").write_bytes(bytes(token))
        proof = ledger.consistency_proof(int(tree_size), size)
        (folder / f"{name}{PROOF_SUFFIX}").write_text("".join(b64(h) + "\n" for h in proof))
        if ca:
            cas.setdefault(str(ca).strip() + "\n")
    (folder / CA_FILE).write_text("".join(cas), "utf-8")
    return len(rows)


def check_timestamps(
    folder: Path, key: VerifierKey, checkpoint: Checkpoint, problems: list[str], notes: list[str]
) -> None:
    """Check the package's tokens: each over its anchor, signed by a TSA chaining to the
    package's ``tsa-ca.pem``; each anchor signed by the package key and extended by the
    package's checkpoint. A bad one is a problem; what each proves is a note."""
    where = folder / TIMESTAMPS
    if not where.is_dir():
        return
    try:
        roots = read_certificates(where / CA_FILE)
    except TimestampError as exc:
        problems.append(f"{TIMESTAMPS}/{CA_FILE}: {exc}")
        return
    # as ``openssl x509 -noout -fingerprint -sha256`` prints it
    prints = ", ".join(
        hashlib.sha256(c.public_bytes(Encoding.DER)).digest().hex(":").upper() for c in roots
    )
    for anchor_path in sorted(where.glob("*.anchor")):
        label = f"{TIMESTAMPS}/{anchor_path.name}"
        try:
            line = _check_one(anchor_path, key, checkpoint, roots)
        except (OSError, UnicodeDecodeError, LedgerError) as exc:
            problems.append(f"{label}: trusted timestamp INVALID: {exc}")
            continue
        notes.append(f"{label}: {line}")
    notes.append(
        f"the TSA's CA came from the package ({TIMESTAMPS}/{CA_FILE}, SHA-256 {prints}): "
        "compare it with the CA the TSA publishes"
    )


def _check_one(
    anchor_path: Path, key: VerifierKey, checkpoint: Checkpoint, roots: list[x509.Certificate]
) -> str:
    data = anchor_path.read_bytes()
    anchor = Anchor.parse(data.decode("utf-8"))
    if not SignedNote.parse(anchor.note).verified_by([key]):
        raise TimestampError("its anchor is not signed by the package's key")
    held = anchor.checkpoint
    if held.origin != checkpoint.origin:
        raise TimestampError(f"its anchor is of {held.origin}, not {checkpoint.origin}")
    proof_text = anchor_path.with_name(anchor_path.name + PROOF_SUFFIX).read_text("utf-8")
    proof = [unb64(line, "a consistency proof hash") for line in proof_text.split()]
    verify_consistency(held.size, checkpoint.size, proof, held.root, checkpoint.root)
    token = anchor_path.with_name(anchor_path.name + TOKEN_SUFFIX).read_bytes()
    check = check_token(token, data, roots)
    return (
        f"leaves 0-{held.size - 1} existed at {check.gen_time_text()} (timestamped by {check.tsa})"
    )
