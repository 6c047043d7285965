"""Property tests: any appends verify; any single changed byte is caught."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_fixtures import STATION, Station, StepClock, make_station

from agent.database import open_readonly, open_station_db
from ledger import (
    CheckpointError,
    LeafFormatError,
    Ledger,
    ProofError,
    PublicKeyFile,
    StationKey,
    origin_for,
    verify_station,
)
from ledger.anchor import make_checkpoint, stored_checkpoints
from ledger.receipt import make_proof, verify_proof

text = st.text(max_size=12)
events = st.one_of(
    st.builds(lambda v, c: ("station.booted", {"version": v, "config_sha256": c}), text, text),
    st.builds(
        lambda c, w, p: (
            "clip.accessed",
            {"clip_id": c, "who": w, "purpose": p, "action": "view", "via": "api"},
        ),
        text,
        text,
        text,
    ),
    st.builds(
        lambda f, t, extra: ("clock.adjusted", {"from": f, "to": t, "source": "ntp", **extra}),
        text,
        text,
        st.dictionaries(st.sampled_from(["x", "y"]), st.integers() | st.none()),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(events, min_size=1, max_size=6)),
        st.tuples(st.just("checkpoint"), st.none()),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(plan=steps)
def test_any_sequence_of_appends_and_checkpoints_verifies(plan: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "station.db"
        led = Ledger(open_station_db(db), STATION, clock=StepClock())
        key = StationKey.generate(origin_for(STATION))
        anchors = []
        for step, batch in plan:
            if step == "append":
                led.append_many(batch)
            else:
                anchors.append(make_checkpoint(led, [key]))
        anchors.append(make_checkpoint(led, [key]))
        size = led.size()
        checkpoints = stored_checkpoints(led.conn)
        for index in range(size):
            proof = make_proof(led, index, checkpoints[-1])
            verify_proof(proof.text(), [key.verifier], led.leaf(index).data)
        led.conn.close()
        conn = open_readonly(db)
        report = verify_station(conn, PublicKeyFile(key.verifier.public, None), anchors)
        conn.close()
        assert report.ok, report.problems
        assert report.leaves == size and report.anchored_size == size


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Station, bytes]:
    station = make_station(tmp_path_factory.mktemp("station"))
    return station, station.db.read_bytes()


def _verify_copy(station: Station, db_bytes: bytes, edit: Any) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "station.db"
        copy.write_bytes(db_bytes)
        conn = sqlite3.connect(copy)
        edit(conn)
        conn.commit()
        conn.close()
        ro = open_readonly(copy)
        try:
            report = verify_station(ro, station.pub, station.anchors)
        finally:
            ro.close()
        return report.ok


flip = st.integers(1, 255)
many = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@many
@given(data=st.data(), xor=flip)
def test_any_changed_byte_in_any_leaf_is_caught(
    built: tuple[Station, bytes], data: st.DataObject, xor: int
) -> None:
    station, db_bytes = built
    index = data.draw(st.integers(0, 14))

    def edit(conn: sqlite3.Connection) -> None:
        conn.execute("DROP TRIGGER ledger_leaves_no_update")
        raw = bytearray(
            conn.execute("SELECT data FROM ledger_leaves WHERE idx = ?", (index,)).fetchone()[0]
        )
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= xor
        conn.execute("UPDATE ledger_leaves SET data = ? WHERE idx = ?", (bytes(raw), index))

    assert not _verify_copy(station, db_bytes, edit)


@many
@given(data=st.data(), xor=flip)
def test_any_changed_byte_in_any_checkpoint_is_caught(
    built: tuple[Station, bytes], data: st.DataObject, xor: int
) -> None:
    station, db_bytes = built

    def edit(conn: sqlite3.Connection) -> None:
        conn.execute("DROP TRIGGER ledger_checkpoints_no_update")
        sizes = [r[0] for r in conn.execute("SELECT tree_size FROM ledger_checkpoints")]
        size = data.draw(st.sampled_from(sizes))
        raw = bytearray(
            conn.execute(
                "SELECT CAST(note AS BLOB) FROM ledger_checkpoints WHERE tree_size = ?", (size,)
            ).fetchone()[0]
        )
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= xor
        conn.execute(
            "UPDATE ledger_checkpoints SET note = CAST(? AS TEXT) WHERE tree_size = ?",
            (bytes(raw), size),
        )

    assert not _verify_copy(station, db_bytes, edit)


@many
@given(data=st.data(), xor=flip)
def test_any_changed_byte_in_a_receipt_is_caught(
    built: tuple[Station, bytes], data: st.DataObject, xor: int
) -> None:
    station, _ = built
    conn = open_readonly(station.db)
    led = Ledger(conn, STATION)
    index = data.draw(st.integers(0, 14))
    proof = make_proof(led, index, stored_checkpoints(conn)[-1], with_leaf=True)
    conn.close()
    raw = bytearray(proof.text().encode())
    verify_proof(raw.decode(), [station.key.verifier])
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= xor
    with pytest.raises((ProofError, CheckpointError, LeafFormatError, UnicodeDecodeError)):
        verify_proof(raw.decode("utf-8"), [station.key.verifier])


def test_the_station_copied_elsewhere_verifies_without_writing(
    built: tuple[Station, bytes], tmp_path: Path
) -> None:
    station, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(station.data, copy)
    for path in copy.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    copy.chmod(0o555)
    # The -shm file is SQLite's shared-memory index of the WAL, not data.
    files = [p for p in copy.rglob("*") if p.is_file() and not p.name.endswith("-shm")]
    before = {p: p.read_bytes() for p in files}
    conn = open_readonly(copy / "station.db")
    report = verify_station(conn, station.pub, station.anchors)
    conn.close()
    copy.chmod(0o755)
    assert report.ok, report.problems
    assert {p: p.read_bytes() for p in files} == before
    after = [p for p in copy.rglob("*") if p.is_file() and not p.name.endswith("-shm")]
    assert sorted(after) == sorted(files)
