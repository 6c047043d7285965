"""Delivery: S3 upload throughput against boto3's own upload_file, the cost of resuming
after a gateway crash, and MQTT events/s through the outbox, with a broker outage's drain.

    .venv/bin/python benchmarks/delivery.py [--quick] [--files 4] [--file-mib 256]
        [--resume-mib 1024] [--part-mib 16] [--events 20000] [--outage-s 60]
        [--outage-rate 20] [--skip-s3] [--skip-mqtt]

Real servers on loopback, started and stopped by this script (tests/services): a
single-node Ceph RGW (memstore) and a Mosquitto broker. The station side runs in this
process, so its CPU is this process's (getrusage; the servers are children not yet
reaped, so they do not count); the servers' CPU is read from /proc/PID/stat.

- **Throughput**: the same files, the same Object Lock bucket, the same client settings
  (``uploader.s3_client.make_client``: checksums only where required, so both send no
  CRC trailers) and the same part size: ``S3Target.put`` (two parts on the wire, the
  next read and hashed meanwhile, Content-MD5 on every part, the file's SHA-256, then
  HEAD, retention and three 64 KiB ranged re-reads; its parts' signatures cover their
  Content-MD5, not a SHA-256 of the body, as botocore signs them over HTTPS) against
  ``client.upload_file`` with boto3's default 10 threads (the baseline), and with 1
  thread. Files are read once first (page cache), runs are
  interleaved per file with the order alternating.
- **Resume**: radosgw is SIGKILLed about half a part after the put passed 50 % of the
  file, then restarted; a new target (as after a station restart) continues from the
  state the put reported. Re-sent bytes are the parts sent again that had been started
  before the kill. upload_file would start over: what it had sent is its baseline.
- **MQTT**: the outbox of a real station database and ``uploader.Publisher`` with the
  config's ``max_in_flight``; events written in transactions of 50 (as ``Telemetry``
  does) while the publisher runs, timed from the first write until every one is
  acknowledged (PUBACK). Baseline: bare paho publishing the same payloads at QoS 1 with
  the same window. Outage: the broker is SIGKILLed, ``--outage-rate`` events/s are
  written for ``--outage-s``, the broker is started again; reconnect (the publisher's own
  back-off) and drain are timed apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from services import Mosquitto, Rgw  # noqa: E402  (tests/services: real servers)

from agent.database import open_station_db  # noqa: E402
from config.common import transaction  # noqa: E402
from config.models import MqttSection  # noqa: E402
from uploader import DeliveryError, Outbox, S3Credentials, S3Settings, S3Target  # noqa: E402
from uploader.mqtt import Topics, will_payload  # noqa: E402
from uploader.mqtt_publisher import BrokerSettings, Publisher  # noqa: E402
from uploader.s3_client import make_client  # noqa: E402

MIB = 1 << 20
MB = 1e6
BATCH = 50  # events per transaction, as a busy station writes them


# --- measuring ---------------------------------------------------------------------------


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pids: Iterator[int] | list[int]) -> float:
    """User+system seconds of running processes (from /proc/PID/stat), 0 for gone ones."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def busy_cpu_s() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0
    calls: dict[str, float] = field(default_factory=dict)  # S3 operation -> seconds
    # seconds with at least one S3 request open (parts overlap: the calls' sum is more)
    open_s: float = 0.0
    open_now: int = 0
    opened_at: float = 0.0


@contextmanager
def timed(into: Timed, server: Callable[[], float]) -> Iterator[None]:
    t0, c0, s0 = time.perf_counter(), cpu_self(), server()
    yield
    into.wall += time.perf_counter() - t0
    into.cpu += cpu_self() - c0
    into.server_cpu += server() - s0


_OPEN = threading.Lock()


def time_calls(client: Any, into: Timed, parts: list[int] | None = None) -> None:
    """Sum the wall time of each S3 operation (botocore's before/after-call events), and
    the time with any request open."""

    def before(**kw: Any) -> None:
        kw["context"]["bench_t0"] = now = time.perf_counter()
        with _OPEN:
            if into.open_now == 0:
                into.opened_at = now
            into.open_now += 1

    def part(**kw: Any) -> None:
        if parts is not None:
            parts.append(int(kw["params"]["PartNumber"]))

    def after(**kw: Any) -> None:
        name = kw["model"].name
        now = time.perf_counter()
        spent = now - kw["context"].get("bench_t0", now)
        with _OPEN:
            into.calls[name] = into.calls.get(name, 0.0) + spent
            into.open_now -= 1
            if into.open_now == 0:
                into.open_s += now - into.opened_at

    client.meta.events.register("before-call.s3", before)
    client.meta.events.register("after-call.s3", after)
    client.meta.events.register("before-parameter-build.s3.UploadPart", part)


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for start in range(0, size, 8 * MIB):
            block = os.urandom(min(8 * MIB, size - start))
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


# --- S3 ----------------------------------------------------------------------------------


def s3_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

    part = args.part_mib * MIB
    files = [work / f"clip{i}.bin" for i in range(args.files)]
    shas = [make_file(f, args.file_mib * MIB) for f in files]
    big = work / "resume.bin"
    big_sha = make_file(big, args.resume_mib * MIB)
    stored = 4 * args.files * args.file_mib + 2 * args.resume_mib
    gateway = Rgw(memstore_bytes=int(stored * 1.4) * MIB + (1 << 30))
    print(f"  RGW: starting (memstore {gateway.memstore_bytes / 2**30:.1f} GiB) ...", flush=True)
    gateway.start()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        gateway.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        settings = S3Settings(endpoint=gateway.endpoint, bucket=bucket, part_size=part, lock_days=1)
        keys = S3Credentials(gateway.access_key, gateway.secret_key)

        def server() -> float:
            return cpu_of(list(gateway.pids.values()))

        target = S3Target(settings, keys, anchor_prefix=lambda: "anchors/bench/0")
        # The same target with two parts on the wire (a crash may then cost two parts),
        # into a bucket of its own: a bucket holds one object per clip.
        gateway.client().create_bucket(Bucket=f"{bucket}-2", ObjectLockEnabledForBucket=True)
        settings_two = replace(settings, bucket=f"{bucket}-2", parts_in_flight=2)
        two = S3Target(settings_two, keys, anchor_prefix=lambda: "anchors/bench/0")
        ours, pool, single, ours2 = Timed(), Timed(), Timed(), Timed()
        for client in (target.client, target.parts_client):
            time_calls(client, ours)
        baseline = make_client(settings, keys)  # the very client settings the target uses
        config_pool = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
        config_one = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=1
        )
        for f in [*files, big]:
            with open(f, "rb") as cached:  # page cache: every method reads from memory
                while cached.read(8 * MIB):
                    pass
        # A new bucket's first uploads pay the gateway's set-up: warm both paths untimed.
        warm = work / "warm.bin"
        warm_sha = make_file(warm, part + 1)
        target.put(warm_sha, warm, {"sha256": warm_sha})
        two.put(warm_sha, warm, {"sha256": warm_sha})
        baseline.upload_file(str(warm), bucket, "warm", Config=config_pool)
        ours.calls.clear()
        ours.open_s = 0.0
        for i, (f, sha) in enumerate(zip(files, shas, strict=True)):

            def put_ours(f: Path = f, sha: str = sha) -> None:
                meta = {"sha256": sha, "size": f.stat().st_size, "station": "bench"}
                done = target.put(sha, f, meta)
                assert done.parts_sent == -(-f.stat().st_size // part), done

            def put_two(f: Path = f, sha: str = sha) -> None:
                meta = {"sha256": sha, "size": f.stat().st_size, "station": "bench"}
                done = two.put(sha, f, meta)
                assert done.parts_sent == -(-f.stat().st_size // part), done

            def boto3_pool(f: Path = f) -> None:
                baseline.upload_file(str(f), bucket, f"b10/{f.name}", Config=config_pool)

            def boto3_one(f: Path = f) -> None:
                baseline.upload_file(str(f), bucket, f"b1/{f.name}", Config=config_one)

            runs = [(ours, put_ours), (pool, boto3_pool), (single, boto3_one), (ours2, put_two)]
            for into, run in runs if i % 2 == 0 else reversed(runs):
                with timed(into, server):
                    run()
            print(
                f"  file {i + 1}/{len(files)}: ours {ours.wall:.1f} s, boto3 10 threads "
                f"{pool.wall:.1f} s, 1 thread {single.wall:.1f} s (cumulative)",
                flush=True,
            )
        total = sum(f.stat().st_size for f in files)
        resume = resume_bench(gateway, settings, keys, big, big_sha, part)
    finally:
        gateway.stop()
    return {"bytes": total, "ours": ours.__dict__, "boto3_10": pool.__dict__,
            "boto3_1": single.__dict__, "ours_2": ours2.__dict__, "resume": resume,
            "part": part}  # fmt: skip


def resume_bench(
    gateway: Rgw, settings: S3Settings, keys: S3Credentials, big: Path, sha: str, part: int
) -> dict[str, Any]:
    """Kill radosgw mid-part past 50 %, restart it, resume with the saved state."""
    size = big.stat().st_size
    first = S3Target(settings, keys, anchor_prefix=lambda: "anchors/bench/0")
    started: list[int] = []
    for client in (first.client, first.parts_client):
        time_calls(client, Timed(), started)
    saved: dict[str, Any] = {"state": None, "sent": 0}
    t0 = time.perf_counter()
    killer: list[threading.Thread] = []

    def progress(sent: int, state: Any) -> None:
        saved["sent"] = sent
        if state is not None:
            saved["state"] = state  # what the queue keeps on the job row
        if sent >= size // 2 and not killer:
            parts_done = max(1, sent // part)
            delay = (time.perf_counter() - t0) / parts_done / 2  # about half a part on

            def kill_later() -> None:
                time.sleep(delay)
                gateway.kill_rgw()

            thread = threading.Thread(target=kill_later)
            killer.append(thread)
            thread.start()

    meta = {"sha256": sha, "size": size, "station": "bench"}
    failure = ""
    try:
        first.put(sha, big, meta, progress=progress)
    except DeliveryError as exc:
        failure = str(exc).split(";")[0]
    for thread in killer:
        thread.join()
    killed_after = time.perf_counter() - t0
    sent_before, state = saved["sent"], saved["state"]
    started_before = set(started)
    gateway.start_rgw()
    again: list[int] = []
    timing = Timed()
    attempts, done = 0, None
    while done is None and attempts < 5:
        attempts += 1
        second = S3Target(settings, keys, anchor_prefix=lambda: "anchors/bench/0")
        for client in (second.client, second.parts_client):
            time_calls(client, timing, again)
        try:
            with timed(timing, lambda: 0.0):
                done = second.put(sha, big, meta, state=state)
        except DeliveryError as exc:
            failure += f"; resume attempt {attempts}: {str(exc).split(';')[0]}"
            time.sleep(2)
    if done is None:
        raise SystemExit(f"the resumed upload did not complete: {failure}")
    count = -(-size // part)

    def part_bytes(n: int) -> int:
        return min(part, size - (n - 1) * part)

    resent = sum(part_bytes(n) for n in set(again) & started_before)
    versions = gateway.client().list_object_versions(
        Bucket=settings.bucket, Prefix=f"clips/{sha[:2]}/{sha}"
    )
    return {
        "size": size, "parts": count, "killed_after_s": killed_after,
        "confirmed_before_kill": sent_before, "parts_started_before": len(started_before),
        "parts_reused": done.parts_reused, "parts_sent": done.parts_sent,
        "resent_bytes": resent, "restart_from_zero_bytes": max(started_before) * part,
        "resume_wall_s": timing.wall, "resume_cpu_s": timing.cpu, "attempts": attempts,
        "versions": len(versions.get("Versions", [])), "first_error": failure,
    }  # fmt: skip


# --- MQTT --------------------------------------------------------------------------------


def event_payload(n: int) -> dict[str, Any]:
    """An event as Telemetry makes one of a clip.ingested leaf (about 500 bytes)."""
    h = hashlib.sha256(str(n).encode()).hexdigest()
    return {"station": "bench-01", "event": "clip.ingested", "at": "2026-11-22T08:30:15.123456Z",
            "leaf": n, "leaf_hash": h, "clip_id": h[:16], "sha256": h, "blake3": h[::-1],
            "size": 104857600 + n, "session_id": "s-" + h[:12], "officer": "100231",
            "recorder": "REC0001", "path": "DCIM/100MEDIA/20261122_083015_0001.MP4"}  # fmt: skip


def broker_settings(broker: Mosquitto, topics: Topics, window: int) -> BrokerSettings:
    return BrokerSettings(
        host=broker.host, port=broker.port, client_id=f"evidock-bench-{uuid.uuid4().hex[:6]}",
        will_topic=topics.status, will_payload=will_payload("bench-01"), max_in_flight=window,
    )  # fmt: skip


def wait_for(check: Callable[[], bool], what: str, timeout: float, step: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(step)
    return time.perf_counter()


def write_events(conn: Any, topic: str, first: int, count: int) -> None:
    outbox = Outbox(conn)
    for start in range(first, first + count, BATCH):
        with transaction(conn):
            for n in range(start, min(start + BATCH, first + count)):
                outbox.add(topic, event_payload(n))


def mqtt_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    window = MqttSection().max_in_flight
    broker = Mosquitto(work / "broker").start()
    topics = Topics("evidock/bench-01")
    db = work / "station.db"
    open_station_db(db).close()
    conn = open_station_db(db)
    out: dict[str, Any] = {"events": args.events, "window": window}
    try:
        # Baseline: bare paho, same payloads (seq included), QoS 1, the same window.
        payloads = [json.dumps({"schema": 1, **event_payload(n), "seq": n + 1},
                               sort_keys=True, separators=(",", ":")).encode()
                    for n in range(args.events)]  # fmt: skip
        acked = threading.Semaphore(0)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho",
                             protocol=mqtt.MQTTv311)  # fmt: skip
        client.max_inflight_messages_set(window)
        client.on_publish = lambda *_a: acked.release()
        client.connect(broker.host, broker.port)
        client.loop_start()
        c0, t0 = cpu_self(), time.perf_counter()
        for body in payloads:
            client.publish(topics.events, body, qos=1)
        for _ in payloads:
            acked.acquire()
        out["paho_s"], out["paho_cpu"] = time.perf_counter() - t0, cpu_self() - c0
        client.disconnect()
        client.loop_stop()
        print(f"  bare paho: {args.events / out['paho_s']:.0f} events/s", flush=True)

        publisher = Publisher(lambda: open_station_db(db), broker_settings(broker, topics, window))
        outbox = Outbox(conn)
        publisher.start()
        try:
            wait_for(lambda: publisher.state.connected, "the publisher's connection", 30)
            c0, t0 = cpu_self(), time.perf_counter()
            for start in range(0, args.events, 500):
                write_events(conn, topics.events, start, min(500, args.events - start))
                publisher.notify()
            out["write_s"] = time.perf_counter() - t0
            t1 = wait_for(lambda: outbox.depth() == 0, "every event acknowledged", 600)
            out["outbox_s"], out["outbox_cpu"] = t1 - t0, cpu_self() - c0
            print(f"  outbox: {args.events / out['outbox_s']:.0f} events/s", flush=True)

            print(f"  broker outage of {args.outage_s:.0f} s ...", flush=True)
            down, n = time.monotonic(), 10**6
            broker.kill()
            wait_for(lambda: not publisher.state.connected, "the publisher to see it", 120)
            while (second := time.monotonic()) - down < args.outage_s:
                write_events(conn, topics.events, n, args.outage_rate)  # one second's events
                n += args.outage_rate
                time.sleep(max(0.0, second + 1.0 - time.monotonic()))
            backlog = outbox.depth()
            broker.start()
            t0, c0 = time.perf_counter(), cpu_self()
            t1 = wait_for(lambda: publisher.state.connected, "the reconnect", 300, 0.005)
            t2 = wait_for(lambda: outbox.depth() == 0, "the backlog drained", 600, 0.005)
            out.update(backlog=backlog, reconnect_s=t1 - t0, drain_s=t2 - t1,
                       drain_cpu=cpu_self() - c0, outage_s=args.outage_s)  # fmt: skip
        finally:
            publisher.stop()
    finally:
        conn.close()
        broker.stop()
    return out


# --- the report --------------------------------------------------------------------------


def rows(s3: dict[str, Any] | None, mq: dict[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def row(figure: str, value: float, unit: str, base: float | None, ratio: float | None,
            target: str, met: bool | None) -> None:  # fmt: skip
        out.append({"figure": figure, "value": value, "unit": unit, "baseline": base,
                    "ratio": ratio, "target": target, "met": met})  # fmt: skip

    if s3 is not None:
        gb, ours, pool, one = s3["bytes"], s3["ours"], s3["boto3_10"], s3["boto3_1"]
        rate = {k: gb / MB / s3[k]["wall"] for k in ("ours", "boto3_10", "boto3_1", "ours_2")}
        row(
            "S3Target.put MB/s vs upload_file (10 thr)",
            rate["ours"],
            "MB/s",
            rate["boto3_10"],
            rate["ours"] / rate["boto3_10"],
            ">= 0.9x",
            rate["ours"] >= 0.9 * rate["boto3_10"],
        )
        row(
            "S3Target.put MB/s vs upload_file (1 thr)",
            rate["ours"],
            "MB/s",
            rate["boto3_1"],
            rate["ours"] / rate["boto3_1"],
            "-",
            None,
        )
        row(
            "S3Target.put, 2 parts in flight, vs (10 thr)",
            rate["ours_2"],
            "MB/s",
            rate["boto3_10"],
            rate["ours_2"] / rate["boto3_10"],
            "-",
            None,
        )
        for name, t in (("S3Target.put", ours), ("upload_file 10 thr", pool),
                        ("upload_file 1 thr", one)):  # fmt: skip
            base = pool["cpu"] / (gb / 1e9)
            value = t["cpu"] / (gb / 1e9)
            row(f"station CPU-s/GB, {name}", value, "s/GB", base, value / base, "-", None)
        server = ours["server_cpu"] / (gb / 1e9)
        base = pool["server_cpu"] / (gb / 1e9)
        row("RGW+OSD CPU-s/GB, put vs upload_file", server, "s/GB", base, server / base, "-", None)
        calls = ours["calls"]
        local = ours["wall"] - ours["open_s"]
        row(
            "put: share with no S3 request open",
            local / ours["wall"],
            "of wall",
            None,
            None,
            "-",
            None,
        )
        sending = ("UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload")
        confirm = sum(v for k, v in calls.items() if k not in sending)
        row(
            "put: share in HEAD/lock/ranged re-reads",
            confirm / ours["wall"],
            "of wall",
            None,
            None,
            "-",
            None,
        )
        r = s3["resume"]
        resent, from_zero = r["resent_bytes"], r["restart_from_zero_bytes"]
        row("resume: bytes re-sent (MB)", resent / MB, "MB", from_zero / MB,
            resent / max(1, from_zero), f"<= 1 part ({s3['part'] / MB:.1f} MB)",
            resent <= s3["part"])  # fmt: skip
    if mq is not None:
        ours_rate = mq["events"] / mq["outbox_s"]
        paho = mq["events"] / mq["paho_s"]
        row(
            "MQTT events/s acked, via outbox",
            ours_rate,
            "ev/s",
            paho,
            ours_rate / paho,
            ">= 1000/s",
            ours_rate >= 1000,
        )
        per = 1000 * mq["outbox_cpu"] / mq["events"]
        base = 1000 * mq["paho_cpu"] / mq["events"]
        row("station CPU-ms per event (outbox vs paho)", per, "ms", base, per / base, "-", None)
        if "backlog" in mq:
            drain = mq["backlog"] / mq["drain_s"] if mq["drain_s"] > 0 else float("inf")
            row(f"drain after {mq['outage_s']:.0f} s outage ({mq['backlog']} ev)", drain,
                "ev/s", paho, drain / paho, ">= 1000/s", drain >= 1000)  # fmt: skip
            row(
                "  restart -> reconnected (back-off)", mq["reconnect_s"], "s", None, None, "-", None
            )
            row("  reconnected -> outbox empty", mq["drain_s"], "s", None, None, "-", None)
    return out


def print_table(table: list[dict[str, Any]]) -> None:
    head = f"{'figure':<46}{'value':>10} {'unit':<8}{'baseline':>10}{'ratio':>8}  {'target':<22}"
    print(head + "result")
    print("-" * (len(head) + 7))
    for r in table:
        base = "" if r["baseline"] is None else f"{r['baseline']:10.2f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:8.2f}"
        met = "" if r["met"] is None else ("met" if r["met"] else "MISSED")
        print(f"{r['figure']:<46}{r['value']:10.2f} {r['unit']:<8}{base:>10}{ratio:>8}  "
              f"{r['target']:<22}{met}")  # fmt: skip


def commit_measured() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout

    dirty = git("status", "--porcelain", "--", "uploader", "agent").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (
        " + uncommitted uploader/agent" if dirty else ""
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 x 32 MiB, 128 MiB, 2000 events, 5 s outage",
    )
    p.add_argument("--files", type=int, default=4, help="files for the throughput (4)")
    p.add_argument("--file-mib", type=int, default=256, help="MiB each (256)")
    p.add_argument("--resume-mib", type=int, default=1024, help="the resumed upload (1024)")
    p.add_argument("--part-mib", type=int, default=16, help="part size, both sides (16)")
    p.add_argument("--events", type=int, default=20000, help="events through the outbox (20000)")
    p.add_argument("--outage-s", type=float, default=60, help="broker outage (60; the issue: 600)")
    p.add_argument("--outage-rate", type=int, default=20, help="events/s written during it (20)")
    p.add_argument("--skip-s3", action="store_true")
    p.add_argument("--skip-mqtt", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.files, args.file_mib, args.resume_mib, args.events, args.outage_s = 2, 32, 128, 2000, 5
    if args.part_mib < 5 or min(args.files, args.file_mib, args.resume_mib, args.events) < 1:
        p.error("--part-mib takes 5 or more (S3's smallest part); sizes and counts take 1 or more")
    return args


def main() -> int:
    args = parse_args()
    logging.getLogger("evidock").addHandler(logging.NullHandler())
    logging.getLogger("evidock").propagate = False  # the publisher's outage lines
    commit = commit_measured()
    load0 = os.getloadavg()[0]
    busy0, t0, own0 = busy_cpu_s(), time.perf_counter(), cpu_self()
    work = Path(tempfile.mkdtemp(prefix="evidock-delivery-", dir="/var/tmp"))
    print(f"commit {commit}; work in {work}; load {load0:.2f}", flush=True)
    s3 = mq = None
    try:
        if not args.skip_s3:
            s3 = s3_bench(args, work)
        if not args.skip_mqtt:
            mq = mqtt_bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - t0
    machine = (busy_cpu_s() - busy0) / (wall * (os.cpu_count() or 1))
    own = (cpu_self() - own0) / (wall * (os.cpu_count() or 1))
    header = (f"commit {commit}; {os.cpu_count()} CPUs; {wall:.0f} s; load {load0:.2f} -> "
              f"{os.getloadavg()[0]:.2f}; machine CPU busy {machine:.0%} (this process "
              f"{own:.0%}, the rest RGW/Mosquitto and other work)")  # fmt: skip
    if s3 is not None:
        r = s3["resume"]
        header += (
            f"\nS3: {args.files} x {args.file_mib} MiB, part {args.part_mib} MiB; resume: "
            f"{r['size'] / MB:.0f} MB, killed {r['killed_after_s']:.1f} s in, "
            f"{r['confirmed_before_kill'] / MB:.0f} MB confirmed, "
            f"{r['parts_started_before']} parts started; resumed {r['parts_reused']} reused + "
            f"{r['parts_sent']} sent in {r['resume_wall_s']:.1f} s, {r['versions']} version(s)"
        )
    print()
    print(header)
    table = rows(s3, mq)
    print_table(table)
    print(json.dumps({"header": header, "rows": table, "s3": s3, "mqtt": mq}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
