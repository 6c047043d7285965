"""The shared hashing pool: bounded threads, every lane in order, lanes taking turns."""

from __future__ import annotations

import threading

import pytest

from hashing import HashPool


def _chunk(value: int) -> memoryview:
    return memoryview(bytes([value]))


def test_a_lane_hashes_its_chunks_in_order_and_calls_done_after_each() -> None:
    pool = HashPool(2)
    seen: list[int] = []
    done: list[int] = []
    lane = pool.lane(lambda chunk: seen.append(chunk[0]))
    for value in range(200):
        lane.put(_chunk(value), lambda value=value: done.append(value))  # type: ignore[misc]
    lane.drain()
    assert seen == list(range(200))
    assert sorted(done) == list(range(200))
    assert lane.error is None


def test_many_lanes_never_use_more_threads_than_the_pool_has() -> None:
    pool = HashPool(2)
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(chunk: memoryview) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.01)
        with lock:
            running -= 1

    lanes = [pool.lane(work) for _ in range(24)]
    for _ in range(5):
        for lane in lanes:
            lane.put(_chunk(0), lambda: None)
    for lane in lanes:
        lane.drain()
    assert peak <= 2
    assert pool.peak_workers == 2


def test_lanes_take_turns_so_one_long_stream_does_not_starve_a_short_one() -> None:
    pool = HashPool(1)
    order: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def big(chunk: memoryview) -> None:
        started.set()
        release.wait(5)
        order.append("big")

    big_lane = pool.lane(big)
    small_lane = pool.lane(lambda chunk: order.append("small"))
    for _ in range(50):
        big_lane.put(_chunk(0), lambda: None)
    assert started.wait(5)
    # The worker is busy with the big stream's first chunk; the small stream queues now.
    small_lane.put(_chunk(0), lambda: None)
    release.set()
    small_lane.drain()
    big_lane.drain()
    # One chunk of the big stream, then the small one's turn: not after all 50.
    assert order.index("small") <= 2


def test_a_failed_chunk_is_kept_and_the_rest_are_released_unhashed() -> None:
    pool = HashPool(2)
    hashed: list[int] = []
    released: list[int] = []

    def work(chunk: memoryview) -> None:
        if chunk[0] == 3:
            raise RuntimeError("hasher broke")
        hashed.append(chunk[0])

    lane = pool.lane(work)
    for value in range(8):
        lane.put(_chunk(value), lambda value=value: released.append(value))  # type: ignore[misc]
    lane.drain()
    assert hashed == [0, 1, 2]
    assert sorted(released) == list(range(8))
    assert isinstance(lane.error, RuntimeError)


def test_idle_workers_end_and_come_back_when_there_is_work() -> None:
    pool = HashPool(2, linger=0.01)
    lane = pool.lane(lambda chunk: None)
    lane.put(_chunk(0), lambda: None)
    lane.drain()
    for thread in [t for t in threading.enumerate() if t.name == "evidock-hash"]:
        thread.join(5)
    assert pool.alive == 0
    lane.put(_chunk(1), lambda: None)
    lane.drain()
    assert lane.error is None


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least 1 worker"):
        HashPool(0)
