"""`evidock purge`: a local copy goes only after central storage confirmed it and its
retention is over, each purge a clip.purged leaf written before the file goes, naming
the upload leaf and the keep-until date it relied on; --dry-run says why each other clip
stays; `evidock verify` passes after. Real station, real folder target, real files."""

from __future__ import annotations

import errno
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from station_cli import leaf_count, run_cli

import agent.purge
from agent.purge import purge
from agent.station import Station
from agent.station_args import sign
from config import load_config
from config.common import utc_now

CASE = "朝执罚〔2026〕9号"


def _station(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three clips delivered (the second linked to an open case), a fourth not yet."""
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "purge-01"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        '[retention]\nunlinked = "1d"\n',
        "utf-8",
    )
    clips = []
    for batch, count in ((1, 3), (2, 1)):
        folder = tmp_path / f"rec{batch}" / "DCIM" / "100MEDIA"
        folder.mkdir(parents=True)
        for n in range(count):
            (folder / f"V{batch}{n:03d}.MP4").write_bytes(f"clip {batch} {n} ".encode() * 80)
        proc = run_cli("ingest", tmp_path / f"rec{batch}", "--config", config, "--json", check=0)
        clips += sorted((c["source_path"], c["clip_id"]) for c in json.loads(proc.stdout)["clips"])
        if batch == 1:
            run_cli("deliver", "--config", config, check=0)
    ids = [clip_id for _path, clip_id in clips]
    run_cli("case", "create", "--config", config, "--case", CASE, "--subject", "张三",
            "--category", "行政处罚", "--unit", "朝阳分局", check=0)  # fmt: skip
    run_cli("link", "--config", config, "--case", CASE, "--clip", ids[1], check=0)
    return config, ids


def _dry(config: Path) -> dict[str, dict[str, Any]]:
    proc = run_cli("purge", "--config", config, "--dry-run", "--json", check=0)
    report = json.loads(proc.stdout)
    assert report["dry_run"] is True
    return {c["clip_id"]: c for c in report["clips"]}


def test_purge_needs_confirmation_and_the_end_of_retention(tmp_path: Path) -> None:
    config, (c0, c1, c2, c3) = _station(tmp_path)
    data = tmp_path / "d"
    before = leaf_count(data)
    # Today nothing may go, each clip for its own reason; nothing is written.
    plan = _dry(config)
    assert {c: plan[c]["action"] for c in plan} == dict.fromkeys((c0, c1, c2, c3), "keep")
    assert "kept until" in plan[c0]["reason"] and plan[c0]["keep_until"]
    assert "case is open" in plan[c1]["reason"]
    assert "has not confirmed it" in plan[c3]["reason"]
    text = run_cli("purge", "--config", config, "--dry-run", check=0).stdout
    assert f"{c0}: stays: retention unlinked: kept until" in text
    assert "0 would be purged, 4 kept" in text
    # A real purge today removes nothing either.
    proc = run_cli("purge", "--config", config, "--json", check=0)
    assert all(c["action"] == "keep" for c in json.loads(proc.stdout)["clips"])
    assert leaf_count(data) == before

    # Two days on, the unlinked, confirmed clips may go.
    station = Station.open(load_config(config), config_file=config)
    try:
        later = utc_now() + timedelta(days=2)
        planned = {e.clip_id: e.action for e in purge(station, now=later, dry_run=True)}
        assert planned == {c0: "purge", c1: "keep", c2: "purge", c3: "keep"}
        assert leaf_count(data) == before
        done = {e.clip_id: e for e in purge(station, now=later)}
        sign(station)
        uploaded = {
            leaf.body["clip_id"]: leaf.index
            for leaf in station.ledger().leaves_of_kind("clip.uploaded")
        }
        purged = station.ledger().leaves_of_kind("clip.purged")
        shas = {
            c: station.conn.execute("SELECT sha256 FROM clips WHERE clip_id = ?", (c,)).fetchone()[
                0
            ]
            for c in (c0, c1, c2, c3)
        }
        store = station.store
    finally:
        station.close()
    assert {c for c, e in done.items() if e.action == "purged"} == {c0, c2}
    assert [leaf.body["clip_id"] for leaf in purged] == [c0, c2]
    for leaf in purged:
        body = leaf.body
        clip = body["clip_id"]
        assert body["sha256"] == shas[clip]
        assert body["uploads"] == [
            {"target": "folder", "leaf": uploaded[clip], "location": body["uploads"][0]["location"]}
        ]
        assert datetime.fromisoformat(body["keep_until"].replace("Z", "+00:00")) < later
        assert "confirmed by folder" in body["reason"]
        assert not store.path_for(shas[clip]).exists()
    assert store.path_for(shas[c1]).exists() and store.path_for(shas[c3]).exists()
    # verify counts a purged clip's missing file as no problem
    run_cli("verify", "--config", config, check=0)
    plan = _dry(config)
    assert plan[c0]["action"] == plan[c2]["action"] == "gone"
    assert plan[c1]["action"] == plan[c3]["action"] == "keep"


def test_the_leaf_comes_first_and_a_file_that_did_not_go_goes_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, (c0, _c1, _c2, _c3) = _station(tmp_path)
    station = Station.open(load_config(config), config_file=config)
    later = utc_now() + timedelta(days=2)
    try:
        sha = station.conn.execute("SELECT sha256 FROM clips WHERE clip_id = ?", (c0,)).fetchone()[
            0
        ]
        path = station.store.path_for(sha)

        # Root may remove any file: a refusal is made here, at the one call that removes.
        def refuse(target: object, *args: object, **kwargs: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", str(target))

        monkeypatch.setattr(agent.purge, "unlink", refuse)
        first = {e.clip_id: e for e in purge(station, now=later)}
        assert first[c0].leaf is not None and first[c0].problem
        assert "could not be removed" in first[c0].problem and path.exists()
        sign(station)
        monkeypatch.undo()
    finally:
        station.close()
    # the leaf is there, the file too: verify is content (a purged clip's file may stay)
    run_cli("verify", "--config", config, check=0)
    plan = _dry(config)
    assert plan[c0]["action"] == "purge" and "still here" in plan[c0]["reason"]
    station = Station.open(load_config(config), config_file=config)
    try:
        leaves = leaf_count(tmp_path / "d")
        again = {e.clip_id: e for e in purge(station, now=later)}
        assert again[c0].action == "purged" and not path.exists()
        assert leaf_count(tmp_path / "d") == leaves  # no second clip.purged leaf
    finally:
        station.close()
    run_cli("verify", "--config", config, check=0)
