"""Delivery off the daemon's main loop: a worker thread with its own connection that stops
between jobs, or inside a put, resumably; a stopped or crashed multipart put continues
from the parts saved on its job."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from delivery_station import PartsTarget, ingested_station, job_rows, uploaded_per_clip

from agent.delivery import DeliveryReport, deliver_due, delivery_loop, delivery_target
from agent.station import Station, embedded_config

PART = 4096


def _parts(row: dict[str, object]) -> list[int]:
    return [part["number"] for part in json.loads(str(row["parts"] or "[]"))]


def test_a_put_stopped_between_parts_resumes_with_only_the_missing_parts(
    tmp_path: Path,
) -> None:
    station = ingested_station(tmp_path, clips=2, size=3 * PART - 10)
    data = station.data_dir
    stop = threading.Event()
    target = PartsTarget(tmp_path / "central", PART, after_part=lambda n: n == 2 and stop.set())
    report = deliver_due(station, station.conn, target, stop=stop)
    assert (report.delivered, report.failed, report.stopped) == (0, 0, True)
    first, second = job_rows(data)
    assert (first["state"], first["attempts"], first["claimed_by"]) == ("queued", 0, None)
    assert first["upload_id"] and _parts(first) == [1, 2]
    assert second["upload_id"] is None
    assert target.received == [(first["sha256"], 1), (first["sha256"], 2)]

    target.after_part = lambda n: None
    report = deliver_due(station, station.conn, target, stop=threading.Event())
    assert report.delivered == 2
    assert target.received[2:] == [
        (first["sha256"], 3),
        (second["sha256"], 1),
        (second["sha256"], 2),
        (second["sha256"], 3),
    ]
    for row in job_rows(data):
        local = station.store.path_for(row["sha256"]).read_bytes()
        assert target.object_path(row["sha256"]).read_bytes() == local
        assert (row["state"], row["upload_id"], row["parts"]) == ("done", None, None)
    station.close()
    assert uploaded_per_clip(data) == {first["clip_id"]: 1, second["clip_id"]: 1}


class PowerCut(BaseException):
    """The deliverer's process dies mid-put."""


def test_the_parts_a_crashed_deliverer_saved_are_not_sent_again(tmp_path: Path) -> None:
    station = ingested_station(tmp_path, clips=1, size=4 * PART)
    data = station.data_dir

    def cut(number: int) -> None:
        if number == 3:
            raise PowerCut

    target = PartsTarget(tmp_path / "central", PART, after_part=cut)
    with pytest.raises(PowerCut):
        deliver_due(station, station.conn, target)
    station.close()
    (row,) = job_rows(data)
    assert (row["state"], row["attempts"], _parts(row)) == ("queued", 0, [1, 2, 3])

    restarted = Station.open(embedded_config(data))
    target.after_part = lambda n: None
    assert deliver_due(restarted, restarted.conn, target).delivered == 1
    restarted.close()
    assert [n for _, n in target.received] == [1, 2, 3, 4]
    assert uploaded_per_clip(data) == {row["clip_id"]: 1}


def _run_loop(
    station: Station, target: object, stop: threading.Event, reports: list[DeliveryReport]
) -> threading.Thread:
    def on_report(report: DeliveryReport) -> None:
        reports.append(report)
        stop.set()  # one pass is enough for these tests

    worker = threading.Thread(
        target=delivery_loop,
        args=(station, target, stop, 3600.0, on_report),
        name="delivery",
    )
    worker.start()
    return worker


def test_the_delivery_loop_works_on_its_own_thread_and_returns_once_stopped(
    tmp_path: Path,
) -> None:
    station = ingested_station(tmp_path, clips=3)
    data = station.data_dir
    stop = threading.Event()
    reports: list[DeliveryReport] = []
    worker = _run_loop(station, delivery_target(station), stop, reports)
    worker.join(timeout=120)  # returns at once after its pass: the hour's wait ends on stop
    assert not worker.is_alive()
    station.close()
    assert [r.delivered for r in reports] == [3]
    assert set(uploaded_per_clip(data).values()) == {1} and len(uploaded_per_clip(data)) == 3


def test_a_stop_reaches_a_long_put_which_the_next_loop_resumes(tmp_path: Path) -> None:
    station = ingested_station(tmp_path, clips=2, size=3 * PART)
    data = station.data_dir
    stop = threading.Event()
    target = PartsTarget(tmp_path / "central", PART, after_part=lambda n: stop.set())
    reports: list[DeliveryReport] = []
    worker = _run_loop(station, target, stop, reports)
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert [(r.delivered, r.stopped) for r in reports] == [(0, True)]
    first, second = job_rows(data)
    assert (first["state"], _parts(first), first["claimed_by"]) == ("queued", [1], None)

    target.after_part = lambda n: None
    again = threading.Event()
    worker = _run_loop(station, target, again, reports)
    worker.join(timeout=120)
    assert not worker.is_alive()
    station.close()
    assert reports[-1].delivered == 2
    assert [n for sha, n in target.received if sha == first["sha256"]] == [1, 2, 3]
    assert uploaded_per_clip(data) == {first["clip_id"]: 1, second["clip_id"]: 1}
