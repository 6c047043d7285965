"""Station key files, signing checkpoints without ever forking, anchors and receipts."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from ledger_fixtures import STATION, Station, StepClock, make_station

from agent.database import open_station_db
from ledger import (
    Anchor,
    InconsistentCheckpointError,
    Ledger,
    StationKey,
    clip_receipt,
    origin_for,
    read_public_key,
)
from ledger.anchor import make_checkpoint, stored_checkpoints
from ledger.merkle import verify_consistency
from ledger.receipt import verify_proof


def test_key_files_are_private_and_reloadable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key = StationKey.load_or_create(keys, origin_for(STATION))
    assert stat.S_IMODE((keys / "station.ed25519").stat().st_mode) == 0o600
    # The folder and the public key are readable by anyone who may verify.
    assert stat.S_IMODE(keys.stat().st_mode) == 0o755
    assert stat.S_IMODE((keys / "station.pub.pem").stat().st_mode) == 0o644
    again = StationKey.load_or_create(keys, origin_for(STATION))
    assert again.verifier == key.verifier
    assert read_public_key(keys / "station.pub.pem").public == key.verifier.public
    (keys / "note.vkey").write_text(key.verifier.text())
    assert read_public_key(keys / "note.vkey").name == origin_for(STATION)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def test_anchors_chain_by_consistency_proofs(station: Station) -> None:
    for previous, anchor in zip(station.anchors, station.anchors[1:], strict=False):
        parsed = Anchor.parse(anchor.text())
        assert parsed == anchor and parsed.previous_size == previous.checkpoint.size
        verify_consistency(
            previous.checkpoint.size,
            anchor.checkpoint.size,
            anchor.proof,
            previous.checkpoint.root,
            anchor.checkpoint.root,
        )


def test_signing_again_without_growth_returns_the_same_checkpoint(station: Station) -> None:
    led = station.ledger()
    again = make_checkpoint(led, [station.key])
    assert again.note == station.anchors[-1].note
    assert len(stored_checkpoints(led.conn)) == 3


def test_refuses_to_sign_a_truncated_or_rewritten_ledger(station: Station) -> None:
    conn = sqlite3.connect(station.db)
    conn.execute("DROP TRIGGER ledger_leaves_no_delete")
    conn.execute("DELETE FROM ledger_leaves WHERE idx >= 14")
    conn.execute("DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > 14")
    conn.commit()
    conn.close()
    led = station.ledger()
    with pytest.raises(InconsistentCheckpointError, match="truncated or restored"):
        make_checkpoint(led, [station.key])
    led.append_many([("station.booted", {"version": "x", "config_sha256": "y"})] * 3)
    with pytest.raises(InconsistentCheckpointError, match="history was rewritten"):
        make_checkpoint(led, [station.key])


def test_the_last_signed_copy_beside_the_key_stops_a_restored_backup(
    station: Station, tmp_path: Path
) -> None:
    last = station.data / "keys" / "last-checkpoint"
    backup = tmp_path / "backup.db"
    led = station.ledger()
    make_checkpoint(led, [station.key], last_signed_file=last)
    led.conn.close()
    shutil.copy(station.db, backup)
    led = station.ledger()
    led.append(
        "clip.accessed",
        {"clip_id": "c1", "who": "w", "purpose": "p", "action": "view", "via": "api"},
    )
    make_checkpoint(led, [station.key], last_signed_file=last)
    led.conn.close()
    shutil.copy(backup, station.db)
    for suffix in ("-wal", "-shm"):
        Path(f"{station.db}{suffix}").unlink(missing_ok=True)
    led = Ledger(open_station_db(station.db), STATION, clock=StepClock())
    led.append(
        "clip.accessed",
        {"clip_id": "c2", "who": "w", "purpose": "p", "action": "view", "via": "api"},
    )
    with pytest.raises(InconsistentCheckpointError):
        make_checkpoint(led, [station.key], last_signed_file=last)


def test_a_receipt_verifies_offline_with_only_the_public_key(station: Station) -> None:
    conn = open_station_db(station.db)
    receipt = clip_receipt(Ledger(conn, STATION), "c2", stored_checkpoints(conn)).text()
    conn.close()
    pub = read_public_key(station.data / "keys" / "station.pub.pem")
    leaf, checkpoint = verify_proof(receipt, [pub.for_name(origin_for(STATION))])
    assert leaf.kind == "clip.ingested" and leaf.body["clip_id"] == "c2"
    assert checkpoint.size == 15


def test_verify_reports_progress_counts_and_json(station: Station) -> None:
    import json

    from agent.database import open_readonly
    from ledger import verify_station
    from ledger.verify import report_json, report_text

    seen: list[tuple[str, int, int]] = []
    conn = open_readonly(station.db)
    report = verify_station(
        conn, station.pub, station.anchors, station.store, progress=lambda *a: seen.append(a)
    )
    conn.close()
    store_bytes = sum(len(data) for data in station.clips.values())
    assert ("leaves", 15, 15) in seen
    assert ("store", 0, store_bytes) in seen and ("store", store_bytes, store_bytes) in seen
    assert report.ok and report.anchored_size == 15 and report.checkpoints == 3
    text = report_text(report)
    assert "15 leaves, 3 checkpoints, 3 anchors; store: 5 matched" in text
    assert f"fingerprint {station.key.verifier.fingerprint()}" in text
    assert text.endswith(
        "signed: leaves 0..14 by a checkpoint of the trusted key\n"
        "covered by an anchor: leaves 0..14\n"
        "OK: every leaf is signed by the trusted key and covered by an anchor"
    )
    data = json.loads(report_json(report))
    assert data["audit"]["matched"] == 5 and data["status"] == 0 and data["signed_size"] == 15
