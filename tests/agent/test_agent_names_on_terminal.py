"""Names from a recorder (or a package) never drive the terminal they are printed on.

A file named with ``ESC [ 2 J`` clears the screen, a CR rewrites the start of its line,
U+202E turns the rest of it around: printed raw, a hostile name could hide a problem
line or forge one. Humans get visible escapes; ``--json`` and the ledger keep the name
exactly.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

from station_cli import run_cli

from agent.progress import Progress, StageProgress

HOSTILE = "\x1b[2J\r\u202e"
SHOWN = "\\x1b[2J\\x0d\\u202e"
MEDIA = "DCIM/100MEDIA"
FLAGGED = f"{MEDIA}/20261122_090000_0009 {HOSTILE}evil.MP4"
LINK = f"{MEDIA}/{HOSTILE}\x07link.MP4"


def assert_inert(text: str) -> None:
    """Nothing a terminal obeys: no C0/C1 control but the line ends, no bidi override."""
    assert not [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) < 0xA0]
    assert "\u202e" not in text


def make_hostile(recorder: Path, tmp_path: Path) -> None:
    (recorder / FLAGGED).write_bytes(b"not a video: stored, flagged, named in the summary")
    (tmp_path / "target.MP4").write_bytes(b"outside")
    (recorder / LINK).symlink_to(tmp_path / "target.MP4")


def source_paths(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(data_dir / "station.db")
    try:
        rows = conn.execute(
            "SELECT data FROM ledger_leaves WHERE kind = 'clip.ingested' ORDER BY idx"
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(bytes(row[0]))["body"]["source_path"] for row in rows]


def test_ingest_summary_escapes_names_and_the_ledger_keeps_them(
    recorder: Path, tmp_path: Path
) -> None:
    make_hostile(recorder, tmp_path)
    data = tmp_path / "data"
    proc = run_cli("ingest", recorder, "--data-dir", data, check=1)
    assert_inert(proc.stdout)
    assert f"{MEDIA}/20261122_090000_0009 {SHOWN}evil.MP4" in proc.stdout, proc.stdout
    assert f"{MEDIA}/{SHOWN}\\x07link.MP4" in proc.stdout
    assert FLAGGED in source_paths(data), "the ledger holds the name exactly as written"

    again = run_cli("ingest", recorder, "--data-dir", tmp_path / "data2", "--json", check=1)
    outcomes = {o["source_path"]: o for o in json.loads(again.stdout)["clips"]}
    problems = {p["source_path"]: p for p in json.loads(again.stdout)["problems"]}
    assert FLAGGED in outcomes and LINK in problems, "--json keeps names exact"


def test_verify_escapes_a_name_found_in_the_store(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("ingest", recorder, "--data-dir", data, check=0)
    planted = data / "store" / "objects" / "ab" / "cd"
    planted.mkdir(parents=True, exist_ok=True)
    (planted / f"{HOSTILE}extra").write_bytes(b"planted")
    proc = run_cli("verify", "--data-dir", data, check=1)
    assert_inert(proc.stdout)
    assert f"{SHOWN}extra" in proc.stdout, proc.stdout
    report = json.loads(run_cli("verify", "--data-dir", data, "--json", check=1).stdout)
    assert any(f"{HOSTILE}extra" in p for p in report["problems"]), "--json stays exact"


def test_verify_package_escapes_a_name_added_to_the_package(recorder: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "package"
    run_cli("ingest", recorder, "--data-dir", data, "--case", "朝执罚〔2026〕7号", check=0)
    run_cli(
        "export", "--data-dir", data, "--case", "朝执罚〔2026〕7号", "--out", out,
        "--who", "auditor", "--purpose", "review", check=0,
    )  # fmt: skip
    (out / f"clips/{HOSTILE}added\nOK: every file matches").write_bytes(b"slipped in")
    proc = run_cli("verify-package", out, check=1)
    assert_inert(proc.stdout)
    assert f"{SHOWN}added\\x0aOK: every file matches" in proc.stdout, proc.stdout
    assert not any(line.startswith("OK") for line in proc.stdout.splitlines()), (
        "a newline in a name cannot start a line of its own"
    )
    report = json.loads(run_cli("verify-package", out, "--json", check=1).stdout)
    assert any(f"{HOSTILE}added\nOK" in p for p in report["problems"])


def test_progress_lines_show_labels_and_stages_escaped() -> None:
    stream = io.StringIO()
    progress = Progress(f"dock {HOSTILE}", stream=stream, enabled=True)
    progress.plan(1, 10)
    stages = StageProgress(stream=stream, enabled=True)
    stages(f"export {HOSTILE}", 10, 10)
    stages.finish()
    drawn = stream.getvalue().replace("\r\x1b[K", "")  # the redraw's own control
    assert_inert(drawn)
    assert f"dock {SHOWN}" in drawn and f"export {SHOWN}" in drawn
