"""The outbox's cheap paths on a real station database: acknowledged rows deleted
together (more than one statement's worth too, others kept), the payload on the wire
the stored object with its seq, whatever it holds; and a publisher that deletes in
batches still leaves nothing behind once the broker acknowledged everything."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from services import Mosquitto
from test_uploader_mqtt import add_events, connector, depth, running, settings, wait_for, watcher

from agent.database import open_station_db, transaction
from uploader import Outbox, Publisher, Topics
from uploader.mqtt_outbox import DELETE_CHUNK
from uploader.mqtt_session import ACKS_PER_DELETE


def test_acknowledged_rows_go_together_and_only_they(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    open_station_db(db).close()
    seqs = add_events(db, "p/events", 0, DELETE_CHUNK * 2 + 7)
    kept = set(seqs[::3])
    conn = open_station_db(db)
    try:
        outbox = Outbox(conn)
        outbox.acknowledged([s for s in reversed(seqs) if s not in kept])  # any order
        assert {m.seq for m in outbox.pending(limit=10**6)} == kept
        outbox.acknowledged([*kept, *kept])  # twice: no harm
        assert outbox.depth() == 0
    finally:
        conn.close()


def test_the_payload_is_the_stored_object_with_its_seq(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    conn = open_station_db(db)
    try:
        outbox = Outbox(conn)
        bodies = [{"event": "x", "中文": "案件", "nested": {"a": [1, None]}}, {}]
        with transaction(conn):
            seqs = [outbox.add("p/events", body) for body in bodies]
        sent = [json.loads(m.payload) for m in outbox.pending()]
    finally:
        conn.close()
    assert sent == [
        {"schema": 1, "seq": seq, **body} for seq, body in zip(seqs, bodies, strict=True)
    ]


def test_a_burst_larger_than_a_delete_batch_is_all_delivered_and_deleted(
    mosquitto_broker: Mosquitto, tmp_path: Path
) -> None:
    db = tmp_path / "station.db"
    open_station_db(db).close()
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    topic = Topics(prefix).events
    burst = add_events(db, topic, 0, ACKS_PER_DELETE * 3 + 11)
    with watcher(mosquitto_broker, topic) as seen:
        publisher = Publisher(connector(db), settings(mosquitto_broker, prefix))
        with running(publisher):
            wait_for(lambda: depth(db) == 0, "every row acknowledged and deleted")
            assert publisher.state.acks_waiting == 0
        wait_for(lambda: len(seen.seqs(topic)) >= len(burst), "every event received")
    assert seen.seqs(topic) == burst
