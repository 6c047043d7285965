"""`evidock queue` as IT sees it, and delivery that is never silent: a broken central
folder makes `run --once` exit 1 and say why, every job shows its attempts, next
attempt, last error and failure class; parked jobs come back with --retry-parked; several
workers deliver at once without ever taking one job twice."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from station_cli import run_cli

from agent.delivery import deliver_concurrently, delivery_target
from agent.station import Station
from agent.station_args import sign
from config import load_config
from config.common import utc_now
from uploader import Confirmation, PutProgress, Target, UploadedPart, UploadQueue, UploadState

CASE = "朝执罚〔2026〕5号"


def _config(tmp_path: Path, max_attempts: int = 2) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        '[station]\nid = "queue-01"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'anchor_dir = "{tmp_path / "anchors"}"\nmax_attempts = {max_attempts}\n',
        "utf-8",
    )
    return path


def _recorder(root: Path, clips: int) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(clips):
        (folder / f"V{n:04d}.MP4").write_bytes(f"clip {n} ".encode() * 64)
    return root


def _make_due(data: Path) -> None:
    conn = sqlite3.connect(data / "station.db")
    try:
        conn.execute("UPDATE upload_jobs SET next_attempt_at = '2000-01-01T00:00:00Z'")
        conn.commit()
    finally:
        conn.close()


def _queue(config: Path, *extra: str, check: int | None = None) -> tuple[int, dict[str, Any]]:
    proc = run_cli("queue", "--config", config, "--json", *extra, check=check)
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_a_broken_central_folder_is_never_silent(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "mount").mkdir()
    _recorder(tmp_path / "mount" / "REC0007", 3)
    (tmp_path / "central").mkdir()
    (tmp_path / "central" / "objects").write_text("not a folder")  # central cannot take files
    once = run_cli("run", "--config", config, "--once")
    assert once.returncode == 1, (once.stdout, once.stderr)
    assert "Traceback" not in once.stderr
    said = once.stdout + once.stderr
    assert "failed (attempt 1)" in said and str(tmp_path / "central") in said
    assert "delivered 0, failed 3 (will be retried)" in said

    code, listing = _queue(config)
    assert code == 0  # failing, not parked yet: retried on its own
    jobs = listing["jobs"]
    assert len(jobs) == 3 and {j["state"] for j in jobs} == {"queued"}
    for job in jobs:
        assert job["attempts"] == 1 and job["failure"] == "target-unavailable"
        assert str(tmp_path / "central") in job["last_error"]
        assert job["next_attempt_at"] is not None and job["sent_bytes"] == 0
        assert job["target"] == "folder" and len(job["sha256"]) == 64
    assert listing["totals"]["queued"] == 3
    assert listing["totals"]["bytes_waiting"] == sum(j["size"] for j in jobs)
    text = run_cli("queue", "--config", config, check=0).stdout
    assert "last error [target-unavailable]" in text and "3 queued" in text

    # the second attempt parks them (max_attempts = 2), with the reason
    _make_due(tmp_path / "d")
    run_cli("deliver", "--config", config, check=1)
    code, listing = _queue(config, "--state", "parked")
    assert code == 1
    assert len(listing["jobs"]) == 3 and {j["attempts"] for j in listing["jobs"]} == {2}
    assert all(str(tmp_path / "central") in j["last_error"] for j in listing["jobs"])
    assert listing["totals"]["parked_by_failure"] == {"target-unavailable": 3}
    text = run_cli("queue", "--config", config, check=1).stdout
    assert "parked [target-unavailable]" in text and "--retry-parked" in text

    # IT fixes central storage, then sends the parked jobs back
    (tmp_path / "central" / "objects").unlink()
    code, listing = _queue(config, "--retry-parked")
    assert code == 0 and listing["retried"] == 3
    assert {(j["state"], j["attempts"]) for j in listing["jobs"]} == {("queued", 0)}
    run_cli("deliver", "--config", config, check=0)
    code, listing = _queue(config, "--state", "done")
    assert code == 0 and len(listing["jobs"]) == 3
    assert all(j["sent_bytes"] == j["size"] and j["location"] for j in listing["jobs"])
    run_cli("verify", "--config", config, check=0)


def test_the_listing_shows_priority_and_the_bytes_of_a_resumable_upload(tmp_path: Path) -> None:
    config = _config(tmp_path)
    proc = run_cli("ingest", _recorder(tmp_path / "rec", 2), "--config", config, "--json")
    clips = [c["clip_id"] for c in json.loads(proc.stdout)["clips"]]
    run_cli("link", "--config", config, "--case", CASE, "--clip", clips[1], check=0)
    station = Station.open(load_config(config), config_file=config)
    try:  # a put that stopped after one part saved its state on the job
        queue = UploadQueue(station.conn)
        claimed = queue.claim("someone", utc_now(), limit=2)
        (job,) = [j for j in claimed if j.clip_id == clips[0]]
        state = UploadState("upload-1", (UploadedPart(1, 100, '"etag"'),))
        queue.release(queue.renew(job, utc_now(), state=state))
        (other,) = [j for j in claimed if j.clip_id == clips[1]]
        queue.release(other)
    finally:
        station.close()
    _code, listing = _queue(config, check=0)
    by_clip = {j["clip_id"]: j for j in listing["jobs"]}
    assert by_clip[clips[0]]["sent_bytes"] == 100 and by_clip[clips[0]]["resumable"]
    assert by_clip[clips[0]]["priority"] == []
    assert by_clip[clips[1]]["priority"] == [f"case {CASE}"]
    text = run_cli("queue", "--config", config, check=0).stdout
    assert f"sent 100 of {by_clip[clips[0]]['size']} bytes" in text
    assert f"first: case {CASE}" in text


class _Overlapping:
    """The real folder target; the first put of each of two workers waits for the other,
    so two puts are surely under way at once. Every put is counted."""

    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.name = inner.name
        self.lock = threading.Lock()
        self.puts: list[tuple[str, str]] = []
        self.meet = threading.Barrier(2, timeout=30)
        self.met: set[str] = set()

    def head(self, sha256: str) -> Confirmation | None:
        return self.inner.head(sha256)

    def put(
        self,
        sha256: str,
        source: Path,
        meta: Mapping[str, Any],
        *,
        state: UploadState | None = None,
        progress: PutProgress | None = None,
        stop: threading.Event | None = None,
    ) -> Confirmation:
        me = threading.current_thread().name
        with self.lock:
            self.puts.append((me, sha256))
            first = me not in self.met and len(self.met) < 2
            self.met.add(me)
        if first:
            self.meet.wait()
        return self.inner.put(sha256, source, meta, state=state, progress=progress, stop=stop)

    def put_anchor(self, name: str, text: str) -> str:
        return self.inner.put_anchor(name, text)


def test_workers_deliver_at_once_and_never_take_one_job_twice(tmp_path: Path) -> None:
    config = _config(tmp_path)
    clips = 24
    run_cli("ingest", _recorder(tmp_path / "rec", clips), "--config", config, check=0)
    station = Station.open(load_config(config), config_file=config)
    try:
        target = _Overlapping(delivery_target(station))
        report = deliver_concurrently(station, station.conn, target, 4)
        uploaded = station.conn.execute(
            "SELECT clip_id, count(*) FROM ledger_leaves WHERE kind = 'clip.uploaded'"
            " GROUP BY clip_id"
        ).fetchall()
        sign(station)
    finally:
        station.close()
    assert report.delivered == clips and report.ok and report.lost == 0
    shas = [sha for _who, sha in target.puts]
    assert len(shas) == clips and len(set(shas)) == clips  # each job put once, by one worker
    assert len({who for who, _sha in target.puts}) >= 2
    assert len(uploaded) == clips and {n for _c, n in uploaded} == {1}
    run_cli("verify", "--config", config, check=0)


def test_the_delivery_loop_runs_its_workers_each_pass(tmp_path: Path) -> None:
    from agent.delivery import delivery_loop
    from agent.delivery_report import DeliveryReport

    config = _config(tmp_path)
    run_cli("ingest", _recorder(tmp_path / "rec", 6), "--config", config, check=0)
    station = Station.open(load_config(config), config_file=config)
    stop = threading.Event()
    reports: list[DeliveryReport] = []

    def on_report(report: DeliveryReport) -> None:
        reports.append(report)
        stop.set()

    try:
        loop = threading.Thread(
            target=delivery_loop,
            args=(station, delivery_target(station), stop, 60.0, on_report),
            kwargs={"workers": 3},
        )
        loop.start()
        loop.join(timeout=timedelta(minutes=2).total_seconds())
        assert not loop.is_alive()
    finally:
        station.close()
    assert len(reports) == 1 and reports[0].delivered == 6 and reports[0].waiting == 0
