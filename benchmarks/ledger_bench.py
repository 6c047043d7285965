"""Ledger benchmark: append rate, full verification time, inclusion proof time.

    python3 benchmarks/ledger_bench.py [--leaves N] [--batch B]

Prints a table; each figure beside a baseline measured in the same run (the cost of
only decoding and hashing the same leaf bytes), so the ratios travel between machines.
Targets: append >= 5,000 leaves/s batched; verify 1,000,000 leaves <= 20 s; an
inclusion proof <= 1 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.database import open_readonly, open_station_db
from ledger.anchor import make_checkpoint
from ledger.keys import StationKey
from ledger.log import Ledger
from ledger.merkle import verify_inclusion
from ledger.verify import verify_station

TARGET_LEAVES = 1_000_000


def session_events(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """A realistic mix: per docking, 1 opened, 8 clips x (ingested, linked, uploaded), 1 closed."""
    i = 0
    session = 0
    while True:
        session += 1
        sid = f"s{session:08d}"
        batch: list[tuple[str, dict[str, Any]]] = [
            (
                "docking.opened",
                {
                    "session_id": sid,
                    "recorder": "DSJ-A1-0001",
                    "volume": "/media/r",
                    "officer": "010203",
                    "recorder_model": "DSJ-A1",
                },
            ),
        ]
        for c in range(8):
            cid = f"{sid}-c{c}"
            sha = hashlib.sha256(cid.encode()).hexdigest()
            windows = [hashlib.sha256(f"{cid}/{w}".encode()).hexdigest() for w in range(4)]
            batch += [
                (
                    "clip.ingested",
                    {
                        "clip_id": cid,
                        "session_id": sid,
                        "sha256": sha,
                        "blake3": sha,
                        "sm3": None,
                        "size": 4 << 26,
                        "window_size": 1 << 26,
                        "windows": windows,
                        "recorder": "DSJ-A1-0001",
                        "source_path": f"DCIM/100MEDIA/{cid}.MP4",
                        "source_path_b64": None,
                        "recorder_time": "2026-11-22T08:30:15+08:00",
                        "media": {
                            "duration_ms": 600000,
                            "codec": "h264",
                            "audio_codec": "aac",
                            "creation_time": "2026-11-22T00:30:15Z",
                            "location": "+31.2304+121.4737/",
                            "readable": True,
                            "problem": None,
                        },
                    },
                ),
                (
                    "case.linked",
                    {
                        "clip_id": cid,
                        "session_id": None,
                        "case_number": "沪公(交)行罚决字〔2026〕123号",
                        "officer": "010203",
                        "object_of_proof": "违法停车现场",
                        "reason": "rule",
                    },
                ),
                (
                    "clip.uploaded",
                    {
                        "clip_id": cid,
                        "sha256": sha,
                        "target": "s3",
                        "location": f"s3://ev/{sha}",
                        "confirmed_size": 4 << 26,
                        "confirmed_sha256": sha,
                    },
                ),
            ]
        batch.append(("docking.closed", {"session_id": sid, "clips": 8, "problems": []}))
        for event in batch:
            if i == n:
                return
            yield event
            i += 1


def build(path: Path, leaves: int, batch: int) -> tuple[float, Ledger, StationKey]:
    conn = open_station_db(path / "station.db")
    ledger = Ledger(conn, "bench-01")
    key = StationKey.load_or_create(path / "keys", "evidock.station/bench-01")
    events = session_events(leaves)
    start = time.perf_counter()
    while chunk := [e for _, e in zip(range(batch), events, strict=False)]:
        ledger.append_many(chunk)
    elapsed = time.perf_counter() - start
    make_checkpoint(ledger, [key])
    return elapsed, ledger, key


def baseline(conn_path: Path) -> float:
    """Reading, JSON-decoding and SHA-256 of every leaf: the floor under verification."""
    conn = open_readonly(conn_path)
    start = time.perf_counter()
    for (data,) in conn.execute("SELECT data FROM ledger_leaves ORDER BY idx"):
        json.loads(data)
        hashlib.sha256(b"\x00" + data).digest()
    conn.close()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=TARGET_LEAVES)
    parser.add_argument("--batch", type=int, default=1000, help="leaves per transaction")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        append_s, ledger, key = build(root, args.leaves, args.batch)
        rate = args.leaves / append_s
        rows.append(
            (
                "append (batched)",
                f"{rate:,.0f} leaves/s",
                f"batch {args.batch}, {args.leaves:,} leaves",
                ">= 5,000/s",
            )
        )

        single = Ledger(ledger.conn, "bench-01")
        start = time.perf_counter()
        for kind, body in session_events(200):
            single.append(kind, body)
        one = 200 / (time.perf_counter() - start)
        rows.append(("append (1 per txn)", f"{one:,.0f} leaves/s", "synchronous=FULL fsync", "-"))
        make_checkpoint(single, [key])
        size = ledger.size()
        db = root / "station.db"

        base = baseline(db)
        conn = open_readonly(db)
        start = time.perf_counter()
        report = verify_station(conn, _pub(key))
        verify_s = time.perf_counter() - start
        conn.close()
        if not report.ok:
            print("\n".join(report.problems), file=sys.stderr)
            return 1
        scale = TARGET_LEAVES / size
        rows.append(
            (
                "verify (no store)",
                f"{verify_s:.2f} s",
                f"{size:,} leaves; {verify_s / base:.1f}x baseline {base:.2f} s",
                "<= 20 s / 1M",
            )
        )
        if size < TARGET_LEAVES:
            rows.append(("  extrapolated", f"{verify_s * scale:.1f} s", "to 1,000,000 leaves", ""))

        rng = random.Random(1)
        indexes = [rng.randrange(size) for _ in range(2000)]
        root_hash = ledger.root(size)
        start = time.perf_counter()
        paths = [ledger.inclusion_proof(i, size) for i in indexes]
        proof_ms = (time.perf_counter() - start) * 1000 / len(indexes)
        for i, path in zip(indexes, paths, strict=True):
            verify_inclusion(ledger.tree.node(0, i), i, size, path, root_hash)
        rows.append(("inclusion proof", f"{proof_ms:.3f} ms", f"tree of {size:,}", "<= 1 ms"))
        db_mb = db.stat().st_size / 1e6
        rows.append(("database size", f"{db_mb:,.0f} MB", f"{db_mb * 1e6 / size:,.0f} B/leaf", ""))
    width = [max(len(r[c]) for r in rows) for c in range(4)]
    header = ("measure", "result", "detail", "target")
    width = [max(w, len(h)) for w, h in zip(width, header, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))
    return 0


def _pub(key: StationKey) -> Any:
    from ledger.keys import PublicKeyFile

    return PublicKeyFile(key.verifier.public, key.name)


if __name__ == "__main__":
    sys.exit(main())
