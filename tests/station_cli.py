"""Running `evidock` as a user would, for the agent's end-to-end tests."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
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


def run_on_a_terminal(*args: str | Path, columns: int | None = None) -> tuple[int, str, str]:
    """Run ``evidock ARGS`` with stderr on a pseudo-terminal (``columns`` wide if given).

    Returns (exit code, stdout, what the terminal was shown).
    """
    primary, secondary = pty.openpty()
    env = dict(os.environ)
    if columns is not None:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
        env=env,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO once the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(primary)
    return proc.returncode, out, shown.decode("utf-8", "replace")


def leaf_count(data_dir: Path) -> int:
    """How many leaves the station in ``data_dir`` holds."""
    conn = sqlite3.connect(data_dir / "station.db")
    try:
        return int(conn.execute("SELECT count(*) FROM ledger_leaves").fetchone()[0])
    finally:
        conn.close()


ROOMS = ("agent", "docking", "hashing", "ledger", "uploader", "config")


def _runtime_tree() -> Path:
    """evidock and its runtime dependencies, copied where an unprivileged user may read
    them (the repository and the venv may sit under root's home, as in a fresh root)."""
    import shutil
    import tempfile
    from importlib import metadata

    from packaging.requirements import Requirement

    global _TREE
    if _TREE is not None:
        return _TREE
    import atexit

    tree = Path(tempfile.mkdtemp(prefix="evidock-runtime-"))
    tree.chmod(0o755)
    atexit.register(shutil.rmtree, tree, True)
    todo, seen = ["evidock"], set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        if name == "evidock":
            continue
        for file in dist.files or []:
            source = Path(str(file.locate()))
            if ".." in file.parts or not source.is_file():
                continue
            target = tree / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for room in ROOMS:
        shutil.copytree(REPO / room, tree / room, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [tree, *tree.rglob("*")]:
        folder.chmod(0o755 if folder.is_dir() else 0o644)
    _TREE = tree
    return tree


_TREE: Path | None = None


def run_as_auditor(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``evidock ARGS`` as an unprivileged user (``nobody``), as an auditor would.

    The system's python3 runs a copy of the project and its runtime dependencies (the
    repository and the venv may live where ``nobody`` cannot reach them); ``cwd`` must
    be a folder ``nobody`` may enter.
    """
    import pwd

    nobody = pwd.getpwnam("nobody")
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(_runtime_tree()),
        "PYTHONDONTWRITEBYTECODE": "1",
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
