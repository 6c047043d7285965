"""A copy killed during its verify re-read resumes, also for a station that is not root.

The staged file is made read-only (0444) with the fsync that precedes the re-read; a
process killed then leaves it so. Root ignores file modes, the station's service user
does not: tests/test_unprivileged.py runs this file without CAP_DAC_OVERRIDE.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from hashing import CopyEngine, EvidenceStore, HashOptions

READ = 64 << 10
WINDOW = 256 << 10
OPTIONS = HashOptions(read_size=READ, window_size=WINDOW, buffer_budget_bytes=1 << 20)
REPO = Path(__file__).resolve().parents[2]

# The child copies with the real engine and dies (SIGKILL, no clean-up of any kind) at
# the first buffer its verify re-read asks for: the staged file is read-only by then.
KILLED_DURING_VERIFY = """
import os, signal, sys
from pathlib import Path
from hashing import BufferBudget, CopyEngine, EvidenceStore, HashOptions

root, source, key = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
options = HashOptions(read_size=64 << 10, window_size=256 << 10, buffer_budget_bytes=1 << 20)
part = root / "staging" / f"{key}.part"

class DiesInVerify(BufferBudget):
    def acquire(self):
        if part.stat().st_mode & 0o777 == 0o444:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().acquire()

budget = DiesInVerify(options.buffer_budget_bytes, options.read_size)
CopyEngine(EvidenceStore(root), options, budget=budget).copy(source, resume_key=key)
"""


def test_hashing_copy_killed_during_verify_resumes_as_its_own_user(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "store").create()
    clip = tmp_path / "FILE0003.MP4"
    clip.write_bytes(os.urandom(5 * WINDOW + 777))
    data = clip.read_bytes()
    child = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_VERIFY, str(store.root), str(clip), "ab08"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    part = store.staging_dir / "ab08.part"
    assert part.stat().st_mode & 0o777 == 0o444  # what the crash left
    assert list(store.iter_objects()) == []

    result = CopyEngine(store, OPTIONS).copy(clip, resume_key="ab08")

    assert result.resumed_bytes == 5 * WINDOW  # every whole window came from the station's disk
    assert result.source_bytes_read == len(data) - 5 * WINDOW
    assert result.verified and result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.path.read_bytes() == data
    assert result.path.stat().st_mode & 0o777 == 0o444
    assert list(store.staging_dir.iterdir()) == []
    assert clip.read_bytes() == data
