"""A station with footage of known times, for the record commands' tests (incidents,
completeness, gaps, stats, clips).

Recorders use the ``record-dashed`` profile: no clock is read (no offset), and an AVI clip
carries no time tag, so its capture window is the time in its file name (the recorder's
local clock, read in the station's zone, Asia/Shanghai, +08:00) plus its duration, which
ffprobe reads exactly. One MP4 clip carries its own creation time and an ISO 6709 place.
The station has no configured place, so only that clip has a capture place.

    session  recorder officer  clip  window (local, +08:00)                 file
    A        RA       O1       a1    2026-11-20 09:00:00 - 09:01:00 (60 s)  AVI
                               a2    2026-11-20 09:01:30 - 09:02:15 (45 s)  MP4, place
    B        RB       O2       b1    2026-11-20 09:00:30 - 09:01:30 (60 s)  AVI
                               b2    2026-11-21 10:00:00 - 10:00:30 (30 s)  AVI
    C        RC       O3       c1    2026-11-20 11:00:00 - 11:00:30 (30 s)  AVI
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from station_cli import run_cli

from docking.simulated import generate_volume, write_clip

K1 = "朝执罚〔2026〕1号"
K2 = "朝执罚〔2026〕2号"
K3 = "朝执罚〔2026〕3号"
UNIT_1 = "朝阳分局"
UNIT_2 = "三里屯派出所"
PLACE = "+39.921900+116.443600/"

# (session, recorder, officer, [(name, local start, seconds, mp4)])
SESSIONS: tuple[tuple[str, str, str, list[tuple[str, datetime, int, bool]]], ...] = (
    ("A", "RA", "O1", [("a1", datetime(2026, 11, 20, 9, 0, 0), 60, False),
                       ("a2", datetime(2026, 11, 20, 9, 1, 30), 45, True)]),
    ("B", "RB", "O2", [("b1", datetime(2026, 11, 20, 9, 0, 30), 60, False),
                       ("b2", datetime(2026, 11, 21, 10, 0, 0), 30, False)]),
    ("C", "RC", "O3", [("c1", datetime(2026, 11, 20, 11, 0, 0), 30, False)]),
)  # fmt: skip


@dataclass
class RecordsStation:
    root: Path
    data: Path
    config: Path
    clips: dict[str, str] = field(default_factory=dict)  # a1 -> clip id
    sessions: dict[str, str] = field(default_factory=dict)  # A -> session id

    def cli(self, *args: str | Path, check: int | None = 0) -> Any:
        proc = run_cli(*args, "--data-dir", self.data, check=check)
        return proc

    def json(self, *args: str | Path, check: int | None = 0) -> Any:
        return json.loads(self.cli(*args, "--json", check=check).stdout)

    def verify(self) -> None:
        proc = run_cli("verify", "--data-dir", self.data)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def name_of(self, clip_id: str) -> str:
        return next(name for name, cid in self.clips.items() if cid == clip_id)

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data / "station.db")
        conn.row_factory = sqlite3.Row
        return conn


def _volume(
    root: Path, recorder: str, officer: str, clips: list[Any], size: tuple[int, int]
) -> dict[str, str]:
    """The recorder's folder; returns file name -> fixture name. Each recorder's frame
    size differs, so no two clips have the same content (one clip, one id)."""
    names = {}
    for name, start, seconds, mp4 in clips:
        if mp4:
            stem = f"REC-{start:%Y-%m-%d-%H-%M-%S}"
            path = root / "RECORD" / f"{start:%Y%m%d}" / f"{stem}.MP4"
            path.parent.mkdir(parents=True, exist_ok=True)
            utc = start.replace(hour=start.hour - 8)  # +08:00 -> UTC, same day here
            write_clip(path, seconds=seconds, creation_time=f"{utc:%Y-%m-%dT%H:%M:%S}.000000Z",
                       location=PLACE, size=size)  # fmt: skip
            names[path.name] = name
        else:
            made = generate_volume(root, serial=recorder, clips=1, seconds=seconds, start=start,
                                   place=None, profile="record-dashed", officer=officer,
                                   size=size)  # fmt: skip
            names[made.clips[0].name] = name
    return names


def build(root: Path) -> RecordsStation:
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    config = root / "station.toml"
    config.write_text(
        f'[station]\nid = "records-01"\n[paths]\ndata_dir = "{data}"\n'
        f'[docking]\nmount_root = "{root / "mount"}"\nrecorder_profile = "record-dashed"\n'
        f'[delivery]\ncentral_dir = "{root / "central"}"\n',
        "utf-8",
    )
    (root / "mount").mkdir(exist_ok=True)
    station = RecordsStation(root, data, config)
    for n, (session, recorder, officer, clips) in enumerate(SESSIONS):
        folder = root / "mount" / session
        names = _volume(folder, recorder, officer, clips, (320 + 16 * n, 240))
        proc = run_cli("ingest", folder, "--config", config, "--json", check=0)
        report = json.loads(proc.stdout)
        station.sessions[session] = report["session_id"]
        for clip in report["clips"]:
            name = names.get(Path(clip["source_path"]).name)
            if name is not None:
                station.clips[name] = clip["clip_id"]
    assert sorted(station.clips) == ["a1", "a2", "b1", "b2", "c1"], station.clips
    return station


def open_cases(station: RecordsStation) -> None:
    """K1 requires whole-process recording from 08:59:30 to 09:04:00 (local)."""
    station.cli("case", "create", "--case", K1, "--subject", "张三", "--category", "行政处罚",
                "--unit", UNIT_1, "--whole-process", "--starts", "2026-11-20T08:59:30+08:00",
                "--ends", "2026-11-20T09:04:00+08:00", "--by", "clerk")  # fmt: skip
    station.cli("case", "create", "--case", K2, "--subject", "李四", "--category", "行政处罚",
                "--unit", UNIT_1, "--by", "clerk")  # fmt: skip
    station.cli("case", "create", "--case", K3, "--subject", "王五", "--category", "刑事",
                "--unit", UNIT_2, "--sensitivity", "privacy", "--by", "clerk")  # fmt: skip


def write_feed(path: Path, rows: list[str]) -> Path:
    header = "case_number,officer,start,end,subject,category,unit"
    path.write_text("\n".join([header, *rows]) + "\n", "utf-8")
    return path


def remove(station: RecordsStation) -> None:
    shutil.rmtree(station.root, ignore_errors=True)
