"""The verifiers as an auditor meets them: `evidock verify`, `verify-package`,
`verify-proof` and `export` on a station made by `evidock ingest` (real clips): what a
pass proves, exit 3 for what is intact but not proven, pinned keys, progress on a
terminal, and one line (exit 2) for input that cannot be used."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from station_cli import leaf_count, run_cli, run_on_a_terminal

from agent.database import open_station_db
from ledger import Ledger, StationKey, origin_for
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.receipt import TlogProof

CASE = "朝执罚〔2026〕42号"  # a number the agency's default rule takes
NOT_ANCHORED = (
    "not anchored: this proves consistency with the station's own key, "
    "not that history was not rewritten"
)
UNPINNED = (
    "internally consistent only: the key came from inside the package; "
    "pin it with --pubkey or --anchor"
)


@dataclass
class Made:
    root: Path
    data: Path
    session: str
    clips: list[str]

    @property
    def pem(self) -> Path:
        return self.data / "keys" / "station.pub.pem"

    @property
    def anchors(self) -> Path:
        return self.data / "anchors"

    def leaves(self) -> int:
        return leaf_count(self.data)

    def station_id(self) -> str:
        conn = sqlite3.connect(self.data / "station.db")
        try:
            row = conn.execute("SELECT data FROM ledger_leaves ORDER BY idx LIMIT 1").fetchone()
            return str(json.loads(bytes(row[0]))["station"])
        finally:
            conn.close()

    def append_unsigned(self, station: str | None = None) -> None:
        """A leaf written by a command that did not sign (as `link` did before)."""
        conn = open_station_db(self.data / "station.db")
        try:
            Ledger(conn, station or self.station_id()).append(
                "clip.accessed",
                {"clip_id": self.clips[0], "who": "a", "purpose": "p", "action": "view",
                 "via": "cli"},
            )  # fmt: skip
        finally:
            conn.close()


def _ingest(recorder: Path, root: Path, *extra: str | Path) -> Made:
    data = root / "data"
    proc = run_cli("ingest", recorder, "--data-dir", data, "--json", "--case", CASE, *extra)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    return Made(root, data, report["session_id"], [c["clip_id"] for c in report["clips"]])


@pytest.fixture(scope="module")
def made_once(recorder_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    return _ingest(recorder_template, tmp_path_factory.mktemp("station"))


@pytest.fixture
def made(made_once: Made, tmp_path: Path) -> Made:
    """A fresh copy of the station (its data dir moves: every path in it is relative)."""
    root = tmp_path / "station"
    shutil.copytree(made_once.root, root)
    return Made(root, root / "data", made_once.session, made_once.clips)


def _one_line(proc: subprocess.CompletedProcess[str], word: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and word in proc.stderr, proc.stderr


# --- verify -------------------------------------------------------------------------------


def test_verify_says_what_a_pass_proves(made: Made) -> None:
    own = run_cli("verify", "--data-dir", made.data, check=0)
    lines = own.stdout.splitlines()
    assert "taken from the station itself" in own.stdout
    assert lines[-1] == f"OK, {NOT_ANCHORED}"
    pinned = run_cli("verify", "--data-dir", made.data, "--pubkey", made.pem, check=0)
    assert pinned.stdout.splitlines()[-1] == f"OK, {NOT_ANCHORED}"
    assert f"given with --pubkey ({made.pem})" in pinned.stdout
    anchored = run_cli(
        "verify", "--data-dir", made.data, "--pubkey", made.pem, "--anchor", made.anchors,
        "--require-anchor", check=0,
    )  # fmt: skip
    assert anchored.stdout.splitlines()[-1] == (
        "OK: every leaf is signed by the trusted key and covered by an anchor"
    )
    help_text = run_cli("verify", "--help", check=0).stdout
    assert "3  intact but not proven" in help_text and "--require-anchor" in help_text


def test_leaves_no_checkpoint_signs_are_exit_3(made: Made) -> None:
    made.append_unsigned()
    last = made.leaves() - 1
    proc = run_cli("verify", "--data-dir", made.data, "--pubkey", made.pem, check=3)
    assert f"NOT PROVEN: leaf {last} is intact but not signed by a trusted checkpoint" in (
        proc.stdout
    )
    report = json.loads(run_cli("verify", "--data-dir", made.data, "--json", check=3).stdout)
    assert report["status"] == 3 and report["ok"] is False and report["problems"] == []
    anchored = run_cli(
        "verify", "--data-dir", made.data, "--anchor", made.anchors, "--require-anchor", check=3
    )
    assert f"leaf {last} is intact but not signed" in anchored.stdout
    # `evidock proof` signs what is unsigned and publishes its anchor, as every command
    # that signs does: then the key proves it, and so does the newest anchor.
    run_cli("proof", made.clips[0], "--data-dir", made.data, "--out", made.root / "r", check=0)
    run_cli("verify", "--data-dir", made.data, "--pubkey", made.pem, check=0)
    run_cli(
        "verify", "--data-dir", made.data, "--anchor", made.anchors, "--require-anchor", check=0
    )


def test_a_ledger_replaced_with_its_checkpoints_deleted_is_not_proven(made: Made) -> None:
    """The reproduction: replace the ledger, delete every checkpoint (no trigger stops
    it), and `verify --pubkey KEY` said OK."""
    conn = sqlite3.connect(made.data / "station.db")
    conn.execute("DROP TRIGGER IF EXISTS ledger_leaves_no_delete")
    conn.execute("DROP TRIGGER IF EXISTS ledger_checkpoints_no_delete")
    conn.execute("DELETE FROM ledger_leaves")
    conn.execute("DELETE FROM ledger_nodes")
    conn.execute("DELETE FROM ledger_checkpoints")
    conn.commit()
    conn.close()
    shutil.rmtree(made.data / "store" / "objects")
    made.append_unsigned(made.station_id() if made.leaves() else "station-01")
    proc = run_cli("verify", "--data-dir", made.data, "--pubkey", made.pem, check=3)
    assert "leaf 0 is intact but not signed by a trusted checkpoint" in proc.stdout


def test_one_rule_set_the_reproduction_with_station_bj_cy_02(
    recorder: Path, tmp_path: Path
) -> None:
    """A leaf appended with the default station id into station bj-cy-02: `verify`
    failed, and `verify-package` of the case holding it said OK."""
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nid = "bj-cy-02"\n[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    proc = run_cli("ingest", recorder, "--config", config, "--case", CASE, "--json", check=0)
    clips = [c["clip_id"] for c in json.loads(proc.stdout)["clips"]]
    made = Made(tmp_path, tmp_path / "data", "", clips)
    made.append_unsigned("station-01")
    bad = made.leaves() - 1
    run_cli("proof", clips[0], "--data-dir", made.data, "--out", tmp_path / "r", check=0)
    line = f"leaf {bad}: station 'station-01' is not 'bj-cy-02'"
    assert line in run_cli("verify", "--data-dir", made.data, check=1).stdout
    run_cli(
        "export", "--data-dir", made.data, "--case", CASE, "--out", tmp_path / "pkg",
        "--who", "auditor", "--purpose", "review", check=0,
    )  # fmt: skip
    package = run_cli("verify-package", tmp_path / "pkg", "--pubkey", made.pem, check=1)
    assert line in package.stdout


# --- verify-package ------------------------------------------------------------------------


def _export(made: Made, out: Path) -> None:
    run_cli(
        "export", "--data-dir", made.data, "--case", CASE, "--out", out, "--who", "检察官 A-17",
        "--purpose", "起诉审查", check=0,
    )  # fmt: skip


def test_verify_package_trusts_no_bundled_key(made: Made, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    _export(made, pkg)
    alone = run_cli("verify-package", pkg, check=3)
    assert alone.stdout.splitlines()[-1] == f"NOT PROVEN: {UNPINNED}"
    assert "key source: bundled in the package (not pinned)" in alone.stdout
    fingerprint = json.loads(run_cli("verify-package", pkg, "--json", check=3).stdout)[
        "key_fingerprint"
    ]
    assert fingerprint in alone.stdout and fingerprint in (pkg / "custody.html").read_text()
    pinned = json.loads(run_cli("verify-package", pkg, "--pubkey", made.pem, "--json").stdout)
    assert pinned["status"] == 0 and pinned["key_source"] == "pinned by --pubkey"
    by_anchor = run_cli("verify-package", pkg, "--anchor", made.anchors, check=0)
    assert "key source: pinned by anchor checkpoint-" in by_anchor.stdout
    assert "agree with the package's checkpoint" in by_anchor.stdout
    help_text = run_cli("verify-package", "--help", check=0).stdout
    assert "3  internally consistent only" in help_text


def test_a_self_signed_package_from_a_forged_station_does_not_pass(
    made: Made, recorder: Path, tmp_path: Path
) -> None:
    forged = _ingest(recorder, tmp_path / "forged")
    assert forged.station_id() == made.station_id()
    pkg = tmp_path / "pkg"
    _export(forged, pkg)
    run_cli("verify-package", pkg, check=3)  # consistent inside, and nothing more
    with_anchors = run_cli("verify-package", pkg, "--anchor", made.anchors, check=3)
    assert "not signed by the package's key: it does not pin it" in with_anchors.stdout
    with_key = run_cli("verify-package", pkg, "--pubkey", made.pem, check=1)
    assert "not by the public key you gave" in with_key.stdout


def test_verify_package_on_what_is_not_a_package(made: Made, tmp_path: Path) -> None:
    _one_line(run_cli("verify-package", made.data), "is not an evidence package (no manifest")
    _one_line(run_cli("verify-package", tmp_path / "nowhere"), "is not a folder")
    pkg = tmp_path / "pkg"
    _export(made, pkg)
    (pkg / "manifest.json").write_bytes(b"\x00garbled")
    _one_line(run_cli("verify-package", pkg), "not readable JSON")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    _one_line(run_cli("verify-package", pkg, "--pubkey", garbage), "verifier key")
    _one_line(run_cli("verify-package", pkg, "--anchor", garbage), "not an anchor")
    _one_line(run_cli("verify-package", pkg, "--anchor", tmp_path / "nowhere"), "cannot read")


# --- verify-proof --------------------------------------------------------------------------


def test_verify_proof_checks_a_receipt_offline(made: Made, tmp_path: Path) -> None:
    receipt = tmp_path / "c.tlog-proof"
    run_cli("proof", made.clips[1], "--data-dir", made.data, "--out", receipt, check=0)
    ok = run_cli("verify-proof", receipt, "--pubkey", made.pem, check=0)
    assert ok.stdout.splitlines()[-1].startswith("OK: leaf ")
    data = json.loads(run_cli("verify-proof", receipt, "--pubkey", made.pem, "--json").stdout)
    assert data["status"] == 0 and data["body"]["clip_id"] == made.clips[1]

    conn = open_station_db(made.data / "station.db")
    led = Ledger(conn, made.station_id())
    size, index = led.size(), data["index"]
    stranger = StationKey.generate(origin_for(made.station_id()))
    note = sign_checkpoint(Checkpoint(origin_for(made.station_id()), size, led.root()), [stranger])
    forged = TlogProof(index, tuple(led.inclusion_proof(index, size)), note, led.leaf(index).data)
    conn.close()
    (tmp_path / "f").write_text(forged.text())
    wrong = run_cli("verify-proof", tmp_path / "f", "--pubkey", made.pem, check=1)
    assert "no valid signature by the key you gave" in wrong.stdout

    text = receipt.read_text()
    extra = next(line for line in text.splitlines() if line.startswith("extra "))
    bare = tmp_path / "bare.tlog-proof"
    bare.write_text(text.replace(extra + "\n", ""))
    _one_line(
        run_cli("verify-proof", bare, "--pubkey", made.pem),
        f"holds no leaf bytes: its checkpoint (size {data['checkpoint']['size']}) is validly",
    )
    import base64

    leaf = tmp_path / "leaf.json"
    leaf.write_bytes(base64.b64decode(extra.removeprefix("extra ")))
    run_cli("verify-proof", bare, "--leaf", leaf, "--pubkey", made.pem, check=0)
    leaf.write_bytes(leaf.read_bytes().replace(made.clips[1].encode(), b"c" + b"0" * 24))
    assert (
        f"leaf {index}: leaf {index} is not in the tree"
        in run_cli("verify-proof", bare, "--leaf", leaf, "--pubkey", made.pem, check=1).stdout
    )
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(64))
    _one_line(run_cli("verify-proof", garbage, "--pubkey", made.pem), "is not a receipt")
    garbage.write_text("c2sp.org/tlog-proof@v1\nindex x\n\nnope\n")
    _one_line(run_cli("verify-proof", garbage, "--pubkey", made.pem), "is not a receipt")
    _one_line(run_cli("verify-proof", receipt, "--pubkey", garbage), "key")
    _one_line(run_cli("verify-proof", tmp_path / "none", "--pubkey", made.pem), "cannot read")


# --- export --------------------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write, not even root: a read-only tmpfs."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_export_refuses_a_bad_out_before_any_leaf(
    made: Made, tmp_path: Path, read_only_folder: Path
) -> None:
    before = made.leaves()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    for out, word in (
        ("/proc/x", "cannot create /proc/x"),
        ("/etc/hostname", "/etc/hostname exists and is not a folder"),
        (str(full), "is not empty"),
        (str(read_only_folder), "cannot write in"),
        (str(read_only_folder / "sub"), "cannot create"),
    ):
        proc = run_cli(
            "export", "--data-dir", made.data, "--case", CASE, "--out", out, "--who", "a",
            "--purpose", "b",
        )  # fmt: skip
        _one_line(proc, word)
    missing = run_cli("export", "--data-dir", made.data, "--case", CASE, "--out", tmp_path / "o")
    assert missing.returncode == 2 and "--who, --purpose" in missing.stderr
    assert made.leaves() == before and not (tmp_path / "o").exists()


# --- progress ------------------------------------------------------------------------------


def _on_a_terminal(columns: int, *args: str | Path) -> tuple[int, str, str]:
    """Run `evidock ARGS` with stderr on a pseudo-terminal ``columns`` wide."""
    return run_on_a_terminal(*args, columns=columns)


def _drawn(shown: str) -> list[str]:
    """What each redraw left on the screen (pty output turns \\n into \\r\\n)."""
    parts: list[str] = []
    for line in shown.replace("\r\n", "\n").split("\n"):
        parts += [p for p in line.split("\r\x1b[K") if p]
    return parts


def test_progress_on_a_narrow_terminal(made: Made, tmp_path: Path) -> None:
    code, out, shown = _on_a_terminal(40, "verify", "--data-dir", made.data)
    assert code == 0 and out.startswith(made.leaves().__str__() + " leaves")
    assert "\r\x1b[K" in shown and "leaves: " in shown and "store: " in shown
    assert "MB/s" in shown and "left" in shown
    assert all(len(part) <= 39 for part in _drawn(shown)), _drawn(shown)
    code, out, shown = _on_a_terminal(
        60, "export", "--data-dir", made.data, "--case", CASE, "--out", tmp_path / "pkg",
        "--who", "a", "--purpose", "b",
    )  # fmt: skip
    assert code == 0 and "export: " in shown and "MB/s" in shown
    code, out, shown = _on_a_terminal(60, "verify-package", tmp_path / "pkg", "--pubkey", made.pem)
    assert code == 0 and "package: " in shown and "MB/s" in shown and "left" in shown
    code, out, shown = _on_a_terminal(60, "verify", "--data-dir", made.data, "--json")
    assert code == 0 and shown == "" and json.loads(out)["status"] == 0
