"""The Merkle tree, proofs, verifier key and signed checkpoint against Go's sumdb vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.database import open_station_db
from ledger import CheckpointError, ProofError, StationKey
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.keys import VerifierKey
from ledger.leaf import leaf_hash
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from ledger.tree import StoredTree

# A copy of ../shared/testdata/transparency-vectors.json (Go's sumdb/tlog and sumdb/note),
# kept beside the tests so they run from a plain checkout.
VECTORS = json.loads((Path(__file__).parent / "transparency-vectors.json").read_text())
LEAVES = [leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots_hex_by_size"]]


@pytest.fixture
def tree(tmp_path: Path) -> StoredTree:
    stored = StoredTree(open_station_db(tmp_path / "station.db"))
    stored.extend(0, LEAVES[:3])
    stored.extend(3, LEAVES[3:])
    return stored


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert ROOTS[0] == EMPTY_ROOT


def test_stored_tree_gives_the_root_of_every_size(tree: StoredTree) -> None:
    assert [tree.root(n) for n in range(len(ROOTS))] == ROOTS


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}of{c['size']}")
def test_inclusion_proofs_match_and_verify(tree: StoredTree, case: dict[str, object]) -> None:
    index, size = int(case["index"]), int(case["size"])  # type: ignore[call-overload]
    path = tree.inclusion_proof(index, size)
    assert [p.hex() for p in path] == case["path_hex"]
    verify_inclusion(LEAVES[index], index, size, path, ROOTS[size])
    if path:
        bad = [*path[:-1], bytes(32)]
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], index, size, bad, ROOTS[size])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, size, path, ROOTS[size - 1])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[(index + 1) % 8], index, size, path, ROOTS[size])


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}to{c['new_size']}"
)
def test_consistency_proofs_match_and_verify(tree: StoredTree, case: dict[str, object]) -> None:
    old, new = int(case["old_size"]), int(case["new_size"])  # type: ignore[call-overload]
    proof = tree.consistency_proof(old, new)
    assert [p.hex() for p in proof] == case["proof_hex"]
    verify_consistency(old, new, proof, ROOTS[old], ROOTS[new])
    forged_old = bytes(32)
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof, forged_old, ROOTS[new])


def test_verifier_key_and_signed_checkpoint_from_go() -> None:
    key = VerifierKey.from_text(VECTORS["note_verifier_key"])
    assert key.public.hex() == VECTORS["ed25519_public_hex"]
    checkpoint, good = open_checkpoint(VECTORS["signed_checkpoint_8"], [key])
    assert (checkpoint.size, checkpoint.root) == (8, ROOTS[8])
    assert good == [key]
    signer = StationKey.from_seed(bytes.fromhex(VECTORS["ed25519_seed_hex"]), key.name)
    assert signer.verifier.text() == VECTORS["note_verifier_key"]
    # Ed25519 is deterministic: our note is byte for byte Go's.
    assert sign_checkpoint(checkpoint, [signer]) == VECTORS["signed_checkpoint_8"]


def test_checkpoint_with_changed_size_or_unknown_key_is_refused() -> None:
    key = VerifierKey.from_text(VECTORS["note_verifier_key"])
    text = VECTORS["signed_checkpoint_8"]
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_checkpoint(text.replace("\n8\n", "\n9\n", 1), [key])
    other = StationKey.generate(key.name).verifier
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_checkpoint(text, [other])
    forged = sign_checkpoint(Checkpoint(key.name, 8, ROOTS[7]), [StationKey.generate(key.name)])
    with pytest.raises(CheckpointError):
        open_checkpoint(forged, [key])


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4), data=st.data())
def test_any_growth_gives_proofs_that_verify(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject
) -> None:
    stored = StoredTree(open_station_db(tmp_path_factory.mktemp("t") / "station.db"))
    hashes: list[bytes] = []
    for grow in sizes:
        batch = [leaf_hash(f"{len(hashes) + i}".encode()) for i in range(grow)]
        stored.extend(len(hashes), batch)
        hashes += batch
    n = len(hashes)
    old = data.draw(st.integers(0, n))
    index = data.draw(st.integers(0, n - 1))
    assert stored.root(n) == root_of(hashes)
    verify_inclusion(hashes[index], index, n, stored.inclusion_proof(index, n), root_of(hashes))
    assert stored.inclusion_proof(index, n) == inclusion_path(
        index, n, lambda a, b: root_of(hashes[a:b])
    )
    proof = stored.consistency_proof(old, n)
    assert proof == consistency_path(old, n, lambda a, b: root_of(hashes[a:b]))
    verify_consistency(old, n, proof, root_of(hashes[:old]), root_of(hashes))
