"""Retention through the real CLI on a real station: unlinked footage takes the unlinked
category from its ingest; a clip held by two cases takes the longer; an open case keeps
its footage without a date; `retention_of` (what purge will ask) agrees with the
listing, and the catalogue keeps what was computed; nothing is purged."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, leaf_count, run_cli

from agent.retention import retention_of
from config import load_config

LONG = "朝执罚〔2026〕31号"
SHORT = "朝执罚〔2026〕32号"
OPEN = "朝执罚〔2026〕33号"
CONFIG = """
[station]
id = "ret-01"
[paths]
data_dir = "{data}"
[docking]
mount_root = "{mount}"
[delivery]
central_dir = "{central}"
[retention]
unlinked = "90d"
[retention.categories]
"行政处罚" = "2y"
warning = "30d"
"""


@pytest.fixture
def station(recorder_template: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    (tmp_path / "mount").mkdir()
    shutil.copytree(recorder_template, tmp_path / "mount" / "REC0001")
    config = tmp_path / "station.toml"
    config.write_text(
        CONFIG.format(data=tmp_path / "d", mount=tmp_path / "mount", central=tmp_path / "c"),
        "utf-8",
    )
    report = ingest_json(tmp_path / "mount" / "REC0001", tmp_path / "d", "--config", config)
    return config, sorted(str(c["clip_id"]) for c in report["clips"])


def _cli(config: Path, *args: str, check: int = 0) -> str:
    proc = run_cli(*args, "--config", config, check=check)
    assert "Traceback" not in proc.stderr
    return proc.stdout + proc.stderr


def _listing(config: Path) -> dict[str, dict[str, Any]]:
    found = json.loads(_cli(config, "retention", "--json"))
    return {row["clip_id"]: row for row in found["clips"]}


def _case(config: Path, number: str, category: str, *extra: str) -> None:
    _cli(config, "case", "create", "--case", number, "--subject", "张三", "--category",
         category, "--unit", "朝阳分局", *extra)  # fmt: skip


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_clip_takes_the_longest_of_its_cases_and_unlinked_footage_the_unlinked(
    station: tuple[Path, list[str]],
) -> None:
    config, clips = station
    both, open_only, loose = clips[0], clips[1], clips[2]
    _case(config, LONG, "行政处罚")
    _case(config, SHORT, "交通", "--retention", "warning")
    _case(config, OPEN, "刑事")
    for number in (LONG, SHORT):
        _cli(config, "link", "--case", number, "--clip", both)
    _cli(config, "link", "--case", OPEN, "--clip", open_only)
    data = load_config(config).paths.data_dir
    leaves = leaf_count(data)

    found = _listing(config)

    # Open cases keep their footage with no date yet.
    assert (found[both]["category"], found[both]["keep_until"]) == ("行政处罚", None)
    assert found[open_only]["keep_until"] is None and "is open" in found[open_only]["note"]
    for number in (LONG, SHORT):
        _cli(config, "case", "close", number, "--by", "clerk", "--reason", "decided")
    found = _listing(config)
    row = found[both]
    assert (row["category"], row["decided_by"], row["period"]) == ("行政处罚", LONG, "2y")
    conn = sqlite3.connect(data / "station.db")
    conn.row_factory = sqlite3.Row
    try:
        closed = _at(
            conn.execute("SELECT closed_at FROM cases WHERE case_number = ?", (LONG,)).fetchone()[0]
        )
        ingested = {
            r["clip_id"]: _at(r["ingested_at"])
            for r in conn.execute("SELECT clip_id, ingested_at FROM clips")
        }
        # Two years from the closing: longer than the 30 days of the other case.
        assert _at(row["keep_until"]) == closed.replace(year=closed.year + 2)
        # Unlinked footage: 90 days from its ingest, category "unlinked".
        assert found[loose]["category"] == "unlinked" and found[loose]["decided_by"] is None
        assert _at(found[loose]["keep_until"]) == ingested[loose] + timedelta(days=90)
        # A case whose category the table does not know: uncategorised (permanent).
        assert (found[open_only]["category"], found[open_only]["period"]) == (
            "uncategorised", "permanent",
        )  # fmt: skip
        # The purge's question gives the same answer, and the catalogue kept the listing.
        policy = load_config(config).retention
        assert retention_of(conn, both, policy) == ("行政处罚", _at(row["keep_until"]))
        category, until = retention_of(conn, loose, policy)
        assert category == "unlinked" and until is not None and until.tzinfo is not None
        kept = {r["clip_id"]: r["category"] for r in conn.execute("SELECT * FROM clip_retention")}
        assert kept[both] == "行政处罚" and kept[loose] == "unlinked"
        assert len(kept) == len(clips)
    finally:
        conn.close()
    # Retention is derived, not a fact of its own: listing it writes no leaf, purges nothing.
    assert leaf_count(data) == leaves + 2  # the two closings
    assert all((data / "store").rglob("*")) and len(ingested) == len(clips)
    assert run_cli("verify", "--data-dir", data).returncode == 0


def test_unlinking_returns_a_clip_to_the_unlinked_category(
    station: tuple[Path, list[str]],
) -> None:
    config, clips = station
    _case(config, LONG, "行政处罚")
    _cli(config, "link", "--case", LONG, "--clip", clips[0])
    _cli(config, "case", "close", LONG, "--by", "clerk", "--reason", "decided")
    assert _listing(config)[clips[0]]["category"] == "行政处罚"
    _cli(config, "unlink", "--case", LONG, "--clip", clips[0])
    row = _listing(config)[clips[0]]
    assert (row["category"], row["period"]) == ("unlinked", "90d")
    text = _cli(config, "retention")
    assert f"{clips[0]}  unlinked 90d" in text and "keep until 20" in text


def test_a_year_from_the_29th_of_february_ends_on_the_1st_of_march() -> None:
    from config.policy import keep_until

    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert keep_until(leap, "1y") == datetime(2029, 3, 1, 12, tzinfo=UTC)
    assert keep_until(leap, "permanent") is None
    assert keep_until(leap, "2w") == leap + timedelta(weeks=2)


@pytest.mark.parametrize(
    ("section", "key", "word"),
    [
        ('[retention]\nunlinked = "soon"\n', "retention.unlinked", '"90d"'),
        ('[retention]\nunlinked = "0d"\n', "retention.unlinked", "1 to"),
        ('[retention]\nuncategorised = "500y"\n', "retention.uncategorised", "1 to 100"),
        ('[retention.categories]\ncriminal = "forever"\n', "retention.categories", "criminal"),
        ('[retention]\nkeep = "2y"\n', "retention.keep", "keep"),
    ],
)
def test_bad_retention_config_is_one_line(
    tmp_path: Path, section: str, key: str, word: str
) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text(section, "utf-8")
    proc = run_cli("check-config", bad, check=2)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert key in proc.stderr and word in proc.stderr, proc.stderr
