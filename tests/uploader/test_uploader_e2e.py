"""Issue 18's "done when", end to end through the `evidock` commands, with every service
real: a Ceph RGW bucket with Object Lock, a Mosquitto broker and an `openssl ts` TSA on
loopback. `evidock run --once` with a docked recorder (clips made by ffmpeg) delivers
its clips to the bucket, locked; the broker carries the station's status, an event for
every clip ingested and uploaded, and its checkpoint; the checkpoints' TSA tokens lie
beside their anchors in the bucket, locked like them; and `evidock verify --anchor s3
--require-anchor` accepts the anchors read back from the bucket and says their tokens
are timestamped."""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto, Rgw
from services.tsa import TestTSA, tsa
from station_cli import run_cli

__all__ = ["tsa"]

WAIT = 15.0


def _config(tmp_path: Path, rgw: Rgw, bucket: str, broker: Mosquitto, tsa: TestTSA) -> Path:
    keys = tmp_path / "s3-key"
    keys.write_text(
        f"aws_access_key_id = {rgw.access_key}\naws_secret_access_key = {rgw.secret_key}\n"
    )
    keys.chmod(0o600)
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "e2e-01"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        '[delivery]\ntarget = "s3"\nmax_attempts = 3\n'
        f's3_endpoint = "{rgw.endpoint}"\ns3_bucket = "{bucket}"\n'
        f's3_credentials = "{keys}"\nlock_days = 1\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[timestamping]\nurl = "{tsa.url}"\nca_file = "{tsa.ca}"\ntimeout_seconds = 10\n',
        "utf-8",
    )
    return config


class _Listener:
    """A subscriber to every topic of the station, there before the station starts."""

    def __init__(self, broker: Mosquitto, prefix: str) -> None:
        self.got: queue.Queue[tuple[str, dict[str, Any], bool]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = lambda _c, _u, m: self.got.put(
            (m.topic, json.loads(m.payload), bool(m.retain))
        )
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda *_: subscribed.put(True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{prefix}/#", qos=1)
        subscribed.get(timeout=WAIT)

    def messages(self) -> list[tuple[str, dict[str, Any], bool]]:
        found = []
        while not self.got.empty():
            found.append(self.got.get_nowait())
        return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _uploaded(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute("SELECT data FROM ledger_leaves WHERE kind = 'clip.uploaded'")
        return [json.loads(row[0])["body"] for row in rows]
    finally:
        conn.close()


def test_a_docked_recorder_is_delivered_published_anchored_and_timestamped(
    rgw: Rgw, mosquitto_broker: Mosquitto, tsa: TestTSA, recorder: Path, tmp_path: Path
) -> None:
    bucket = f"e2e-{uuid.uuid4().hex[:16]}"
    s3 = rgw.client()
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    config = _config(tmp_path, rgw, bucket, mosquitto_broker, tsa)
    listener = _Listener(mosquitto_broker, "evidock/e2e-01")
    try:
        run_cli("run", "--config", config, "--once", check=0)
        # The last messages may still be on their way to this subscriber.
        messages = listener.messages()
        deadline = 0
        while not any(t.endswith("/checkpoints") for t, _, _ in messages) and deadline < 30:
            messages += [listener.got.get(timeout=WAIT)]
            deadline += 1
        messages += listener.messages()
    finally:
        listener.close()

    # Every footage file of the recorder is in the bucket, locked, with its SHA-256.
    uploaded = _uploaded(tmp_path / "d")
    files = [p for p in recorder.rglob("*") if p.is_file() and p.suffix.upper() == ".MP4"]
    assert files and len(uploaded) >= len(files)
    for body in uploaded:
        sha = body["sha256"]
        key = f"clips/{sha[:2]}/{sha}"
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=body["version_id"])
        assert head["ObjectLockMode"] == body["lock_mode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] is not None
        stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == sha

    # Status, events and the checkpoint went over the broker.
    topics = {t.rsplit("/", 1)[1] for t, _, _ in messages}
    assert {"status", "events", "checkpoints"} <= topics, topics
    events = [p for t, p, _ in messages if t.endswith("/events")]
    ingested = {p["sha256"] for p in events if p.get("event") == "clip.ingested"}
    delivered = {p["sha256"] for p in events if p.get("event") == "clip.uploaded"}
    assert {b["sha256"] for b in uploaded} <= ingested & delivered
    assert all(p["station"] == "e2e-01" and p["schema"] == 1 for _, p, _ in messages)
    (checkpoint,) = [p for t, p, _ in messages if t.endswith("/checkpoints")][-1:]

    # Each anchor has its TSA token beside it in the bucket, locked like it.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="anchors/e2e-01/")["Contents"]
    keys = sorted(item["Key"] for item in listed)
    anchors = [k for k in keys if k.endswith(".anchor")]
    assert anchors and [k for k in keys if k.endswith(".tsr")] == [f"{a}.tsr" for a in anchors]
    newest = s3.get_object(Bucket=bucket, Key=anchors[-1])["Body"].read().decode()
    assert checkpoint["anchor"] == newest
    assert s3.head_object(Bucket=bucket, Key=f"{anchors[-1]}.tsr")["ObjectLockMode"] == (
        "COMPLIANCE"
    )

    # verify accepts the anchors read back from the bucket, and their tokens.
    proc = run_cli("verify", "--config", config, "--anchor", "s3", "--require-anchor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for key in anchors:
        line = f"anchor s3://{bucket}/{key}?versionId="
        found = [x for x in proc.stdout.splitlines() if x.startswith(line)]
        assert found and all(": timestamped at " in x for x in found), proc.stdout
