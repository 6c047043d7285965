"""The vault: append-only ledger, Merkle log, checkpoints, proofs, verifier, export."""
