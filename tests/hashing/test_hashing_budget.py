"""One buffer budget shared by many recorders: bounded, fair, and every copy correct."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from hashing import BufferBudget, CopyEngine, EvidenceStore, HashOptions


def test_hashing_budget_hands_buffers_out_in_arrival_order() -> None:
    budget = BufferBudget(2 * 4096, 4096)
    held = [budget.acquire(), budget.acquire()]
    order: list[int] = []

    def waiter(index: int) -> None:
        buffer = budget.acquire()
        order.append(index)
        budget.release(buffer)

    threads = []
    for index in range(5):
        thread = threading.Thread(target=waiter, args=(index,))
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # each waiter queues before the next arrives
    assert order == []  # nobody gets a buffer beyond the budget
    budget.release(held.pop())
    budget.release(held.pop())
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]
    assert budget.allocated_bytes <= 2 * 4096


def test_hashing_budget_refuses_less_than_one_read() -> None:
    with pytest.raises(ValueError, match="buffer_budget_mib"):
        BufferBudget(1000, 4096)


def test_hashing_eight_recorders_share_a_tiny_budget(tmp_path: Path) -> None:
    read = 16 << 10
    options = HashOptions(read_size=read, window_size=64 << 10, buffer_budget_bytes=3 * read)
    budget = BufferBudget(3 * read, read)
    store = EvidenceStore(tmp_path / "store")
    clips = []
    for index in range(8):
        clip = tmp_path / f"rec{index}" / "FILE0001.MP4"
        clip.parent.mkdir()
        clip.write_bytes(os.urandom(300_000 + index * 7_777))
        clips.append(clip)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def recorder(index: int) -> None:
        try:
            engine = CopyEngine(store, options, budget=budget)
            results[index] = engine.copy(clips[index], resume_key=f"{index:02x}").sha256
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=recorder, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for index, clip in enumerate(clips):
        assert results[index] == hashlib.sha256(clip.read_bytes()).hexdigest()
        assert store.path_for(results[index]).read_bytes() == clip.read_bytes()
    assert budget.allocated_bytes <= 3 * read
    assert list(store.staging_dir.iterdir()) == []
