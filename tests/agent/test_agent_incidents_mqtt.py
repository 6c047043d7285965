"""Incident feeds over MQTT, against a real Mosquitto with an account, on a station with
footage of known times (records_station): a message's rows are imported as a file's
are (one incident.imported leaf, the same matching and review list), a malformed row is
an error event and named in the reply while the rest is imported, a message delivered
again imports nothing twice, a message nothing of which can be used writes nothing; and
the shapes a message may take. `evidock verify` passes after it all."""

from __future__ import annotations

import hashlib
import json
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from records_station import K1, K2, K3, RecordsStation, build
from services import Mosquitto
from services import mosquitto as mosquitto_service
from station_cli import leaf_count

from agent.incident_feed import read_message
from agent.station import Station
from agent.telemetry import Telemetry
from config.loading import load_config
from config.models import MqttSection

WAIT = 15.0
FAST = (0.05, 0.1, 0.2)
ACCOUNT = ("station", "s3cret")

A1 = {  # exactly a1's window: linked
    "case_number": K1,
    "officer": "O1",
    "start": "2026-11-20T09:00:00+08:00",
    "end": "2026-11-20T09:01:00+08:00",
    "subject": "张三",
}
NO_OFFSET = {**A1, "start": "2026-11-20T09:00:00"}
B2_K2 = {"case_number": K2, "officer": "O2", "start": "2026-11-21T10:00:10+08:00",
         "end": "2026-11-21T10:00:20+08:00"}  # fmt: skip
B2_K3 = {"case_number": K3, "officer": "O2", "start": "2026-11-21T10:00:00+08:00",
         "end": "2026-11-21T10:01:00+08:00"}  # fmt: skip


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[RecordsStation, Mosquitto, Station, Telemetry]]:
    if not mosquitto_service.installed():
        pytest.fail("Mosquitto is not installed: sh scripts/services.sh", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="evidock-incidents-mqtt-"))
    records = build(root)
    broker = Mosquitto(root / "broker", username=ACCOUNT[0], password=ACCOUNT[1]).start()
    secret = root / "mqtt-password"
    secret.write_text(ACCOUNT[1])
    secret.chmod(0o600)
    section = MqttSection(
        host=broker.host, port=broker.port, username=ACCOUNT[0], password_file=str(secret)
    )
    config = load_config(records.config).model_copy(update={"mqtt": section})
    station = Station.open(config, config_file=records.config)
    telemetry = Telemetry(station, retry_delays=FAST)
    try:
        telemetry.start()
        publisher = telemetry.publisher
        assert publisher is not None
        wait_for(
            lambda: telemetry.topics.incidents in publisher.state.subscribed,
            "the station subscribed to its incidents topic",
        )
        yield records, broker, station, telemetry
    finally:
        telemetry.stop()
        station.close()
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


class Dispatch:
    """The agency's side: publishes incident messages, reads the station's replies and
    events."""

    def __init__(self, broker: Mosquitto, telemetry: Telemetry) -> None:
        self.topics = telemetry.topics
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[str] = []
        subscribed: queue.Queue[int] = queue.Queue()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        c.username_pw_set(*ACCOUNT)
        c.on_message = lambda _c, _u, message: self.messages.put(message)
        c.on_subscribe = lambda _c, _u, mid, _rc, _p: subscribed.put(mid)
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe([(f"{self.topics.prefix}/replies/#", 1), (self.topics.events, 1)])
        subscribed.get(timeout=WAIT)
        self.client = c

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, payload: bytes) -> None:
        self.client.publish(self.topics.incidents, payload, qos=1).wait_for_publish(WAIT)

    def _take(self) -> None:
        while True:
            try:
                m = self.messages.get_nowait()
            except queue.Empty:
                return
            body = json.loads(m.payload)
            if m.topic == self.topics.events and body.get("event") == "error":
                self.errors.append(body["message"])
            elif "/replies/" in m.topic:
                self.replies.setdefault(m.topic.rsplit("/", 1)[1], []).append(body)

    def reply(self, request_id: str, number: int = 1) -> dict[str, Any]:
        """The ``number``-th reply to ``request_id``."""

        def got() -> bool:
            self._take()
            return len(self.replies.get(request_id, [])) >= number

        wait_for(got, f"reply {number} to {request_id}")
        return self.replies[request_id][number - 1]

    def error(self, text: str) -> str:
        def got() -> str | None:
            self._take()
            return next((e for e in self.errors if text in e), None)

        found: str = wait_for(got, f"an error event with {text!r}")
        return found


def _imports(station: Station) -> list[dict[str, Any]]:
    return [
        {"index": leaf.index, **leaf.body}
        for leaf in station.ledger().leaves_of_kind("incident.imported")
    ]


def test_a_message_is_imported_as_a_file_is_its_bad_row_reported_and_a_resend_ignored(
    fed: tuple[RecordsStation, Mosquitto, Station, Telemetry],
) -> None:
    records, broker, station, telemetry = fed
    dispatch = Dispatch(broker, telemetry)
    try:
        message = {"request_id": "feed-1", "by": "dispatch-110", "incidents": [A1, NO_OFFSET]}
        payload = json.dumps(message, ensure_ascii=False).encode()
        dispatch.send(payload)
        reply = dispatch.reply("feed-1")
        assert (reply["ok"], reply["command"]) == (True, "incidents")
        result = reply["result"]
        assert (result["added"], result["duplicate_of"]) == (1, None)
        assert [r["line"] for r in result["rejected"]] == [2]
        assert "has no offset" in result["rejected"][0]["reason"]
        # the default slack (120 s) reaches a2 too, 30 s after the incident's end
        linked = sorted((records.name_of(x["clip_id"]), x["case_number"]) for x in result["linked"])
        assert linked == [("a1", K1), ("a2", K1)]
        [imported] = _imports(station)
        assert imported["index"] == result["leaf_index"]
        assert imported["source"] == f"mqtt:{telemetry.topics.incidents}"
        assert imported["file_sha256"] == hashlib.sha256(payload).hexdigest()
        assert imported["by"] == "dispatch-110"
        assert [i["line"] for i in imported["incidents"]] == [1]
        [link] = station.ledger().find(clip_id=records.clips["a1"])[-1:]
        assert link.kind == "case.linked"
        assert link.body["reason"] == (
            f"incident feed (incident.imported leaf {imported['index']}, line 1)"
        )
        error = dispatch.error("row(s) rejected")
        assert "row 2: start" in error and "the other rows were imported" in error

        # QoS 1 delivers it again: nothing is imported twice, no leaf is written
        leaves = leaf_count(records.data)
        dispatch.send(payload)
        again = dispatch.reply("feed-1", 2)
        assert again["ok"] and again["result"]["duplicate_of"] == imported["index"]
        assert again["result"]["added"] == 0 and again["result"]["rejected"] == []
        assert leaf_count(records.data) == leaves

        # a bare list, no request id: imported, the ambiguous clip put up for review
        dispatch.send(json.dumps([B2_K2, B2_K3], ensure_ascii=False).encode())
        wait_for(lambda: len(_imports(station)) == 2, "the list imported")
        conn = station.connect()
        try:
            [review] = conn.execute(
                "SELECT clip_id, reason, candidates FROM link_reviews"
                " WHERE clip_id = ? AND reason = 'ambiguous'",
                (records.clips["b2"],),
            ).fetchall()
        finally:
            conn.close()
        assert json.loads(review[2]) == [K2, K3]

        # nothing usable: an error event, a refusal, no leaf
        leaves = leaf_count(records.data)
        dispatch.send(b"not json at all")
        assert "nothing imported" in dispatch.error("not UTF-8 JSON")
        bad = json.dumps({"request_id": "feed-3", "incidents": [NO_OFFSET, {"officer": "O1"}]})
        dispatch.send(bad.encode())
        refused = dispatch.reply("feed-3")
        assert refused["ok"] is False
        assert "no usable incident (row 1: start" in refused["error"]
        assert "row 2: case_number is missing" in refused["error"]
        assert leaf_count(records.data) == leaves
    finally:
        dispatch.close()
    telemetry.stop()
    records.verify()


def test_a_message_is_an_incident_a_list_of_them_or_an_envelope() -> None:
    one = read_message(json.dumps(A1).encode())
    assert (one.rows, one.request_id, one.problem) == ([(1, A1)], None, None)
    listed = read_message(json.dumps([A1, "x", NO_OFFSET]).encode())
    assert listed.rows == [(1, A1), (2, "not an object"), (3, NO_OFFSET)]
    wrapped = read_message(json.dumps({"request_id": "r1", "by": " it ", "incidents": A1}).encode())
    assert (wrapped.rows, wrapped.request_id, wrapped.by) == ([(1, A1)], "r1", "it")
    odd = read_message(json.dumps({"request_id": "r2", "incident": [], "incidents": []}).encode())
    assert (odd.request_id, odd.problem) == ("r2", "unknown keys incident")
    assert read_message(json.dumps({"request_id": "r3", "by": 7, "incidents": []}).encode()).problem
    assert "not UTF-8 JSON" in (read_message(b"\xff\xfe").problem or "")
    assert read_message(b"42").problem is not None
