"""Case membership: one replay of the links, in which clips seen again count, later
events win, and the export holds exactly the clips the case holds."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_fixtures import (
    CASE,
    STATION,
    Station,
    StepClock,
    add_session,
    docking_opened,
    link,
    make_station,
)

from agent.database import open_station_db, transaction
from ledger import Ledger, case_members, export_case, verify_package
from ledger.membership import case_members_of


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def redock(station: Station, led: Ledger, session: str, clips: list[str], new: list[str]) -> None:
    """A docking session that sees ``clips`` again (clip.redocked) and ``new`` ones."""
    if new:
        add_session(station, led, session, new)
    with transaction(led.conn):
        if not new:
            led.append("docking.opened", docking_opened(session))
        for clip_id in clips:
            led.append(
                "clip.redocked",
                {
                    "clip_id": clip_id,
                    "session_id": session,
                    "sha256": station.sha(clip_id),
                    "source_path": f"DCIM/100MEDIA/{clip_id}.MP4",
                },
            )


def unlink(
    led: Ledger, case: str, *, clip_id: str | None = None, session: str | None = None
) -> None:
    led.append(
        "case.unlinked",
        {
            "clip_id": clip_id,
            "session_id": session,
            "case_number": case,
            "officer": "警号010203",
            "object_of_proof": None,
            "reason": "wrong case",
        },
    )


def members(led: Ledger, case: str = CASE) -> list[str]:
    found = case_members(led, case)
    assert list(found) == list(case_members_of(led.leaves(), case)), "two replays disagree"
    return sorted(found)


def export(station: Station, out: Path, case: str) -> dict[str, Any]:
    conn = open_station_db(station.db)
    try:
        export_case(
            Ledger(conn, STATION), station.store, station.keyring, case, out,
            who="auditor", purpose="review",
        )  # fmt: skip
    finally:
        conn.close()
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


def test_a_recorder_docked_again_with_the_case_exports_its_clips(
    station: Station, tmp_path: Path
) -> None:
    """Monday s1 ingests c1..c3; Tuesday the same recorder is docked with --case C42:
    every clip is seen again (clip.redocked), and the case holds them all."""
    led = station.ledger()
    redock(station, led, "tuesday", ["c1", "c2", "c3"], [])
    led.append(
        "case.linked",
        {
            "clip_id": None,
            "session_id": "tuesday",
            "case_number": "C42",
            "officer": "警号010203",
            "object_of_proof": "scene",
            "reason": "linked at ingest",
        },
    )
    assert members(led, "C42") == ["c1", "c2", "c3"]
    led.conn.close()
    manifest = export(station, tmp_path / "pkg", "C42")
    assert sorted(c["clip_id"] for c in manifest["clips"]) == ["c1", "c2", "c3"]
    report = verify_package(tmp_path / "pkg", station.pub)
    assert report.ok, report.problems
    html = (tmp_path / "pkg" / "custody.html").read_text()
    assert "再次接入" in html  # the report is in the station's language (zh-CN by default)


def test_a_session_mixing_new_and_known_clips_exports_all_six(
    station: Station, tmp_path: Path
) -> None:
    led = station.ledger()
    redock(station, led, "s9", ["c1", "c2", "c3", "c4", "c5"], ["c9"])
    led.append(
        "case.linked",
        {
            "clip_id": None,
            "session_id": "s9",
            "case_number": "C43",
            "officer": None,
            "object_of_proof": None,
            "reason": None,
        },
    )
    assert members(led, "C43") == ["c1", "c2", "c3", "c4", "c5", "c9"]
    led.conn.close()
    manifest = export(station, tmp_path / "pkg", "C43")
    assert len(manifest["clips"]) == 6
    exported = json.loads(
        (tmp_path / "pkg" / f"leaves/{manifest['case_exported_leaf']:012d}.json").read_bytes()
    )
    assert sorted(exported["body"]["clips"]) == ["c1", "c2", "c3", "c4", "c5", "c9"]
    assert verify_package(tmp_path / "pkg", station.pub).ok


def test_later_events_win(station: Station) -> None:
    led = station.ledger()
    assert members(led) == ["c1", "c4", "c5"]
    unlink(led, CASE, clip_id="c4")  # one clip of the session-linked case
    assert members(led) == ["c1", "c5"]
    link(led, session_id="s2")  # the session again: its clips come back
    assert members(led) == ["c1", "c4", "c5"]
    unlink(led, CASE, session="s2")
    assert members(led) == ["c1"]
    link(led, clip_id="c5")
    assert members(led) == ["c1", "c5"]
    unlink(led, "other case", clip_id="c1")  # another case's link changes nothing here
    assert members(led) == ["c1", "c5"]
    led.conn.close()


def test_case_numbers_are_compared_as_stored(station: Station) -> None:
    led = station.ledger()
    assert members(led, f"  {CASE} ") == ["c1", "c4", "c5"]
    led.conn.close()


# A model of the rule, written another way: a clip is in the case when the last link
# event reaching it (directly or through a session it was seen in) is a link.
events = st.lists(
    st.tuples(
        st.booleans(),  # link or unlink
        st.sampled_from(["clip", "session"]),
        st.integers(0, 3),
    ),
    max_size=12,
)
SESSIONS = {"s0": ["k0", "k1"], "s1": ["k1", "k2"], "s2": ["k3"], "s3": []}


@settings(max_examples=60, deadline=None)
@given(plan=events)
def test_the_replay_agrees_with_the_rule(plan: list[tuple[bool, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger(open_station_db(Path(tmp) / "station.db"), STATION, clock=StepClock())
        for session, clips in SESSIONS.items():
            for n, clip_id in enumerate(clips):
                led.append(
                    "clip.redocked" if n % 2 else "clip.ingested",
                    {"clip_id": clip_id, "session_id": session, "sha256": "0" * 64,
                     "source_path": "x"} if n % 2 else _ingested(clip_id, session),
                )  # fmt: skip
        last: dict[str, bool] = {}
        for linked, what, n in plan:
            target, whole = (f"k{n}", None) if what == "clip" else (None, f"s{n}")
            led.append(
                "case.linked" if linked else "case.unlinked",
                {"clip_id": target, "session_id": whole, "case_number": "K",
                 "officer": None, "object_of_proof": None, "reason": None},
            )  # fmt: skip
            for reached in [target] if target else SESSIONS[str(whole)]:
                last[reached] = linked
        assert members(led, "K") == sorted(c for c, linked in last.items() if linked)
        led.conn.close()


def _ingested(clip_id: str, session: str) -> dict[str, object]:
    return {
        "clip_id": clip_id,
        "session_id": session,
        "sha256": "0" * 64,
        "blake3": "0" * 64,
        "sm3": None,
        "size": 0,
        "window_size": 0,
        "windows": [],
        "recorder": "R",
        "source_path": "x",
        "source_path_b64": None,
        "recorder_time": None,
        "media": None,
    }
