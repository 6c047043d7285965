"""Two deliverers over one queue (the daemon's worker and `evidock deliver`): each job is
claimed by one of them, every clip is delivered, and `clip.uploaded` is recorded once
per clip, whatever the interleaving; a crashed deliverer's claim runs out."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from delivery_station import (
    MeanwhileTarget,
    clip_ids,
    ingested_station,
    job_rows,
    uploaded_per_clip,
)
from station_cli import REPO, run_cli

from agent.delivery import DeliveryReport, deliver_due, delivery_target
from config.common import utc_now
from uploader import LEASE, FolderTarget, UploadQueue


def test_a_deliverer_running_inside_anothers_put_never_delivers_the_same_clip(
    tmp_path: Path,
) -> None:
    station = ingested_station(tmp_path, clips=6)
    data = station.data_dir
    inner = delivery_target(station)
    assert isinstance(inner, FolderTarget)
    others: list[DeliveryReport] = []

    def other_deliverer() -> None:
        conn = station.connect()
        try:
            others.append(deliver_due(station, conn, delivery_target(station)))
        finally:
            conn.close()

    first = deliver_due(station, station.conn, MeanwhileTarget(inner, other_deliverer))
    station.close()
    (other,) = others
    assert (first.delivered, other.delivered) == (1, 5)
    assert other.busy == 1  # the job the first deliverer was putting
    assert uploaded_per_clip(data) == dict.fromkeys(clip_ids(data), 1)
    run_cli("verify", "--data-dir", data, check=3)  # intact; nothing signed the new leaves


def test_a_deliverer_whose_claim_ran_out_mid_put_does_not_record_it_again(
    tmp_path: Path,
) -> None:
    station = ingested_station(tmp_path, clips=3)
    data = station.data_dir
    now = [utc_now()]
    others: list[DeliveryReport] = []

    def stalled_then_overtaken() -> None:
        # The first deliverer hangs in its put longer than its lease ...
        now[0] += LEASE + timedelta(seconds=1)
        conn = station.connect()
        try:  # ... and another takes its job and delivers everything.
            others.append(
                deliver_due(station, conn, delivery_target(station), clock=lambda: now[0])
            )
        finally:
            conn.close()

    target = MeanwhileTarget(delivery_target(station), stalled_then_overtaken)
    first = deliver_due(station, station.conn, target, clock=lambda: now[0])
    station.close()
    assert (first.delivered, first.lost, others[0].delivered) == (0, 1, 3)
    assert uploaded_per_clip(data) == dict.fromkeys(clip_ids(data), 1)
    assert {row["state"] for row in job_rows(data)} == {"done"}


def test_a_crashed_deliverers_job_is_taken_once_its_lease_runs_out(tmp_path: Path) -> None:
    station = ingested_station(tmp_path, clips=3)
    data = station.data_dir
    crashed = UploadQueue(station.connect())
    now = utc_now()
    (held,) = crashed.claim("a deliverer that crashed", now)
    crashed.conn.close()
    target = delivery_target(station)
    report = deliver_due(station, station.conn, target, clock=lambda: now)
    assert (report.delivered, report.busy, report.waiting) == (2, 1, 0)
    assert "1 being delivered by another deliverer right now" in report.lines()[1]
    assert held.clip_id not in uploaded_per_clip(data)
    later = now + LEASE
    report = deliver_due(station, station.conn, target, clock=lambda: later)
    station.close()
    assert (report.delivered, report.busy) == (1, 0)
    assert uploaded_per_clip(data) == dict.fromkeys(clip_ids(data), 1)


def test_deliverers_on_threads_of_their_own_deliver_each_clip_once(tmp_path: Path) -> None:
    station = ingested_station(tmp_path, clips=40)
    data = station.data_dir
    start = threading.Barrier(3)
    reports: list[DeliveryReport] = []

    def deliverer() -> None:
        conn = station.connect()
        try:
            start.wait()
            reports.append(deliver_due(station, conn, delivery_target(station)))
        finally:
            conn.close()

    threads = [threading.Thread(target=deliverer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    station.close()
    assert sum(r.delivered for r in reports) == 40
    assert uploaded_per_clip(data) == dict.fromkeys(clip_ids(data), 1)


def test_two_deliver_commands_at_once_record_each_clip_once(tmp_path: Path) -> None:
    station = ingested_station(tmp_path, clips=30)
    data = station.data_dir
    station.close()
    command = [sys.executable, "-m", "agent.cli", "deliver", "--data-dir", str(data)]
    procs = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert uploaded_per_clip(data) == dict.fromkeys(clip_ids(data), 1)
    assert {row["state"] for row in job_rows(data)} == {"done"}
    run_cli("verify", "--data-dir", data, check=0)
