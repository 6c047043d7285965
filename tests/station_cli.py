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


def run_as_auditor(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``evidock ARGS`` as an unprivileged user (``nobody``), as an auditor would.

    The system's python3 runs the project from the repository with the venv's packages
    (the venv's own interpreter may live where ``nobody`` cannot reach it); ``cwd`` must
    be a folder ``nobody`` may enter.
    """
    import pwd
    import sysconfig

    nobody = pwd.getpwnam("nobody")
    paths = sysconfig.get_paths()
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([paths["purelib"], paths["platlib"], str(REPO)]),
    }

    def drop() -> None:
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return subprocess.run(
        [python, "-m", "agent.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
        preexec_fn=drop if os.getuid() == 0 else None,
    )
