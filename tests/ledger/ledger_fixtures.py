"""A real station data dir for the ledger tests: database, store, key, clips, anchors.

The ingest pipeline belongs to other rooms; here clips are written straight into the
store and their clip.ingested leaves appended by hand, as the brief of these tests says.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from blake3 import blake3

from agent.database import open_readonly, open_station_db, transaction
from hashing import EvidenceStore
from ledger import Anchor, Keyring, Ledger, PublicKeyFile, StationKey, origin_for
from ledger.anchor import make_checkpoint
from ledger.verify import VerifyReport, verify_station

REPO = Path(__file__).resolve().parents[2]
STATION = "station-07"
WINDOW = 1024
CASE = "沪公(交)行罚决字〔2026〕123号"


class StepClock:
    """A clock that moves one second per reading, so leaves have distinct times."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def clip_bytes(n: int, size: int = 3 * WINDOW + 100) -> bytes:
    seed = hashlib.sha256(f"clip-{n}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def ingested_body(clip_id: str, session_id: str, data: bytes, name: str) -> dict[str, Any]:
    windows = [
        hashlib.sha256(data[i : i + WINDOW]).hexdigest() for i in range(0, len(data), WINDOW)
    ]
    return {
        "clip_id": clip_id,
        "session_id": session_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake3": blake3(data).hexdigest(),
        "sm3": None,
        "size": len(data),
        "window_size": WINDOW,
        "windows": windows,
        "recorder": "DSJ-A1-0042",
        "source_path": f"DCIM/100MEDIA/{name}",
        "source_path_b64": None,
        "recorder_time": "2026-11-22T08:30:15+08:00",
        "media": {
            "duration_ms": 10000,
            "codec": "h264",
            "audio_codec": "aac",
            "creation_time": "2026-11-22T00:30:15Z",
            "location": "+31.2304+121.4737/",
            "readable": True,
            "problem": None,
        },
    }


@dataclass
class Station:
    data: Path
    key: StationKey
    anchors: list[Anchor] = field(default_factory=list)
    clips: dict[str, bytes] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.data / "station.db"

    @property
    def store(self) -> EvidenceStore:
        return EvidenceStore(self.data / "store")

    @property
    def keyring(self) -> Keyring:
        return Keyring(self.data / "keys", origin_for(STATION))

    @property
    def pub(self) -> PublicKeyFile:
        return PublicKeyFile(self.key.verifier.public, None)

    def ledger(self) -> Ledger:
        return Ledger(open_station_db(self.db), STATION, clock=StepClock())

    def sha(self, clip_id: str) -> str:
        return hashlib.sha256(self.clips[clip_id]).hexdigest()

    def verify(
        self,
        anchors: list[Anchor] | None = None,
        *,
        store: bool = True,
        key: Any = None,
        require_anchor: bool = False,
    ) -> VerifyReport:
        conn = open_readonly(self.db)
        try:
            return verify_station(
                conn,
                key or self.pub,
                self.anchors if anchors is None else anchors,
                self.store if store else None,
                require_anchor=require_anchor,
            )
        finally:
            conn.close()

    def checkpoint(self, led: Ledger) -> Anchor:
        anchor = make_checkpoint(led, [self.key])
        self.anchors.append(anchor)
        return anchor


def docking_opened(session: str) -> dict[str, str]:
    """The body of a docking.opened leaf for ``session`` on the fixtures' recorder."""
    return {
        "session_id": session,
        "recorder": "DSJ-A1-0042",
        "volume": "/media/evidock/DSJ",
        "officer": "警号010203",
        "recorder_model": "DSJ-A1",
    }


def add_session(station: Station, led: Ledger, session: str, clips: list[str]) -> None:
    store = station.store.create()
    with transaction(led.conn):
        led.append("docking.opened", docking_opened(session))
        for n, clip_id in enumerate(clips):
            data = clip_bytes(len(station.clips) + n)
            station.clips[clip_id] = data
            sha = hashlib.sha256(data).hexdigest()
            path = store.path_for(sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o444)
            led.append("clip.ingested", ingested_body(clip_id, session, data, f"{clip_id}.MP4"))
        led.append("docking.closed", {"session_id": session, "clips": len(clips), "problems": []})


def link(led: Ledger, *, clip_id: str | None = None, session_id: str | None = None) -> None:
    led.append(
        "case.linked",
        {
            "clip_id": clip_id,
            "session_id": session_id,
            "case_number": CASE,
            "officer": "警号010203",
            "object_of_proof": "违法停车现场 / illegal parking scene",
            "reason": "officer",
        },
    )


def make_station(root: Path) -> Station:
    """Two sessions of clips, one case, uploads, three checkpoints with anchors."""
    data = root / "data"
    key = StationKey.load_or_create(data / "keys", origin_for(STATION))
    station = Station(data, key)
    led = station.ledger()
    led.append("station.booted", {"version": "0.1.0", "config_sha256": "0" * 64})
    add_session(station, led, "s1", ["c1", "c2", "c3"])
    station.checkpoint(led)
    add_session(station, led, "s2", ["c4", "c5"])
    link(led, clip_id="c1")
    link(led, session_id="s2")
    for clip_id in ("c1", "c4"):
        sha = station.sha(clip_id)
        led.append(
            "clip.uploaded",
            {
                "clip_id": clip_id,
                "sha256": sha,
                "target": "central",
                "location": f"central/{sha}",
                "confirmed_size": len(station.clips[clip_id]),
                "confirmed_sha256": sha,
            },
        )
    station.checkpoint(led)
    led.append(
        "clip.accessed",
        {"clip_id": "c2", "who": "auditor-1", "purpose": "review", "action": "view", "via": "api"},
    )
    station.checkpoint(led)
    led.conn.close()
    return station


def run_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from agent.ledger_cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=120,
    )
