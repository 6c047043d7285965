"""A station and a docked recorder for the wipe tests, driven through `evidock`."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from station_cli import run_cli

FOOTAGE = {
    "DCIM/100MEDIA/20261122_083015_0001.MP4",
    "DCIM/100MEDIA/20261122_083015_0001.NMEA",
    "DCIM/100MEDIA/20261122_083022_0002.MP4",
    "DCIM/100MEDIA/20261122_083022_0002.NMEA",
    "DCIM/100MEDIA/20261122_083029_0003.MP4",
    "DCIM/100MEDIA/20261122_083029_0003.NMEA",
    "DCIM/100MEDIA/20261122_083043_0005.JPG",
    "RECORD/20261122_083036_0004.WAV",
}
CLIP = "DCIM/100MEDIA/20261122_083015_0001.MP4"


def station(tmp_path: Path, *, wipe: str | None = None, **hashing: object) -> Path:
    """A station config under ``tmp_path`` (docking.wipe and hashing keys as given)."""
    path = tmp_path / "station.toml"
    docking = f'wipe = "{wipe}"\n' if wipe else ""
    hashing_text = "".join(
        f"{key} = {json.dumps(value) if isinstance(value, str) else value}\n"
        for key, value in hashing.items()
    )
    path.write_text(
        '[station]\nid = "bj-cy-03"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n{docking}'
        f"[hashing]\n{hashing_text}"
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'anchor_dir = "{tmp_path / "anchors"}"\n',
        "utf-8",
    )
    (tmp_path / "mount").mkdir(exist_ok=True)
    return path


def ingest(recorder: Path, config: Path) -> dict[str, Any]:
    proc = run_cli("ingest", recorder, "--config", config, "--json", check=0)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def wipe(recorder: Path, config: Path, *extra: str, check: int | None = None) -> dict[str, Any]:
    proc = run_cli("wipe", recorder, "--config", config, "--json", *extra, check=check)
    assert "Traceback" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    result["exit"] = proc.returncode
    return result


def paths(entries: list[dict[str, Any]]) -> set[str]:
    return {e["path"] for e in entries}


def reasons(result: dict[str, Any]) -> dict[str, str]:
    return {e["path"]: e["reason"] for e in result["kept"] + result["failed"]}


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every regular file below ``root`` with its size and mtime (links not followed)."""
    found = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            st = path.lstat()
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


def query(data: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wipe_leaves(data: Path) -> list[dict[str, Any]]:
    rows = query(data, "SELECT data FROM ledger_leaves WHERE kind = 'recorder.wiped' ORDER BY idx")
    return [json.loads(bytes(row[0])) for row in rows]


def leaf_files(leaf: dict[str, Any]) -> set[str]:
    return {f["path"] for f in leaf["body"]["files"]}


def make_uploads_due(data: Path) -> None:
    conn = sqlite3.connect(data / "station.db")
    try:
        conn.execute("UPDATE upload_jobs SET next_attempt_at = '2000-01-01T00:00:00.000000Z'")
        conn.commit()
    finally:
        conn.close()
