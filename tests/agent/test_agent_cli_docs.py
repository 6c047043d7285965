"""Every `evidock` command is documented in the README, and progress shows on a terminal."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from station_cli import REPO, run_on_a_terminal

from agent.cli import build_parser


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_command_is_in_the_readme_reference() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    commands = _commands()
    assert {"demo", "ingest", "verify", "run", "check-config", "export"} <= set(commands)
    missing = [
        c
        for c in commands
        if f"`evidock {c}" not in readme
        and f"evidock {c} " not in readme
        and f"/ {c} " not in readme
    ]
    assert missing == []


def test_every_command_has_help() -> None:
    for command in _commands():
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", command, "--help"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert proc.returncode == 0 and "usage: evidock" in proc.stdout, command


def _ingest_on_a_terminal(source: Path, data: Path, *extra: str) -> tuple[str, str]:
    """Run `evidock ingest` with stderr on a pseudo-terminal: (stdout, what the tty got)."""
    code, out, shown = run_on_a_terminal("ingest", source, "--data-dir", data, *extra)
    assert code == 0, out
    return out, shown


def test_ingest_shows_live_progress_on_a_terminal(recorder: Path, tmp_path: Path) -> None:
    _out, text = _ingest_on_a_terminal(recorder, tmp_path / "data")
    files = len([p for p in recorder.rglob("*") if p.is_file()])
    assert f"{files}/{files} files" in text
    assert "MB/s" in text and "left" in text


def test_json_output_has_no_progress_noise(recorder: Path, tmp_path: Path) -> None:
    out, text = _ingest_on_a_terminal(recorder, tmp_path / "data", "--json")
    assert text == ""
    assert out.lstrip().startswith("{")
