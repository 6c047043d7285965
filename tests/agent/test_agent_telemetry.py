"""What the station publishes over MQTT and the commands it takes, against a real
Mosquitto: `evidock run` tells its ledger as events in order, its retained status and
checkpoint; a status command is answered on its reply topic and is a ledger leaf; a
password file others can read stops the start on one line."""

from __future__ import annotations

import json
import queue
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from services import mosquitto as mosquitto_service
from station_cli import run_cli

from agent.daemon import Daemon
from agent.station import Station, embedded_config
from agent.telemetry import Telemetry
from config.models import MqttSection
from docking import Undocked
from uploader import Outbox

WAIT = 15.0
FAST = (0.05, 0.1, 0.2)


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    if not mosquitto_service.installed():
        pytest.fail("Mosquitto is not installed: sh scripts/services.sh", pytrace=False)
    made: list[Mosquitto] = []

    def make(**options: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker-{len(made)}", **options)
        made.append(broker)
        return broker.start()

    try:
        yield make
    finally:
        for broker in made:
            broker.stop()


@contextmanager
def it_desk(
    broker: Mosquitto, topic: str, user: tuple[str, str] | None = None
) -> Iterator[tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]]:
    """IT's client, subscribed to ``topic`` for the block."""
    messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.on_message = lambda _c, _u, message: messages.put(message)
    c.on_subscribe = lambda _c, _u, mid, _rc, _p: ready.put(mid)
    if user is not None:
        c.username_pw_set(*user)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(topic, qos=1)
        ready.get(timeout=WAIT)
        yield c, messages
    finally:
        c.disconnect()
        c.loop_stop()


def _until(messages: queue.Queue[mqtt.MQTTMessage], done: Callable[[list[Any]], bool]) -> list[Any]:
    got: list[mqtt.MQTTMessage] = []
    while not done(got):
        got.append(messages.get(timeout=WAIT))
    return got


def _config(tmp_path: Path, broker: Mosquitto, station_id: str, mqtt_lines: str = "") -> Path:
    data = tmp_path / "data"
    path = tmp_path / "station.toml"
    path.write_text(
        f'[station]\nid = "{station_id}"\n[paths]\ndata_dir = "{data}"\n'
        f'[docking]\nmount_root = "{tmp_path / "media"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n{mqtt_lines}',
        "utf-8",
    )
    (tmp_path / "media").mkdir(exist_ok=True)
    return path


def _station(data: Path, **mqtt_keys: Any) -> Station:
    """A station on the embedded defaults with these [mqtt] keys (the default config file
    has no [mqtt] section: no broker)."""
    config = embedded_config(data)
    return Station.open(config.model_copy(update={"mqtt": MqttSection(**mqtt_keys)}))


def _leaf_kinds(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
    finally:
        conn.close()


def test_run_publishes_its_ledger_as_events_in_order_its_status_and_its_checkpoint(
    make_broker: Callable[..., Mosquitto], recorder_template: Path, tmp_path: Path
) -> None:
    broker = make_broker()
    station_id = f"st-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, broker, station_id)
    shutil.copytree(recorder_template, tmp_path / "media" / "REC0001")
    prefix = f"evidock/{station_id}"
    with it_desk(broker, f"{prefix}/#") as (_, messages):
        run_cli("run", "--config", config, "--once", check=0)
        data = tmp_path / "data"
        kinds = _leaf_kinds(data)
        got = _until(
            messages,
            lambda seen: (
                sum(m.topic == f"{prefix}/events" for m in seen) >= len(kinds)
                and any(json.loads(m.payload).get("state") == "offline" for m in seen)
            ),
        )
    events = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/events"]
    assert [e["event"] for e in events] == kinds
    assert [e["leaf"] for e in events] == list(range(len(kinds)))
    seqs = [json.loads(m.payload)["seq"] for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(e["schema"] == 1 and e["station"] == station_id for e in events)
    ingested = [e for e in events if e["event"] == "clip.ingested"]
    assert ingested and all(len(e["sha256"]) == 64 and "windows" not in e for e in ingested)

    statuses = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/status"]
    assert statuses[0]["state"] == "online" and statuses[-1]["state"] == "offline"
    assert statuses[-1]["clean"] is True
    assert statuses[-1]["queue"]["done"] == len(ingested)
    assert statuses[-1]["ledger"]["size"] == len(kinds)

    # one after the session, one after delivery: each with the proof from the one before
    checkpoints = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/checkpoints"]
    anchors = sorted((tmp_path / "central" / "anchors").glob("*/*/*.anchor"))  # <station>/<key>/
    assert [c["anchor"] for c in checkpoints] == [a.read_text("utf-8") for a in anchors]
    assert checkpoints[-1]["size"] == len(kinds)
    sizes = [c["size"] for c in checkpoints]
    assert [c["previous_size"] for c in checkpoints[1:]] == sizes[:-1]
    # the retained ones are there for whoever subscribes later
    with it_desk(broker, f"{prefix}/+") as (_, later):
        retained = _until(later, lambda seen: len(seen) >= 2)
    assert {m.topic for m in retained} == {f"{prefix}/status", f"{prefix}/checkpoints"}
    assert all(m.retain for m in retained)
    conn = sqlite3.connect(data / "station.db")
    assert conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0] == 0
    conn.close()
    run_cli("verify", "--data-dir", data, "--anchor", anchors[-1], check=0)


def _secret(tmp_path: Path, password: str) -> Path:
    secret = tmp_path / "mqtt.pw"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return secret


@pytest.fixture
def authenticated(
    make_broker: Callable[..., Mosquitto], tmp_path: Path
) -> Iterator[tuple[Mosquitto, Station, Telemetry]]:
    broker = make_broker(username="station", password="s3cret")
    mqtt_section: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "username": "station",
        "password_file": str(_secret(tmp_path, "s3cret")),
    }
    station = _station(tmp_path / "data", **mqtt_section)
    telemetry = Telemetry(station, retry_delays=FAST)
    telemetry.start()
    try:
        yield broker, station, telemetry
    finally:
        telemetry.stop()
        station.close()


def _ask(broker: Mosquitto, telemetry: Telemetry, command: dict[str, Any]) -> dict[str, Any]:
    """Send a command as IT does and wait for its reply."""
    request_id = command["request_id"]
    reply_topic = telemetry.topics.reply(request_id)
    with it_desk(broker, reply_topic, user=("station", "s3cret")) as (it, replies):
        # The station may still be subscribing: send again until one is answered (a
        # repeat is a second command, with its own leaf, like any resend).
        while True:
            it.publish(telemetry.topics.commands, json.dumps(command), qos=1).wait_for_publish(WAIT)
            try:
                reply: dict[str, Any] = json.loads(replies.get(timeout=1.0).payload)
                return reply
            except queue.Empty:
                assert telemetry.publisher is not None and telemetry.publisher.running


def test_a_status_command_is_answered_on_its_reply_topic_and_recorded_as_a_leaf(
    authenticated: tuple[Mosquitto, Station, Telemetry], tmp_path: Path
) -> None:
    broker, station, telemetry = authenticated
    reply = _ask(
        broker,
        telemetry,
        {"schema": 1, "request_id": "r-1", "command": "status", "by": "it-0457"},
    )
    assert (reply["request_id"], reply["command"], reply["ok"]) == ("r-1", "status", True)
    assert reply["result"]["state"] == "online"
    assert {"disk", "queue", "outbox", "recorders", "health"} <= reply["result"].keys()
    leaves = [leaf for leaf in station.ledger().leaves() if leaf.kind == "command.received"]
    assert leaves
    assert leaves[0].body == {
        "request_id": "r-1",
        "command": "status",
        "args": {},
        "by": "it-0457",
        "via": "mqtt",
    }
    refused = _ask(broker, telemetry, {"request_id": "r-2", "command": "format_disk"})
    assert refused["ok"] is False and "unknown command" in refused["error"]
    assert all(
        leaf.body["request_id"] != "r-2"
        for leaf in station.ledger().leaves()
        if leaf.kind == "command.received"
    )
    missing = _ask(
        broker,
        telemetry,
        {"request_id": "r-3", "command": "reverify_clip", "args": {"clip_id": "nope"}},
    )
    assert missing["ok"] is False and "no clip nope" in missing["error"]
    telemetry.stop()
    run_cli("verify", "--data-dir", tmp_path / "data", check=0)


def test_an_anonymous_connection_takes_no_commands(
    make_broker: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    broker = make_broker()
    station = _station(tmp_path / "data", host=broker.host, port=broker.port)
    telemetry = Telemetry(station, retry_delays=FAST)
    telemetry.start()
    try:
        assert telemetry.publisher is not None
        assert telemetry.publisher.settings.subscribe == ()
    finally:
        telemetry.stop()
        station.close()


def test_a_password_file_others_can_read_stops_the_start_on_one_line(
    make_broker: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    broker = make_broker(username="station", password="s3cret")
    secret = _secret(tmp_path, "s3cret")
    secret.chmod(0o644)
    config = _config(
        tmp_path, broker, "st-pw", f'username = "station"\npassword_file = "{secret}"\n'
    )
    proc = run_cli("run", "--config", config, "--once", check=2)
    assert "Traceback" not in proc.stderr
    assert "mqtt.password_file" in proc.stderr and f"chmod 600 {secret}" in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout
    assert "station.booted" not in _leaf_kinds(tmp_path / "data")


def test_every_leaf_becomes_one_event_even_when_followed_twice(tmp_path: Path) -> None:
    station = _station(tmp_path / "data", host="127.0.0.1")
    try:
        telemetry = Telemetry(station)
        station.ledger().append("clock.adjusted", {"from": "a", "to": "b", "source": "test"})
        size = station.ledger().size()
        assert telemetry.follow() == size
        assert telemetry.follow() == 0
        station.ledger().append("clock.adjusted", {"from": "b", "to": "c", "source": "test"})
        assert telemetry.follow() == 1
        # the daemon's own events (no leaf), e.g. a recorder taken out
        daemon = Daemon(station)
        daemon.telemetry.event("session.phase", {"session_id": "s1", "phase": "safe"})
        daemon.on_event(Undocked(tmp_path / "media" / "REC9"))
        daemon.close()
        conn = station.connect()
        messages = Outbox(conn).pending(limit=100)
        conn.close()
        events = [json.loads(m.payload)["event"] for m in messages]
        assert events == [
            *[leaf.kind for leaf in station.ledger().leaves()],
            "session.phase",
            "recorder.removed",
        ]
    finally:
        station.close()


def test_without_a_broker_nothing_is_queued(tmp_path: Path) -> None:
    station = Station.open(embedded_config(tmp_path / "data"))
    try:
        telemetry = Telemetry(station)
        telemetry.start()
        telemetry.event("recorder.docked", {"volume": "x"})
        assert telemetry.follow() == 0 and telemetry.publisher is None
        telemetry.stop()
        conn = station.connect()
        assert Outbox(conn).depth() == 0
        conn.close()
    finally:
        station.close()


def _ingested(tmp_path: Path, recorder_template: Path) -> Station:
    data = tmp_path / "data"
    run_cli("ingest", recorder_template, "--data-dir", data, check=0)
    return _station(data, host="127.0.0.1")


def _command(telemetry: Telemetry, **message: Any) -> dict[str, Any]:
    reply = telemetry.desk.handle(json.dumps(message).encode())
    assert reply is not None
    return reply


def test_reverify_retry_and_rotate_commands_do_what_they_say_and_verify_still_passes(
    recorder_template: Path, tmp_path: Path
) -> None:
    station = _ingested(tmp_path, recorder_template)
    try:
        telemetry = Telemetry(station)
        conn = station.connect()
        clip_id, sha256 = conn.execute("SELECT clip_id, sha256 FROM clips LIMIT 1").fetchone()
        conn.close()
        ok = _command(
            telemetry, request_id="v1", command="reverify_clip", args={"clip_id": clip_id}
        )
        assert ok["ok"] and ok["result"]["intact"] is True

        conn = station.connect()
        jobs = [r[0] for r in conn.execute("SELECT id FROM upload_jobs ORDER BY id LIMIT 2")]
        conn.execute(
            "UPDATE upload_jobs SET state = 'parked', failure = 'target-unavailable' WHERE id = ?",
            (jobs[0],),
        )
        conn.execute(
            "UPDATE upload_jobs SET state = 'parked', failure = 'local-integrity' WHERE id = ?",
            (jobs[1],),
        )
        conn.close()
        retry = _command(telemetry, request_id="u1", command="retry_uploads", by="it-1")
        assert retry["result"] == {"retried": 1, "still_parked": 1}  # integrity: a person looks

        old_key = (station.data_dir / "keys" / "station.pub.pem").read_text()
        rotated = _command(telemetry, request_id="k1", command="rotate_key")
        assert rotated["ok"] and rotated["result"]["old_key"] != rotated["result"]["new_key"]
        assert (station.data_dir / "keys" / "station.pub.pem").read_text() != old_key

        # a copy that changed in the store is found, and told as an error
        path = station.store.path_for(sha256)
        original = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(b"not the clip")
        bad = _command(
            telemetry, request_id="v2", command="reverify_clip", args={"clip_id": clip_id}
        )
        assert bad["ok"] and bad["result"]["intact"] is False
        assert any("reverify" in p for p in telemetry.status()["problems"])
        commands = [
            leaf.body["request_id"]
            for leaf in station.ledger().leaves()
            if leaf.kind == "command.received"
        ]
        assert commands == ["v1", "u1", "k1", "v2"]
        conn = station.connect()
        replies = [m.topic for m in Outbox(conn).pending(limit=1000) if "/replies/" in m.topic]
        conn.close()
        assert [t.rsplit("/", 1)[1] for t in replies] == ["v1", "u1", "k1", "v2"]
    finally:
        station.close()
    run_cli("verify", "--data-dir", tmp_path / "data", check=1)  # the verifier sees it too
    path.write_bytes(original)
    path.chmod(0o444)
    run_cli("verify", "--data-dir", tmp_path / "data", check=0)
