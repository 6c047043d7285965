"""The tests that touch the evidence store, run again without root's file-mode override.

The suite runs as root, and root reads and writes files whatever their modes say: a
read-only staging file that the station's own user (the systemd unit's) cannot reopen
went unnoticed that way. Here those tests run in a child pytest under ``setpriv`` with
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped from the inheritable and bounding sets,
so file modes bind as they do for the service (the other capabilities stay: the tests
mount tmpfs disks and make FIFOs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STORE_TESTS = (
    "tests/hashing",
    "tests/ledger/test_ledger_store_audit*.py",
    "tests/agent/test_agent_fetch*.py",
    "tests/agent/test_agent_unplug.py",
)
# Fewer than this many passing means whole files went missing or were skipped.
AT_LEAST = 50
DROPPED = "-dac_override,-dac_read_search"
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def setpriv(*command: str) -> list[str]:
    tool = shutil.which("setpriv")
    # util-linux is Essential in Debian: even a minimal station has setpriv.
    assert tool is not None, "setpriv (util-linux) is missing: install util-linux"
    return [tool, f"--inh-caps={DROPPED}", f"--bounding-set={DROPPED}", *command]


def effective_caps() -> int:
    probe = subprocess.run(
        setpriv("cat", "/proc/self/status"), capture_output=True, text=True, check=True
    )
    match = re.search(r"^CapEff:\s*([0-9a-f]+)$", probe.stdout, re.MULTILINE)
    assert match is not None, probe.stdout
    return int(match.group(1), 16)


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="not root: file modes already bind, so the store tests' ordinary run covers this",
)
def test_store_tests_pass_without_cap_dac_override(tmp_path: Path) -> None:
    caps = effective_caps()
    assert not caps & (1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH), hex(caps)
    files = sorted(str(p.relative_to(REPO)) for pattern in STORE_TESTS for p in REPO.glob(pattern))
    assert "tests/agent/test_agent_unplug.py" in files and len(files) >= len(STORE_TESTS)
    proc = subprocess.run(
        setpriv(
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'unprivileged'}",
            *files,
        ),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) >= AT_LEAST, summary
