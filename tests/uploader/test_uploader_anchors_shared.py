"""Two stations sharing one real Ceph RGW bucket (Object Lock) and one real Mosquitto
broker, through the `evidock` commands: `evidock run` on each delivers its clips and
publishes its anchors under its own id and key (COMPLIANCE) and its checkpoint over
MQTT; `evidock verify --anchor s3` on each accepts the anchors read back from the
bucket, with no false alarm; a station restored from an old copy that then records
another history is caught by them, while the other stays OK."""

from __future__ import annotations

import json
import os
import queue
import shutil
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto, Rgw
from station_cli import run_cli

WAIT = 15.0


def _station(root: Path, rgw: Rgw, bucket: str, broker: Mosquitto, station_id: str) -> Path:
    root.mkdir(parents=True)
    keys = root / "s3-key"
    keys.write_text(
        f"[default]\naws_access_key_id = {rgw.access_key}\n"
        f"aws_secret_access_key = {rgw.secret_key}\n",
        "utf-8",
    )
    keys.chmod(0o600)
    (root / "mount").mkdir()
    config = root / "station.toml"
    config.write_text(
        f'[station]\nid = "{station_id}"\n'
        f'[paths]\ndata_dir = "{root / "d"}"\n'
        f'[docking]\nmount_root = "{root / "mount"}"\n'
        '[delivery]\ntarget = "s3"\nmax_attempts = 3\n'
        f'central_dir = "{root / "central"}"\n'
        f's3_endpoint = "{rgw.endpoint}"\ns3_bucket = "{bucket}"\n'
        f's3_credentials = "{keys}"\nlock_days = 1\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n',
        "utf-8",
    )
    return config


def _recorder(root: Path, files: int) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"V{n:04d}.MP4").write_bytes(os.urandom(4000 + n))
    return root


def _retained_checkpoint(broker: Mosquitto, topic: str) -> dict[str, object]:
    got: queue.Queue[bytes] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.on_message = lambda _c, _u, message: got.put(message.payload)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(topic, qos=1)
        payload: dict[str, object] = json.loads(got.get(timeout=WAIT))
        return payload
    finally:
        c.disconnect()
        c.loop_stop()


def test_two_stations_share_one_bucket_and_one_broker(
    rgw: Rgw, mosquitto_broker: Mosquitto, tmp_path: Path
) -> None:
    bucket = f"shr-{uuid.uuid4().hex[:16]}"
    s3 = rgw.client()
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    tag = uuid.uuid4().hex[:6]
    ids = [f"st-{tag}-a", f"st-{tag}-b"]
    configs = {}
    for n, sid in enumerate(ids):
        configs[sid] = _station(tmp_path / sid, rgw, bucket, mosquitto_broker, sid)
        _recorder(tmp_path / sid / "mount" / "REC0001", 2 + n)
        run_cli("run", "--config", configs[sid], "--once", check=0)

    for sid in ids:
        proc = run_cli("verify", "--config", configs[sid], "--anchor", "s3", "--require-anchor")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"anchors/{sid}/")["Contents"]
        keys = sorted(item["Key"] for item in listed)
        assert {len(key.split("/")[2]) for key in keys} == {16}
        newest = keys[-1]
        head = s3.head_object(Bucket=bucket, Key=newest)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        # The checkpoint retained on the broker is the newest anchor in the bucket.
        retained = _retained_checkpoint(mosquitto_broker, f"evidock/{sid}/checkpoints")
        text = s3.get_object(Bucket=bucket, Key=newest)["Body"].read().decode()
        assert retained["anchor"] == text and retained["station"] == sid

    # Station b is restored from an old copy, then records another history and signs it:
    # its new anchors collide with those published before (write-once) and are refused.
    sid = ids[1]
    data = tmp_path / sid / "d"
    shutil.copytree(data, tmp_path / "old", symlinks=True)
    run_cli("ingest", _recorder(tmp_path / "rec-2", 2), "--config", configs[sid], check=0)
    run_cli("deliver", "--config", configs[sid], check=0)
    run_cli("verify", "--config", configs[sid], "--anchor", "s3", check=0)
    shutil.rmtree(data)
    shutil.copytree(tmp_path / "old", data, symlinks=True)
    run_cli("ingest", _recorder(tmp_path / "rec-3", 3), "--config", configs[sid], check=0)
    run_cli("deliver", "--config", configs[sid], check=0)
    assert run_cli("verify", "--config", configs[sid]).returncode == 0  # alone it holds
    forked = run_cli("verify", "--config", configs[sid], "--anchor", "s3")
    assert forked.returncode == 1, forked.stdout + forked.stderr
    assert "a fork" in forked.stdout or "only" in forked.stdout
    run_cli("verify", "--config", configs[ids[0]], "--anchor", "s3", "--require-anchor", check=0)
