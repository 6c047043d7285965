"""Which job a claim takes first: secret-case, case-linked and important clips before the
rest, then the oldest; decided when claimed (a link made after the ingest counts), with
real claims on a real station. Backoff draws full jitter within its bounds; a job parked
after N attempts keeps its reason until retry_parked queues it again."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from station_cli import run_cli

from agent.database import open_station_db, transaction
from agent.delivery_priority import priorities, station_queue
from agent.station import Station
from config import load_config
from uploader import (
    FAILURE_LOCAL,
    FAILURE_TARGET,
    FAILURE_UNAVAILABLE,
    UploadQueue,
    backoff_delay,
)

SECRET_CASE = "朝执罚〔2026〕7号"
PLAIN_CASE = "朝执罚〔2026〕8号"
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _station(tmp_path: Path) -> tuple[Path, list[str]]:
    """Six clips, ingested in name order; V0004 is marked important by its name."""
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "prio-01"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    folder = tmp_path / "rec" / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    names = ["V0001.MP4", "V0002.MP4", "V0003.MP4", "V0004_IMP.MP4", "V0005.MP4", "V0006.MP4"]
    for n, name in enumerate(names):
        (folder / name).write_bytes(f"clip {n} ".encode() * 50)
    proc = run_cli("ingest", tmp_path / "rec", "--config", config, "--json", check=0)
    by_name = {Path(c["source_path"]).name: c["clip_id"] for c in json.loads(proc.stdout)["clips"]}
    return config, [by_name[name] for name in names]


def _claim_order(config: Path) -> list[str]:
    station = Station.open(load_config(config), config_file=config)
    try:
        queue = station_queue(station, station.conn)
        order = []
        later = datetime.now(UTC) + timedelta(minutes=1)
        taken = []
        while claimed := queue.claim("tester", later):
            order.append(claimed[0].clip_id)
            taken += claimed
        for job in taken:  # given back untouched: the next look claims afresh
            queue.release(job)
        return order
    finally:
        station.close()


def test_claims_take_secret_then_case_then_important_then_oldest(tmp_path: Path) -> None:
    config, clips = _station(tmp_path)
    c1, c2, c3, c4, c5, c6 = clips
    # Nothing linked yet: the important clip first, then the queue's order.
    assert _claim_order(config)[:2] == [c4, c1]
    # Links made after the jobs were queued count at the next claim.
    for number, sensitivity in ((SECRET_CASE, "secret"), (PLAIN_CASE, "normal")):
        run_cli("case", "create", "--config", config, "--case", number, "--subject", "张三",
                "--category", "行政处罚", "--unit", "朝阳分局", "--sensitivity", sensitivity,
                check=0)  # fmt: skip
    run_cli("link", "--config", config, "--case", PLAIN_CASE, "--clip", c5, check=0)
    run_cli("link", "--config", config, "--case", SECRET_CASE, "--clip", c6, check=0)
    run_cli("link", "--config", config, "--case", PLAIN_CASE, "--clip", c2, check=0)
    run_cli("unlink", "--config", config, "--case", PLAIN_CASE, "--clip", c2, check=0)
    assert _claim_order(config) == [c6, c5, c4, c1, c2, c3]


def test_a_session_link_ranks_every_clip_of_the_session_and_says_why(tmp_path: Path) -> None:
    config, clips = _station(tmp_path)
    station = Station.open(load_config(config), config_file=config)
    try:
        session = station.conn.execute("SELECT session_id FROM clips LIMIT 1").fetchone()[0]
        run_cli("link", "--config", config, "--case", PLAIN_CASE, "--session", session, check=0)
        found = priorities(station.conn, station.ledger(), clips)
    finally:
        station.close()
    assert set(found) == set(clips)
    assert found[clips[3]].reasons == (f"case {PLAIN_CASE}", "important")
    assert found[clips[3]].rank > found[clips[0]].rank == 2


def test_backoff_is_full_jitter_within_the_exponential_bound() -> None:
    rng = random.Random(7)
    for attempts in range(1, 16):
        bound = min(5.0 * 2 ** (attempts - 1), 3600.0)
        draws = [backoff_delay(attempts, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in draws)
        # full jitter spreads over the whole range, not a band at its top
        assert min(draws) < bound * 0.1 and max(draws) > bound * 0.9
    # the same seed draws the same delays: a test can know them
    assert backoff_delay(3, random.Random(1)) == backoff_delay(3, random.Random(1))


def test_a_failed_job_waits_its_drawn_delay(tmp_path: Path) -> None:
    queue = UploadQueue(open_station_db(tmp_path / "station.db"), rng=random.Random(3))
    with transaction(queue.conn):
        queue.enqueue("c1", "a" * 64, 10, "folder", T0)
    expected = backoff_delay(4, random.Random(3))
    queue.conn.execute("UPDATE upload_jobs SET attempts = 3")
    (job,) = queue.claim("me", T0)
    with transaction(queue.conn):
        assert queue.fail(job, "unreachable", T0, max_attempts=10) == "queued"
    (row,) = queue.jobs()
    assert row.next_attempt_at is not None
    due = datetime.fromisoformat(row.next_attempt_at.replace("Z", "+00:00"))
    assert abs((due - T0).total_seconds() - expected) < 1e-3
    assert queue.claim("me", due - timedelta(milliseconds=2)) == []
    assert [j.clip_id for j in queue.claim("me", due)] == ["c1"]
    queue.conn.close()


def test_parked_after_n_attempts_with_its_reason_then_retried_by_class(tmp_path: Path) -> None:
    queue = UploadQueue(open_station_db(tmp_path / "station.db"), rng=random.Random(1))
    with transaction(queue.conn):
        for n, clip in enumerate(("c1", "c2", "c3")):
            queue.enqueue(clip, f"{n}" * 64, 10, "folder", T0)
    now = T0
    for attempt in range(1, 4):
        now += timedelta(hours=2)
        (job,) = [j for j in queue.claim("me", now, limit=3) if j.clip_id == "c1"]
        for other in queue.jobs("queued"):
            if other.claimed_by and other.clip_id != "c1":
                queue.release(other)
        with transaction(queue.conn):
            state = queue.fail(job, f"central folder gone ({attempt})", now, max_attempts=3)
        assert state == ("parked" if attempt == 3 else "queued")
    (parked,) = queue.jobs("parked")
    assert (parked.clip_id, parked.attempts, parked.failure) == ("c1", 3, FAILURE_UNAVAILABLE)
    assert parked.last_error == "central folder gone (3)"
    for clip, failure in (("c2", FAILURE_LOCAL), ("c3", FAILURE_TARGET)):
        (job,) = [j for j in queue.claim("me", now, limit=3) if j.clip_id == clip]
        for other in queue.jobs("queued"):
            if other.claimed_by and other.clip_id != clip:
                queue.release(other)
        with transaction(queue.conn):
            queue.park(job, f"{failure} trouble", now, failure)
    assert queue.retry_parked(now, failure=FAILURE_UNAVAILABLE) == 1
    assert {j.clip_id for j in queue.jobs("parked")} == {"c2", "c3"}
    (again,) = queue.jobs("queued")
    assert (again.clip_id, again.attempts, again.last_error) == ("c1", 0, parked.last_error)
    assert [j.clip_id for j in queue.claim("me", now)] == ["c1"]
    assert queue.retry_parked(now, failure=[FAILURE_TARGET]) == 1
    assert queue.retry_parked(now) == 1  # every class: the local-integrity one too
    assert queue.jobs("parked") == []
    queue.conn.close()
