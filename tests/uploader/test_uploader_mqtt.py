"""The MQTT outbox and its publisher against a real Mosquitto: order and seq, a broker
killed in a burst, refused credentials, the last will, a drained stop, TLS with an
account, and the password read only from a credential or a 0600 file."""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto

from agent.database import open_station_db, transaction
from config.models import MqttSection
from config.problems import ConfigError
from uploader import BrokerSettings, Outbox, Publisher, Topics, read_password, will_payload

WAIT = 15.0  # seconds for something that must happen; never reached when it does
FAST = (0.05, 0.1, 0.2)  # the publisher's back-off in tests


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


@dataclass
class Watcher:
    """An IT-side subscriber: what it received, in order."""

    client: mqtt.Client
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    got: list[mqtt.MQTTMessage] = field(default_factory=list)
    connected: queue.Queue[bool] = field(default_factory=queue.Queue)

    def drain(self) -> list[mqtt.MQTTMessage]:
        while True:
            try:
                self.got.append(self.messages.get_nowait())
            except queue.Empty:
                return self.got

    def seqs(self, topic: str) -> list[int]:
        return [json.loads(m.payload)["seq"] for m in self.drain() if m.topic == topic]


@contextmanager
def watcher(
    broker: Mosquitto,
    topic: str,
    *,
    client_id: str | None = None,
    clean: bool = True,
    user: tuple[str, str] | None = None,
) -> Iterator[Watcher]:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"it-{uuid.uuid4().hex[:8]}",
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )
    seen = Watcher(c)
    subscribed: queue.Queue[int] = queue.Queue()

    def on_connect(cl: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            cl.subscribe(topic, qos=1)  # again after every reconnect
        seen.connected.put(not rc.is_failure)

    c.on_connect = on_connect
    c.on_message = lambda _c, _u, message: seen.messages.put(message)
    c.on_subscribe = lambda _c, _u, mid, _rc, _p: subscribed.put(mid)
    c.reconnect_delay_set(1, 2)
    if user is not None:
        c.username_pw_set(*user)
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    try:
        assert seen.connected.get(timeout=WAIT)
        subscribed.get(timeout=WAIT)
        yield seen
    finally:
        c.disconnect()
        c.loop_stop()


def settings(broker: Mosquitto, prefix: str, **extra: Any) -> BrokerSettings:
    topics = Topics(prefix)
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": f"evidock-{uuid.uuid4().hex[:8]}",
        "will_topic": topics.status,
        "will_payload": will_payload("st-test"),
        "max_in_flight": 20,
    }
    values.update(extra)
    return BrokerSettings(**values)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "station.db"
    open_station_db(path).close()
    yield path


def connector(path: Path) -> Callable[[], sqlite3.Connection]:
    return lambda: open_station_db(path)


def add_events(path: Path, topic: str, first: int, count: int) -> list[int]:
    conn = open_station_db(path)
    try:
        with transaction(conn):
            outbox = Outbox(conn)
            return [
                outbox.add(topic, {"event": "test", "n": n}) for n in range(first, first + count)
            ]
    finally:
        conn.close()


def depth(path: Path) -> int:
    conn = open_station_db(path)
    try:
        return Outbox(conn).depth()
    finally:
        conn.close()


@contextmanager
def running(publisher: Publisher) -> Iterator[Publisher]:
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.stop()


# --- the outbox alone ------------------------------------------------------------------


def test_the_outbox_keeps_order_puts_seq_in_the_payload_and_never_reuses_a_seq(
    db: Path,
) -> None:
    seqs = add_events(db, "p/events", 0, 3)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    conn = open_station_db(db)
    outbox = Outbox(conn)
    pending = outbox.pending()
    assert [m.seq for m in pending] == seqs
    bodies = [json.loads(m.payload) for m in pending]
    assert [(b["seq"], b["n"], b["schema"]) for b in bodies] == [
        (s, n, 1) for n, s in enumerate(seqs)
    ]
    assert [m.seq for m in outbox.pending(after=seqs[0], limit=1)] == [seqs[1]]
    outbox.acknowledged(seqs)
    assert outbox.depth() == 0 and outbox.oldest() is None
    conn.close()
    # every row was deleted: the next seq still follows the last one (AUTOINCREMENT)
    assert add_events(db, "p/events", 3, 1) == [seqs[-1] + 1]


def test_a_rolled_back_fact_leaves_no_message(db: Path) -> None:
    conn = open_station_db(db)
    outbox = Outbox(conn)
    with pytest.raises(RuntimeError), transaction(conn):
        outbox.add("p/events", {"event": "clip.ingested"})
        outbox.set_mark("ledger", 7)
        raise RuntimeError("the fact's transaction failed")
    assert (outbox.depth(), outbox.mark("ledger")) == (0, 0)
    conn.close()


# --- the password ----------------------------------------------------------------------


def _section(password_file: str) -> MqttSection:
    return MqttSection(host="127.0.0.1", username="station", password_file=password_file)


def test_the_password_comes_from_a_systemd_credential_or_an_owner_only_file(
    tmp_path: Path,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt-password").write_text("s3cret\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert read_password(_section("mqtt-password"), env) == "s3cret"
    secret = tmp_path / "mqtt.pw"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    assert read_password(_section(str(secret)), {}) == "s3cret"
    assert read_password(MqttSection(host="127.0.0.1"), {}) is None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("readable-by-others", "chmod 600"),
        ("missing", "cannot read"),
        ("empty", "is empty"),
        ("no-credentials-directory", "LoadCredential=mqtt-password"),
    ],
)
def test_a_password_file_others_can_read_or_that_is_missing_is_refused_at_start(
    tmp_path: Path, case: str, expected: str
) -> None:
    secret = tmp_path / "mqtt.pw"
    spec = str(secret)
    if case == "readable-by-others":
        secret.write_text("s3cret")
        secret.chmod(0o644)
    elif case == "empty":
        secret.write_text("\n")
        secret.chmod(0o600)
    elif case == "no-credentials-directory":
        spec = "mqtt-password"
    with pytest.raises(ConfigError) as caught:
        read_password(_section(spec), {})
    assert "mqtt.password_file" in str(caught.value)
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_config_never_takes_an_account_without_its_password_file() -> None:
    with pytest.raises(ValueError, match="password_file"):
        MqttSection(host="broker", username="station")
    with pytest.raises(ValueError, match="topic prefix"):
        MqttSection(host="broker", topic_prefix="evidock/#")
    assert MqttSection().prefix("bj-cy-02") == "evidock/bj-cy-02"


# --- against Mosquitto -----------------------------------------------------------------


def test_events_are_published_in_order_with_their_seq_and_deleted_once_acknowledged(
    mosquitto_broker: Mosquitto, db: Path
) -> None:
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    seqs = add_events(db, topics.events, 0, 300)
    with watcher(mosquitto_broker, topics.events) as seen:
        publisher = Publisher(connector(db), settings(mosquitto_broker, prefix), retry_delays=FAST)
        with running(publisher):
            wait_for(lambda: len(seen.seqs(topics.events)) >= len(seqs), "every event seen")
            wait_for(lambda: depth(db) == 0, "the outbox emptied by PUBACKs")
            more = add_events(db, topics.events, 300, 5)
            publisher.notify()
            wait_for(lambda: len(seen.seqs(topics.events)) >= len(seqs) + 5, "later events")
    assert seen.seqs(topics.events) == seqs + more
    assert [json.loads(m.payload)["n"] for m in seen.got] == list(range(305))
    assert all(m.qos == 1 and not m.retain for m in seen.got)


def test_a_broker_killed_during_a_burst_loses_no_event_and_keeps_their_order(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto()
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    it_desk = f"it-desk-{uuid.uuid4().hex[:8]}"
    # IT's consumer keeps a persistent session, saved by the broker before the crash, so
    # it is subscribed again the moment the broker is back.
    with watcher(broker, topics.events, client_id=it_desk, clean=False) as seen:
        persistence = broker.persistence / "mosquitto.db"
        wait_for(
            lambda: persistence.exists() and it_desk.encode() in persistence.read_bytes(),
            "the consumer's session saved",
        )
        # Mosquitto queues at most 1000 messages (max_queued_messages) for a consumer
        # that is offline, as this one is between the restart and its reconnect: the
        # burst and the events of the outage stay below that.
        burst = add_events(db, topics.events, 0, 800)
        publisher = Publisher(connector(db), settings(broker, prefix), retry_delays=FAST)
        with running(publisher):
            wait_for(lambda: len(seen.seqs(topics.events)) >= 50, "the burst under way")
            # Freeze, then crash: nothing is acknowledged after the freeze, and what was
            # acknowledged before it has reached the consumer (the broker wrote it first),
            # so the crash takes only messages the station still holds.
            broker.pause()
            # rows acknowledged are deleted in batches: wait for the last batch
            wait_for(lambda: publisher.state.acks_waiting == 0, "acknowledged rows deleted")
            acked = set(burst) - _pending_seqs(db)
            wait_for(lambda: acked <= set(seen.seqs(topics.events)), "acknowledged ones seen")
            broker.kill()
            in_outbox = depth(db)
            assert 0 < in_outbox < len(burst), "the crash came in the middle of the burst"
            wait_for(lambda: not publisher.state.connected, "the station saw the broker go")
            during = add_events(db, topics.events, 800, 150)  # the station goes on
            assert depth(db) == in_outbox + 150
            broker.start()
            everything = burst + during
            wait_for(
                lambda: set(seen.seqs(topics.events)) >= set(everything),
                "every event after the restart",
                timeout=60,
            )
            wait_for(lambda: depth(db) == 0, "the backlog drained")
    received = seen.seqs(topics.events)
    first_seen = list(dict.fromkeys(received))
    assert first_seen == everything  # none lost, in order
    assert publisher.state.connections >= 2
    # Duplicates only as QoS 1 allows, the same seq: on each leg (station to broker, and
    # broker to this subscriber) at most the messages in flight when the broker died.
    assert len(received) - len(first_seen) <= 2 * publisher.settings.max_in_flight


def _pending_seqs(path: Path) -> set[int]:
    conn = open_station_db(path)
    try:
        return {int(r[0]) for r in conn.execute("SELECT seq FROM mqtt_outbox")}
    finally:
        conn.close()


def test_a_refused_password_is_one_clear_line_retried_with_events_kept(
    make_mosquitto: Callable[..., Mosquitto], db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_mosquitto(username="station", password="s3cret")
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    add_events(db, Topics(prefix).events, 0, 10)
    caplog.set_level(logging.INFO, logger="evidock")
    wrong = settings(broker, prefix, username="station", password="wrong")
    publisher = Publisher(connector(db), wrong, retry_delays=FAST, auth_retry_delays=FAST)
    with running(publisher):
        wait_for(lambda: publisher.state.attempts >= 4, "several attempts")
        add_events(db, Topics(prefix).events, 10, 5)  # ingest is never held up
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1, refused
    assert "refused the station's account (Not authorized)" in refused[0]
    assert "username and the password in password_file" in refused[0]
    assert "wrong" not in refused[0]
    assert publisher.state.connections == 0
    assert depth(db) == 15
    # the right password delivers what was kept
    with watcher(broker, Topics(prefix).events, user=("station", "s3cret")) as seen:
        good = Publisher(
            connector(db),
            settings(broker, prefix, username="station", password="s3cret"),
            retry_delays=FAST,
        )
        with running(good):
            wait_for(lambda: len(seen.seqs(Topics(prefix).events)) >= 15, "kept events sent")
    assert depth(db) == 0


STATION = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agent.database import open_station_db, transaction
    from uploader import BrokerSettings, Outbox, Publisher, Topics, will_payload
    db, port, prefix = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    topics = Topics(prefix)
    conn = open_station_db(db)
    with transaction(conn):
        Outbox(conn).add(topics.status, {"state": "online"}, retain=True)
    settings = BrokerSettings(
        host="127.0.0.1", port=port, client_id="evidock-will-test", keepalive=60,
        will_topic=topics.status, will_payload=will_payload("st-will"),
    )
    Publisher(lambda: open_station_db(db), settings, retry_delays=(0.05,)).start()
    while Outbox(conn).depth():
        time.sleep(0.02)
    print("online", flush=True)
    sys.stdin.read()
    """
)


def test_the_retained_status_becomes_offline_when_the_station_dies_uncleanly(
    mosquitto_broker: Mosquitto, db: Path
) -> None:
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    status = Topics(prefix).status
    station = subprocess.Popen(
        [sys.executable, "-c", STATION, str(db), str(mosquitto_broker.port), prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert station.stdout is not None
        assert station.stdout.readline().strip() == "online"
        with watcher(mosquitto_broker, status) as seen:
            first = seen.messages.get(timeout=WAIT)
            assert (json.loads(first.payload)["state"], first.retain) == ("online", True)
            station.kill()  # no DISCONNECT: the broker publishes the will
            will = seen.messages.get(timeout=WAIT)
            assert json.loads(will.payload)["state"] == "offline"
    finally:
        station.kill()
        station.wait()
    with watcher(mosquitto_broker, status) as late:
        kept = late.messages.get(timeout=WAIT)
    assert (json.loads(kept.payload), kept.retain) == (
        {"schema": 1, "state": "offline", "station": "st-will", "clean": False},
        True,
    )


def test_a_clean_stop_drains_what_is_pending_and_disconnects_without_the_will(
    mosquitto_broker: Mosquitto, db: Path
) -> None:
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    with watcher(mosquitto_broker, f"{prefix}/#") as seen:
        publisher = Publisher(connector(db), settings(mosquitto_broker, prefix), retry_delays=FAST)
        publisher.start()
        wait_for(lambda: publisher.state.connected, "connected")
        conn = open_station_db(db)
        with transaction(conn):
            Outbox(conn).add(topics.status, {"state": "online"}, retain=True)
            for n in range(200):
                Outbox(conn).add(topics.events, {"n": n})
            Outbox(conn).add(topics.status, {"state": "offline", "clean": True}, retain=True)
        conn.close()
        publisher.stop()  # without notify: the stop itself sends what waits
        assert depth(db) == 0
        wait_for(lambda: len(seen.drain()) >= 202, "everything")
        topics_seen = [m.topic for m in seen.got]
    assert topics_seen == [topics.status, *[topics.events] * 200, topics.status]
    assert json.loads(seen.got[-1].payload)["clean"] is True


def test_a_stop_with_a_frozen_broker_gives_up_after_the_drain_and_keeps_the_rows(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto()
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    publisher = Publisher(
        connector(db), settings(broker, prefix), retry_delays=FAST, drain_seconds=0.5
    )
    publisher.start()
    wait_for(lambda: publisher.state.connected, "connected")
    broker.pause()
    try:
        add_events(db, Topics(prefix).events, 0, 5)
        publisher.stop()
        assert depth(db) == 5  # nothing acknowledged: nothing deleted
    finally:
        broker.resume()


def test_over_tls_with_an_account_the_station_takes_messages_on_its_commands_topic(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto(username="station", password="s3cret", tls=True)
    assert broker.ca_file is not None and broker.tls_port is not None
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    account = settings(
        broker,
        prefix,
        host="127.0.0.1",  # the certificate's IP SAN: CI's minimal root may not know localhost
        port=broker.tls_port,
        username="station",
        password="s3cret",
        ca_file=str(broker.ca_file),
        subscribe=(topics.commands,),
    )
    publisher = Publisher(
        connector(db), account, on_message=lambda t, p: received.put((t, p)), retry_delays=FAST
    )
    with running(publisher):
        wait_for(lambda: publisher.state.connected, "connected over TLS")
        it = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        it.username_pw_set("station", "s3cret")
        it.connect(broker.host, broker.port)
        it.loop_start()
        try:
            # the subscription may still be on its way: send until one arrives
            def delivered() -> tuple[str, bytes] | None:
                it.publish(topics.commands, b'{"command":"status"}', qos=1)
                try:
                    return received.get(timeout=0.2)
                except queue.Empty:
                    return None

            topic, payload = wait_for(delivered, "the command delivered")
        finally:
            it.disconnect()
            it.loop_stop()
    assert (topic, payload) == (topics.commands, b'{"command":"status"}')
