"""Attacks on a real station data dir; the verifier must catch each one and say what.

The attacker here has the database file and the evidence store, drops the append-only
triggers, and in some attacks even holds the station key. What it cannot touch are the
anchors already handed over, and (for most attacks) the public key the auditor holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from ledger_fixtures import STATION, Station, StepClock, make_station, run_cli

from agent.database import open_station_db
from ledger import (
    LeafFormatError,
    Ledger,
    ProofError,
    PublicKeyFile,
    StationKey,
    clip_receipt,
    origin_for,
)
from ledger.anchor import make_checkpoint, stored_checkpoints
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.leaf import leaf_hash
from ledger.merkle import verify_inclusion
from ledger.receipt import TlogProof, verify_proof


@pytest.fixture
def station(tmp_path: Path) -> Station:
    made = make_station(tmp_path)
    assert made.verify().ok, made.verify().problems
    return made


def tamper(station: Station, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(station.db)
    for trigger in (
        "leaves_no_update",
        "leaves_no_delete",
        "nodes_no_update",
        "checkpoints_no_update",
    ):
        conn.execute(f"DROP TRIGGER IF EXISTS ledger_{trigger}")
    for statement in statements:
        conn.execute(statement, params if "?" in statement else ())
    conn.commit()
    conn.close()


def leaf_data(station: Station, index: int) -> bytes:
    conn = sqlite3.connect(station.db)
    data = conn.execute("SELECT data FROM ledger_leaves WHERE idx = ?", (index,)).fetchone()[0]
    conn.close()
    return bytes(data)


def problems(station: Station, **kwargs: object) -> str:
    report = station.verify(**kwargs)  # type: ignore[arg-type]
    assert not report.ok, "the attack went unnoticed"
    return "\n".join(report.problems)


def rewrite_from(station: Station, start: int, changes: dict[int, bytes]) -> None:
    """Re-chain leaves from ``start`` with ``changes`` and rebuild every Merkle node, as an
    attacker who knows the formats (but lacks the key) would."""
    conn = sqlite3.connect(station.db)
    conn.execute("DROP TRIGGER ledger_leaves_no_update")
    rows = conn.execute("SELECT idx, data FROM ledger_leaves ORDER BY idx").fetchall()
    prev = None
    for idx, data in rows:
        obj = json.loads(changes.get(idx, bytes(data)))
        if idx >= start and prev is not None:
            obj["prev"] = prev
        new = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        conn.execute("UPDATE ledger_leaves SET data = ? WHERE idx = ?", (new, idx))
        prev = leaf_hash(new).hex()
    conn.execute("DELETE FROM ledger_nodes")
    conn.commit()
    conn.close()
    conn2 = open_station_db(station.db)
    hashes = [
        leaf_hash(bytes(r[0])) for r in conn2.execute("SELECT data FROM ledger_leaves ORDER BY idx")
    ]
    from ledger.tree import StoredTree

    StoredTree(conn2).extend(0, hashes)
    conn2.close()


# --- the ledger -----------------------------------------------------------------------


def test_1_edited_leaf_without_new_hash(station: Station) -> None:
    data = leaf_data(station, 3).replace(b"DSJ-A1-0042", b"DSJ-A1-0099")
    tamper(station, "UPDATE ledger_leaves SET data = ? WHERE idx = 3", params=(data,))
    found = problems(station)
    assert "leaf 4: prev" in found and "chain is broken" in found
    assert "Merkle node (level 0, index 3)" in found
    assert "checkpoint 6: the leaves give another Merkle root" in found


def test_2_edited_leaf_with_rechained_hashes_and_rebuilt_nodes(station: Station) -> None:
    data = leaf_data(station, 3).replace(b"DSJ-A1-0042", b"DSJ-A1-0099")
    rewrite_from(station, 4, {3: data})
    found = problems(station)
    assert "chain" not in found and "Merkle node" not in found  # the rewrite is consistent...
    assert "stored checkpoint 6: the leaves give another Merkle root" in found  # ...but signed
    assert "anchor 15: the leaves give another Merkle root" in found


def test_3_deleted_leaf(station: Station) -> None:
    tamper(station, "DELETE FROM ledger_leaves WHERE idx = 8")
    found = problems(station)
    assert "leaf row 9 found where leaf 8 belongs" in found
    assert "leaf 8: says index 9" in found


def test_4_inserted_leaf(station: Station) -> None:
    extra = leaf_data(station, 5)
    tamper(
        station,
        "UPDATE ledger_leaves SET idx = idx + 100 WHERE idx >= 7",
        "UPDATE ledger_leaves SET idx = idx - 99 WHERE idx >= 100",
        "INSERT INTO ledger_leaves (idx, kind, data) VALUES (7, 'docking.closed', ?)",
        params=(extra,),
    )
    found = problems(station)
    assert "leaf 7: says index 5" in found
    assert "leaf 8: prev" in found


def test_5_swapped_leaves(station: Station) -> None:
    a, b = leaf_data(station, 3), leaf_data(station, 4)
    tamper(station, "UPDATE ledger_leaves SET data = ? WHERE idx = 3", params=(b,))
    tamper(station, "UPDATE ledger_leaves SET data = ? WHERE idx = 4", params=(a,))
    found = problems(station)
    assert "leaf 3: says index 4" in found and "leaf 4: says index 3" in found


def test_6_renumbered_leaves(station: Station) -> None:
    tamper(station, "UPDATE ledger_leaves SET idx = idx + 1000 WHERE idx >= 12")
    found = problems(station)
    assert "leaf row 1012 found where leaf 12 belongs" in found


def test_7_truncated_tail_below_an_anchor(station: Station) -> None:
    tamper(
        station,
        "DELETE FROM ledger_leaves WHERE idx >= 12",
        "DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > 12",
        "DELETE FROM ledger_checkpoints WHERE tree_size > 12",
    )
    found = problems(station)
    assert "anchor 15: the ledger has only 12 leaves" in found
    assert "Merkle node" not in found
    assert station.verify().anchored_size == 6


def test_8_database_restored_from_an_older_backup(station: Station, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    shutil.copy(station.db, backup)
    led = station.ledger()
    led.append(
        "clip.accessed",
        {"clip_id": "c3", "who": "a", "purpose": "p", "action": "view", "via": "api"},
    )
    station.checkpoint(led)
    led.conn.close()
    shutil.copy(backup, station.db)
    for suffix in ("-wal", "-shm"):
        Path(str(station.db) + suffix).unlink(missing_ok=True)
    found = problems(station)
    assert "anchor 16: the ledger has only 15 leaves" in found
    assert "restored from an older backup" in found


def test_9_forked_and_resigned_tail_is_caught_by_the_anchor(station: Station) -> None:
    """The attacker holds the station key: only an anchor handed over earlier can tell."""
    tamper(
        station,
        "DELETE FROM ledger_leaves WHERE idx >= 12",
        "DELETE FROM ledger_nodes",
        "DELETE FROM ledger_checkpoints WHERE tree_size > 6",
    )
    conn = open_station_db(station.db)
    from ledger.tree import StoredTree

    StoredTree(conn).extend(
        0,
        [
            leaf_hash(bytes(r[0]))
            for r in conn.execute("SELECT data FROM ledger_leaves ORDER BY idx")
        ],
    )
    led = Ledger(conn, STATION, clock=StepClock())
    for clip_id in ("c1", "c2", "c3", "c4", "c5"):
        led.append("clip.purged", {"clip_id": clip_id, "sha256": "0" * 64, "reason": "forged"})
    make_checkpoint(led, [station.key])
    conn.close()
    assert station.verify(anchors=[], store=False).ok  # alone, the re-signed ledger holds
    found = problems(station)
    assert "anchor 15: the leaves give another Merkle root" in found
    assert station.verify().anchored_size == 6


def test_10_edited_checkpoint(station: Station) -> None:
    conn = sqlite3.connect(station.db)
    note = conn.execute("SELECT note FROM ledger_checkpoints WHERE tree_size = 10").fetchone()
    conn.close()
    if note is None:
        note_row = stored_checkpoints(open_station_db(station.db))[1]
        size, text = note_row.size, note_row.note
    else:
        size, text = 10, note[0]
    edited = text.replace(f"\n{size}\n", f"\n{size - 1}\n", 1)
    tamper(
        station, "UPDATE ledger_checkpoints SET note = ? WHERE tree_size = ?", params=(edited, size)
    )
    found = problems(station)
    assert f"stored checkpoint {size - 1}: no valid signature" in found


def test_11_bad_signature_byte(station: Station) -> None:
    cp = stored_checkpoints(open_station_db(station.db))[0]
    body, sig_line = cp.note.rsplit("\n— ", 1)
    name, encoded = sig_line.split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 1
    bad = body + "\n— " + name + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    tamper(
        station, "UPDATE ledger_checkpoints SET note = ? WHERE tree_size = ?", params=(bad, cp.size)
    )
    assert f"stored checkpoint {cp.size}: no valid signature" in problems(station)


def test_12_checkpoint_signed_by_an_unknown_key(station: Station) -> None:
    cp = stored_checkpoints(open_station_db(station.db))[-1]
    stranger = StationKey.generate(origin_for(STATION))
    note = sign_checkpoint(Checkpoint(origin_for(STATION), cp.size, cp.root), [stranger])
    tamper(
        station,
        "UPDATE ledger_checkpoints SET note = ? WHERE tree_size = ?",
        params=(note, cp.size),
    )
    found = problems(station)
    assert f"stored checkpoint {cp.size}: no valid signature by the trusted key" in found
    assert stranger.verifier.hash.hex() in found
    # And the whole ledger against a key that is not the station's:
    assert "no valid signature" in problems(
        station,
        key=PublicKeyFile(stranger.verifier.public, None),
    )


def test_13_proof_with_an_altered_middle_element(station: Station) -> None:
    conn = open_station_db(station.db)
    receipt = clip_receipt(Ledger(conn, STATION), "c4", stored_checkpoints(conn))
    conn.close()
    verify_proof(receipt.text(), [station.key.verifier])
    path = list(receipt.path)
    middle = bytearray(path[len(path) // 2])
    middle[0] ^= 0x80
    path[len(path) // 2] = bytes(middle)
    altered = TlogProof(receipt.index, tuple(path), receipt.note, receipt.extra)
    with pytest.raises(ProofError, match="not in the tree"):
        verify_proof(altered.text(), [station.key.verifier])


def test_14_internal_node_presented_as_a_leaf(station: Station) -> None:
    """Second preimage: the 64 bytes of a node's children are not a leaf (0x00 vs 0x01)."""
    conn = open_station_db(station.db)
    led = Ledger(conn, STATION)
    size = stored_checkpoints(conn)[-1].size
    left, right = led.tree.node(0, 0), led.tree.node(0, 1)
    node_bytes = left + right
    # As a leaf of the level-1 tree the node sits at index 0; its path is the level-1 path.
    path = led.inclusion_proof(0, size)[1:]
    root = led.root(size)
    conn.close()
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(node_bytes), 0, (size + 1) // 2, path, root)
    with pytest.raises((ProofError, LeafFormatError)):
        proof = TlogProof(0, tuple(path), stored_checkpoints(open_station_db(station.db))[-1].note)
        verify_proof(proof.text(), [station.key.verifier], node_bytes)
    tamper(station, "UPDATE ledger_leaves SET data = ? WHERE idx = 0", params=(node_bytes,))
    assert "leaf 0: bad encoding" in problems(station)


def test_15_tampered_merkle_node_table(station: Station) -> None:
    tamper(station, "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1")
    assert "Merkle node (level 2, index 1) disagrees" in problems(station)
    tamper(station, "INSERT INTO ledger_nodes VALUES (9, 9, zeroblob(32))")
    assert "node table has" in problems(station)


def test_16_non_canonical_leaf_bytes(station: Station) -> None:
    data = leaf_data(station, 2).replace(b'","', b'", "', 1)
    tamper(station, "UPDATE ledger_leaves SET data = ? WHERE idx = 2", params=(data,))
    assert "leaf 2: bad encoding: not in canonical form" in problems(station)


def test_17_kind_column_and_station_rewritten(station: Station) -> None:
    tamper(station, "UPDATE ledger_leaves SET kind = 'station.booted' WHERE idx = 4")
    assert "leaf 4: kind column" in problems(station)


# --- the evidence store ----------------------------------------------------------------


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def test_18_changed_byte_in_a_stored_clip_is_located_to_its_window(station: Station) -> None:
    path = writable(station.store.path_for(station.sha("c2")))
    data = bytearray(path.read_bytes())
    data[1024 + 17] ^= 0x01
    path.write_bytes(bytes(data))
    found = problems(station)
    assert "modified: clip c2 (leaf 3)" in found
    assert "window(s) 1 of 1024 bytes differ (first at byte offset 1024)" in found
    assert station.verify().audit.modified == 1  # type: ignore[union-attr]


def test_19_same_size_replacement(station: Station) -> None:
    path = writable(station.store.path_for(station.sha("c3")))
    path.write_bytes(bytes(len(station.clips["c3"])))
    found = problems(station)
    assert "modified: clip c3" in found and "same size" in found and "window(s) 0, 1, 2, 3" in found


def test_20_missing_file(station: Station) -> None:
    station.store.path_for(station.sha("c5")).unlink()
    found = problems(station)
    assert f"missing: clip c5 (leaf 8) content {station.sha('c5')}" in found


def test_21_extra_file(station: Station) -> None:
    stray = b"planted"
    sha = hashlib.sha256(stray).hexdigest()
    path = station.store.path_for(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stray)
    assert f"extra file {path}: content {sha}" in problems(station)


def test_22_moved_file(station: Station) -> None:
    home = station.store.path_for(station.sha("c1"))
    elsewhere = home.parent / "renamed.mp4"
    home.rename(elsewhere)
    found = problems(station)
    assert f"moved: clip c1 (leaf 2) content {station.sha('c1')} found at {elsewhere}" in found
    assert "missing" not in found


def test_23_purged_clip_is_no_problem_but_a_purge_needs_its_leaf(station: Station) -> None:
    station.store.path_for(station.sha("c1")).unlink()
    assert "missing: clip c1" in problems(station)
    led = station.ledger()
    led.append("clip.purged", {"clip_id": "c1", "sha256": station.sha("c1"), "reason": "policy"})
    unsigned = station.verify()
    assert unsigned.intact and unsigned.status == 3  # the purge is not signed yet
    station.checkpoint(led)
    led.conn.close()
    assert station.verify().ok


def test_24_anchor_from_another_key_or_station(station: Station) -> None:
    stranger = StationKey.generate(origin_for("station-99"))
    conn = open_station_db(station.db)
    size = stored_checkpoints(conn)[-1].size
    root = Ledger(conn, STATION).root(size)
    conn.close()
    note = sign_checkpoint(Checkpoint(origin_for("station-99"), size, root), [stranger])
    from ledger import Anchor

    found = problems(station, anchors=[Anchor(note, 0, ())])
    assert f"anchor {size}: no valid signature" in found
    assert "origin 'evidock.station/station-99'" in found


def test_25_key_rotation_is_followed_from_either_key(station: Station) -> None:
    from ledger.keyring import rotate_key

    led = station.ledger()
    new, anchor = rotate_key(led, station.key, station.data / "keys")
    led.append(
        "clip.accessed",
        {"clip_id": "c1", "who": "a", "purpose": "p", "action": "view", "via": "cli"},
    )
    later = make_checkpoint(led, [new])
    led.conn.close()
    anchors = [*station.anchors, anchor, later]
    assert station.verify(anchors=anchors).ok
    assert station.verify(anchors=anchors, key=PublicKeyFile(new.verifier.public, None)).ok
    # The old key may not sign beyond the rotation.
    conn = open_station_db(station.db)
    size = Ledger(conn, STATION).size()
    late_old = sign_checkpoint(
        Checkpoint(origin_for(STATION), size, Ledger(conn, STATION).root()), [station.key]
    )
    conn.close()
    tamper(
        station,
        "UPDATE ledger_checkpoints SET note = ? WHERE tree_size = ?",
        params=(late_old, size),
    )
    assert f"stored checkpoint {size}: no valid signature" in problems(station, anchors=anchors)


def test_26_checkpoints_deleted_and_the_ledger_replaced(station: Station) -> None:
    """The attacker rebuilds a whole other ledger (chain and nodes consistent) and deletes
    every checkpoint: nothing the trusted key signed is left, so nothing is proven."""
    tamper(station, "DELETE FROM ledger_leaves", "DELETE FROM ledger_nodes")
    conn = sqlite3.connect(station.db)
    conn.execute("DROP TRIGGER IF EXISTS ledger_checkpoints_no_delete")
    conn.execute("DELETE FROM ledger_checkpoints")
    conn.commit()
    conn.close()
    led = station.ledger()
    led.append("station.booted", {"version": "0.1.0", "config_sha256": "0" * 64})
    for clip_id in ("c1", "c2", "c3", "c4", "c5"):
        led.append(
            "clip.purged", {"clip_id": clip_id, "sha256": station.sha(clip_id), "reason": "x"}
        )
    led.conn.close()
    report = station.verify(anchors=[], store=False)
    assert report.intact, report.problems  # a consistent forgery...
    assert report.status == 3 and not report.ok  # ...that the trusted key never signed
    assert report.shortfall() == (
        "leaves 0..5 are intact but not signed by a trusted checkpoint: no checkpoint signed "
        "by the trusted key covers them; have the station sign one (any evidock command that "
        "writes does) and verify again"
    )
    assert "anchor 15: the ledger has only 6 leaves" in problems(station)  # anchors tell more


def test_27_unsigned_tail_rewritten_with_key_and_anchor_given(station: Station) -> None:
    """Leaves after the last signature, rewritten with chain and nodes rebuilt: intact, but
    with the key and every anchor given they are still not proven."""
    led = station.ledger()
    for who in ("a", "b", "c"):
        led.append(
            "clip.accessed",
            {"clip_id": "c1", "who": who, "purpose": "p", "action": "view", "via": "cli"},
        )
    led.conn.close()
    data = leaf_data(station, 16).replace(b'"who":"b"', b'"who":"z"')
    rewrite_from(station, 17, {16: data})
    report = station.verify()
    assert report.intact, report.problems
    assert report.signed_size == 15 and report.anchored_size == 15
    assert report.status == 3
    assert report.shortfall() is not None
    assert report.shortfall().startswith(  # type: ignore[union-attr]
        "leaves 15..17 are intact but not signed by a trusted checkpoint"
    )
    assert report.verdict().startswith("NOT PROVEN: leaves 15..17")


def test_28_require_anchor_wants_every_leaf_anchored(station: Station) -> None:
    assert station.verify(require_anchor=True).ok
    led = station.ledger()
    led.append(
        "clip.accessed",
        {"clip_id": "c1", "who": "a", "purpose": "p", "action": "view", "via": "cli"},
    )
    make_checkpoint(led, [station.key])  # signed and stored, but not handed over
    led.conn.close()
    assert station.verify().ok
    anchored = station.verify(require_anchor=True)
    assert anchored.intact and anchored.status == 3
    assert "leaf 15 is intact but not covered by a given anchor" in str(anchored.shortfall())
    nothing = station.verify(anchors=[], require_anchor=True)
    assert nothing.status == 3 and "leaves 0..15" in str(nothing.shortfall())


# --- through the CLI -------------------------------------------------------------------


def test_cli_verify_exit_codes_and_lines(station: Station, tmp_path: Path) -> None:
    anchor_files = []
    for anchor in station.anchors:
        path = tmp_path / anchor.file_name()
        path.write_text(anchor.text())
        anchor_files += ["--anchor", path]
    pem = station.data / "keys" / "station.pub.pem"
    ok = run_cli("verify", "--data-dir", station.data, "--pubkey", pem, *anchor_files)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "covered by an anchor: leaves 0..14" in ok.stdout
    assert ok.stdout.endswith(
        "OK: every leaf is signed by the trusted key and covered by an anchor\n"
    )
    folder = run_cli("verify", "--data-dir", station.data, "--anchor", tmp_path)
    assert folder.returncode == 0 and "3 anchors" in folder.stdout
    no_key = run_cli("verify", "--data-dir", station.data)
    assert no_key.returncode == 0 and "taken from the station itself" in no_key.stdout
    assert no_key.stdout.endswith(
        "OK, not anchored: this proves consistency with the station's own key, "
        "not that history was not rewritten\n"
    )
    assert station.key.verifier.fingerprint() in no_key.stdout
    required = run_cli("verify", "--data-dir", station.data, "--require-anchor", "--json")
    assert required.returncode == 3 and json.loads(required.stdout)["status"] == 3

    tamper(
        station,
        "DELETE FROM ledger_leaves WHERE idx >= 12",
        "DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > 12",
        "DELETE FROM ledger_checkpoints WHERE tree_size > 12",
    )
    station.store.path_for(station.sha("c5")).unlink()
    bad = run_cli("verify", "--data-dir", station.data, "--pubkey", pem, *anchor_files, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["anchored_size"] == 6 and report["status"] == 1
    assert any("anchor 15: the ledger has only 12 leaves" in p for p in report["problems"])
    assert any("missing: clip c5" in p for p in report["problems"])


def test_cli_usage_problems_are_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_cli("verify", "--data-dir", tmp_path / "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "give the station's data dir" in proc.stderr
    assert "Traceback" not in proc.stderr
