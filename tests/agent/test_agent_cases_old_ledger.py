"""A station whose link leaves were written before case numbers were normalised: the
leaves hold what was typed and no ``case_number_typed``. They still verify, and every
form of the number finds their clips; a link they already made is not made again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from station_cli import ingest_json, leaf_count, run_cli

from agent.station import Station, station_config
from agent.station_args import sign

OLD_FORM = "朝执罚（2026）7号"  # as an officer typed it, full-width parentheses and all


def _old_link(data: Path, session: str) -> None:
    config, config_file = station_config(data)
    station = Station.open(config, data, config_file=config_file)
    try:
        leaf = station.ledger().append(
            "case.linked",
            {
                "clip_id": None,
                "session_id": session,
                "case_number": OLD_FORM,
                "officer": "000777",
                "object_of_proof": None,
                "reason": "linked at ingest",
            },
        )
        station.conn.execute(
            "INSERT INTO case_links (case_number, session_id, officer, linked, at, leaf_index)"
            " VALUES (?, ?, ?, 1, ?, ?)",
            (OLD_FORM, session, "000777", leaf.at, leaf.index),
        )
        sign(station)
    finally:
        station.close()


def test_old_link_leaves_verify_and_are_found_by_any_form(
    recorder_template: Path, tmp_path: Path
) -> None:
    recorder = tmp_path / "REC0001"
    shutil.copytree(recorder_template, recorder)
    data = tmp_path / "data"
    report = ingest_json(recorder, data)
    clips = sorted(str(c["clip_id"]) for c in report["clips"])
    _old_link(data, report["session_id"])
    run_cli("verify", "--data-dir", data, check=0)

    for typed in ("朝执罚[2026]7号", "朝执罚〔２０２６〕7号", OLD_FORM):
        shown = json.loads(run_cli("case", "show", typed, "--data-dir", data, "--json",
                                   check=0).stdout)  # fmt: skip
        assert shown["case_number"] == "朝执罚〔2026〕7号"
        assert sorted(c["clip_id"] for c in shown["clips"]) == clips
        [old] = shown["links"]
        assert old["case_number_typed"] == OLD_FORM  # an old leaf: its number as typed

    before = leaf_count(data)
    again = run_cli("link", "--data-dir", data, "--case", "朝执罚〔2026〕7号", "--session",
                    report["session_id"], check=0)  # fmt: skip
    assert "already linked" in again.stdout and leaf_count(data) == before
    run_cli("unlink", "--data-dir", data, "--case", "朝执罚[2026]7号", "--clip", clips[0], check=0)
    assert leaf_count(data) == before + 1
    listed = json.loads(run_cli("case", "list", "--data-dir", data, "--json", check=0).stdout)
    assert listed["unregistered"] == ["朝执罚〔2026〕7号"]
    run_cli("verify", "--data-dir", data, check=0)
