"""Ground truth for the MQTT side: what paho-mqtt 2.x and this Mosquitto (Debian 2.0) do.

An acknowledged QoS 1 publish, retained status and a last will, refused credentials,
TLS with the fixture's CA, and a persistent session's queue across a broker crash.
"""

from __future__ import annotations

import queue
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from services import Mosquitto

WAIT = 10.0  # seconds for something that must happen; never reached when it does


@dataclass
class Seen:
    """What one client saw, in order, fed by paho's network thread."""

    connects: queue.Queue[tuple[ReasonCode, bool]] = field(default_factory=queue.Queue)
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    acks: queue.Queue[tuple[int, ReasonCode]] = field(default_factory=queue.Queue)
    subscribed: queue.Queue[int] = field(default_factory=queue.Queue)


@contextmanager
def client(
    broker: Mosquitto,
    client_id: str | None = None,
    *,
    clean: bool = True,
    user: tuple[str, str] | None = None,
    ca_file: str | None = None,
    host: str = "127.0.0.1",
    will: tuple[str, bytes] | None = None,
    wait_connected: bool = True,
) -> Iterator[tuple[mqtt.Client, Seen]]:
    """A paho 2.x client (MQTT 3.1.1) with its network loop running for the block."""
    seen = Seen()
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"t-{uuid.uuid4().hex[:10]}",
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )
    c.on_connect = lambda _c, _u, flags, rc, _p: seen.connects.put((rc, flags.session_present))
    c.on_message = lambda _c, _u, message: seen.messages.put(message)
    c.on_publish = lambda _c, _u, mid, rc, _p: seen.acks.put((mid, rc))
    c.on_subscribe = lambda _c, _u, mid, _rc, _p: seen.subscribed.put(mid)
    if user is not None:
        c.username_pw_set(*user)
    if ca_file is not None:
        c.tls_set(ca_certs=ca_file)
    if will is not None:
        c.will_set(will[0], will[1], qos=1, retain=True)
    port = broker.tls_port if ca_file is not None else broker.port
    assert port is not None
    c.connect(host, port, keepalive=30)
    c.loop_start()
    try:
        if wait_connected:
            rc, _ = seen.connects.get(timeout=WAIT)
            assert not rc.is_failure, f"connect refused: {rc}"
        yield c, seen
    finally:
        c.disconnect()
        c.loop_stop()


def _subscribe(c: mqtt.Client, seen: Seen, topic: str) -> None:
    _, mid = c.subscribe(topic, qos=1)
    assert seen.subscribed.get(timeout=WAIT) == mid


def _published(info: mqtt.MQTTMessageInfo) -> mqtt.MQTTMessageInfo:
    info.wait_for_publish(timeout=WAIT)
    assert info.is_published()
    return info


def test_a_qos1_publish_counts_only_once_the_broker_acknowledged_it(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto()
    with client(broker) as (c, seen):
        broker.pause()
        try:
            info = c.publish("evidock/st-01/events", b'{"v":1}', qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS  # written to the socket: not yet sent
            info.wait_for_publish(timeout=0.5)
            assert not info.is_published(), "no PUBACK can come from a frozen broker"
            assert seen.acks.empty()
        finally:
            broker.resume()
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()
        mid, rc = seen.acks.get(timeout=WAIT)
        assert (mid, rc.is_failure) == (info.mid, False)


STATION = textwrap.dedent(
    """
    import sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    port, topic = int(sys.argv[1]), sys.argv[2]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="station-under-test")
    c.will_set(topic, b"offline", qos=1, retain=True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, b"online", qos=1, retain=True).wait_for_publish(10)
    print("online", flush=True)
    time.sleep(60)
    """
)


def test_retained_status_and_the_last_will_reach_other_clients(
    mosquitto_broker: Mosquitto,
) -> None:
    topic = f"evidock/{uuid.uuid4().hex[:8]}/status"
    station = subprocess.Popen(
        [sys.executable, "-c", STATION, str(mosquitto_broker.port), topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert station.stdout is not None
        assert station.stdout.readline().strip() == "online"
        with client(mosquitto_broker) as (watcher, seen):
            _subscribe(watcher, seen, topic)
            retained = seen.messages.get(timeout=WAIT)
            assert (retained.payload, retained.retain) == (b"online", True)
            station.kill()  # a crash: no DISCONNECT, so the broker sends the will
            will = seen.messages.get(timeout=WAIT)
            assert (will.payload, will.retain) == (b"offline", False)
    finally:
        station.kill()
        station.wait()
    with client(mosquitto_broker) as (late, seen):
        _subscribe(late, seen, topic)
        retained = seen.messages.get(timeout=WAIT)
        assert (retained.payload, retained.retain) == (b"offline", True)


@pytest.mark.parametrize("user", [("station", "wrong"), None], ids=["wrong-password", "anonymous"])
def test_bad_credentials_are_refused_as_not_authorized(
    make_mosquitto: Callable[..., Mosquitto], user: tuple[str, str] | None
) -> None:
    broker = make_mosquitto(username="station", password="s3cret")
    with client(broker, user=user, wait_connected=False) as (_, seen):
        rc, _ = seen.connects.get(timeout=WAIT)
    # Mosquitto 2.0 answers a wrong password with "not authorised" (v3.1.1 code 5), not
    # "bad user name or password" (4): paho reports both as this MQTT 5 reason code.
    assert (rc.value, str(rc), rc.is_failure) == (135, "Not authorized", True)
    with client(broker, user=("station", "s3cret")) as (_, seen):
        pass


def test_tls_connects_with_the_fixture_ca_and_only_with_it(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto(username="station", password="s3cret", tls=True)
    assert broker.ca_file is not None and broker.tls_port is not None
    # By address: the certificate names IP:127.0.0.1 too, and a minimal root (as CI's)
    # may have no /etc/hosts entry for localhost.
    with client(broker, user=("station", "s3cret"), ca_file=str(broker.ca_file), host="127.0.0.1"):
        pass
    untrusting = mqtt.Client(CallbackAPIVersion.VERSION2)
    untrusting.tls_set()  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.connect("127.0.0.1", broker.tls_port)


def _saved(broker: Mosquitto, payload: bytes) -> bool:
    database = broker.persistence / "mosquitto.db"
    return database.exists() and payload in database.read_bytes()


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_a_persistent_session_keeps_its_queued_messages_across_a_broker_restart(
    make_mosquitto: Callable[..., Mosquitto], fault: str
) -> None:
    broker = make_mosquitto()
    topic, station = "evidock/st-01/commands", f"station-{uuid.uuid4().hex[:8]}"
    with client(broker, station, clean=False) as (c, seen):
        _subscribe(c, seen, topic)
    payloads = [f"command {n}".encode() for n in range(3)]
    with client(broker) as (it_desk, _):
        for payload in payloads:
            _published(it_desk.publish(topic, payload, qos=1))
    if fault == "kill":
        # SIGKILL keeps only what was saved: autosave_on_changes writes each change soon
        # after it happens; wait for the last one to be on disk before the crash.
        _wait_for(lambda: _saved(broker, payloads[-1]), "the queue saved to disk")
        broker.kill()
    else:
        broker.stop()
    old_port = broker.port
    broker.start()
    assert broker.port == old_port
    with client(broker, station, clean=False, wait_connected=False) as (_, seen):
        rc, session_present = seen.connects.get(timeout=WAIT)
        assert (rc.is_failure, session_present) == (False, True)
        got = [seen.messages.get(timeout=WAIT) for _ in payloads]
    assert [(m.topic, m.payload, m.qos) for m in got] == [(topic, p, 1) for p in payloads]


def _wait_for(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
