"""Running `evidock` as a user would, for the agent's end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str | Path, check: int | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``evidock ARGS`` as a user would, in a child process."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def ingest_json(source: Path, data_dir: Path, *extra: str, check: int = 0) -> dict[str, Any]:
    proc = run_cli("ingest", source, "--data-dir", data_dir, "--json", *extra, check=check)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
