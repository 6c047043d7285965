"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs (SHA-256, 0x00 leaf, 0x01 node).

Pure functions: proof *generation* takes a ``subtree`` callable giving MTH(D[start:end])
so the same code serves the SQLite-backed tree and in-memory lists; proof *verification*
needs nothing but hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

from ledger.errors import ProofError

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (RFC 6962's k), for size >= 2."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (in memory; for tests and small trees)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _list_subtree(leaf_hashes)(0, len(leaf_hashes))


def _list_subtree(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    def subtree(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaf_hashes[start]
        k = split_point(end - start)
        return node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): from the leaf's sibling up to the root's child."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[0:new_size]); empty when either size is 0 or both equal."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    m, start, end, whole = old_size, 0, new_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless ``leaf`` (a leaf hash) is in the tree."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != 32:
            raise ProofError("a proof hash is not 32 bytes")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with this root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless the new tree extends the old one."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if any(len(p) != 32 for p in proof):
        raise ProofError("a proof hash is not 32 bytes")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}: a fork")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"the tree does not extend the checkpoint of size {old_size}: a fork")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the root of size {new_size}")
