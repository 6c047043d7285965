"""Window hashes: BLAKE3 in new leaves (what `dd | b3sum` prints for a window), SHA-256 in
leaves written before the ``window_hash`` key; the audit and the rules read either."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
from pathlib import Path

import blake3
import pytest
from station_cli import ingest_json, run_cli

from config.window_hash import window_digest, window_hash_of
from ledger.audit import ClipRecord, changed_windows
from ledger.rules import body_problem

WINDOW = 64 << 10


def _windows(data: bytes, digest: str) -> tuple[str, ...]:
    return tuple(window_digest(digest, data[i : i + WINDOW]) for i in range(0, len(data), WINDOW))


@pytest.mark.parametrize("digest", ["blake3", "sha256"])
def test_the_audit_locates_a_changed_window_with_the_leafs_own_window_hash(digest: str) -> None:
    data = os.urandom(5 * WINDOW + 17)
    clip = ClipRecord(1, "c1", hashlib.sha256(data).hexdigest(), len(data), WINDOW,
                      _windows(data, digest), digest)  # fmt: skip
    assert changed_windows(io.BytesIO(data), clip) == ([], len(data))
    damaged = bytearray(data)
    damaged[3 * WINDOW + 5] ^= 1
    assert changed_windows(io.BytesIO(bytes(damaged)), clip) == ([3], len(data))


def test_windows_read_with_the_wrong_hash_all_differ() -> None:
    # The audit really uses the named hash: SHA-256 windows read as BLAKE3 never match.
    data = os.urandom(3 * WINDOW)
    clip = ClipRecord(1, "c1", "", len(data), WINDOW, _windows(data, "sha256"), "blake3")
    assert changed_windows(io.BytesIO(data), clip)[0] == [0, 1, 2]


def test_a_leaf_without_window_hash_means_sha256_and_an_unknown_one_is_refused() -> None:
    assert window_hash_of({"windows": []}) == "sha256"
    assert window_hash_of({"window_hash": "blake3"}) == "blake3"
    body = {
        "clip_id": "c1",
        "session_id": "s1",
        "sha256": "0" * 64,
        "blake3": "0" * 64,
        "sm3": None,
        "size": 0,
        "window_size": WINDOW,
        "windows": [],
        "recorder": "R1",
        "source_path": "DCIM/A.MP4",
        "source_path_b64": None,
        "recorder_time": None,
        "media": None,
    }
    assert body_problem("clip.ingested", body) is None
    assert body_problem("clip.ingested", {**body, "window_hash": "blake3"}) is None
    problem = body_problem("clip.ingested", {**body, "window_hash": "md5"})
    assert problem is not None and "window_hash is not one of sha256, blake3" in problem


def test_an_ingested_clips_windows_are_what_b3sum_prints_for_each_window(
    recorder: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    ingest_json(recorder, data_dir)
    conn = sqlite3.connect(data_dir / "station.db")
    try:
        rows = conn.execute("SELECT data FROM ledger_leaves WHERE kind = 'clip.ingested'")
        clips = [json.loads(data) for (data,) in rows]
    finally:
        conn.close()
    assert clips
    for leaf in clips:
        body = leaf["body"]
        assert body["window_hash"] == "blake3"
        data = (recorder / body["source_path"]).read_bytes()
        size = body["window_size"]
        expected = [
            blake3.blake3(data[i : i + size]).hexdigest() for i in range(0, len(data), size)
        ]
        assert body["windows"] == expected
    run_cli("verify", "--data-dir", data_dir, check=0)
