"""Evidence export: the package checks out offline, with standard tools and with ours."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ledger_fixtures import CASE, STATION, Station, make_station, run_cli

from agent.database import open_station_db
from ledger import (
    Ledger,
    PackageError,
    case_clips,
    export_case,
    verify_package,
)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def export(station: Station, out: Path) -> None:
    conn = open_station_db(station.db)
    try:
        export_case(
            Ledger(conn, STATION),
            station.store,
            station.key,
            CASE,
            out,
            who="检察官 A-17",
            purpose="起诉审查 / prosecution review",
        )
    finally:
        conn.close()


def test_case_membership_follows_links_and_unlinks(station: Station) -> None:
    conn = open_station_db(station.db)
    led = Ledger(conn, STATION)
    assert sorted(case_clips(led, CASE)) == ["c1", "c4", "c5"]
    led.append(
        "case.unlinked",
        {
            "clip_id": "c4",
            "session_id": None,
            "case_number": CASE,
            "officer": "010203",
            "object_of_proof": None,
            "reason": "wrong case",
        },
    )
    assert sorted(case_clips(led, CASE)) == ["c1", "c5"]
    conn.close()


def test_package_verifies_offline_with_standard_tools(station: Station, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    moved = tmp_path / "elsewhere" / "pkg"
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    shutil.rmtree(station.data)  # nothing of the station is left
    for tool, sums in (("sha256sum", "SHA256SUMS"), ("b3sum", "B3SUMS")):
        proc = subprocess.run([tool, "-c", sums], cwd=moved, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "clips/c1_c1.MP4: OK" in proc.stdout
    report = verify_package(moved)
    assert report.ok, report.problems
    assert report.clips == 3
    manifest = json.loads((moved / "manifest.json").read_text())
    assert [c["clip_id"] for c in manifest["clips"]] == ["c1", "c4", "c5"]
    kinds = [json.loads((moved / e["leaf"]).read_bytes())["kind"] for e in manifest["leaves"]]
    assert kinds.count("clip.accessed") == 3 and kinds[-1] == "case.exported"
    # The checkpoint in the package covers the export's own leaves.
    checkpoint_size = int((moved / "checkpoint.txt").read_text().split("\n")[1])
    assert checkpoint_size == manifest["case_exported_leaf"] + 1
    html = (moved / "custody.html").read_text()
    for text in (
        "保管链",
        "Chain-of-custody",
        CASE,
        "证明对象",
        "Object of proof",
        "违法停车现场",
        "DSJ-A1-0042",
        "警号010203",
        "+31.2304+121.4737/",
        "2026-11-22T00:30:15Z",
        "station-07",
        "SHA-256 and BLAKE3 match",
        "检察官 A-17",
        "accessed",
        "uploaded",
    ):
        assert text in html, text


def test_the_station_ledger_still_verifies_after_an_export(
    station: Station, tmp_path: Path
) -> None:
    export(station, tmp_path / "pkg")
    assert station.verify().ok


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: _flip(p / "clips" / "c4_c4.MP4"), "clip c4: clips/c4_c4.MP4 does not match"),
        (lambda p: _flip(next((p / "leaves").iterdir()), 30), "leaf"),
        (lambda p: next((p / "proofs").iterdir()).unlink(), "leaf"),
        (lambda p: (p / "clips" / "planted.txt").write_text("x"), "not listed"),
        (lambda p: _flip(p / "custody.html"), "custody.html: content differs"),
        (lambda p: _flip(p / "checkpoint.txt", 40), "cannot read the package"),
    ],
)
def test_a_damaged_package_is_refused(
    station: Station, tmp_path: Path, damage: object, expected: str
) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    damage(out)  # type: ignore[operator]
    report = verify_package(out)
    assert not report.ok
    assert expected in "\n".join(report.problems)


def test_a_clip_removed_with_its_traces_is_still_missed(station: Station, tmp_path: Path) -> None:
    """Sums and manifest are unsigned: rewrite them, and the signed case.exported leaf
    still names the clip."""
    out = tmp_path / "pkg"
    export(station, out)
    (out / "clips" / "c5_c5.MP4").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["clips"] = [c for c in manifest["clips"] if c["clip_id"] != "c5"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    from ledger.export import _write_sums

    _write_sums(out)
    report = verify_package(out)
    assert "clip c5: named by the case.exported leaf but missing" in "\n".join(report.problems)


def _flip(path: Path, offset: int = 100) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_export_refuses_a_modified_clip_and_records_nothing(
    station: Station, tmp_path: Path
) -> None:
    _flip(station.store.path_for(station.sha("c5")))
    conn = open_station_db(station.db)
    size = Ledger(conn, STATION).size()
    conn.close()
    with pytest.raises(PackageError, match="does not match its ledger hashes"):
        export(station, tmp_path / "pkg")
    conn = open_station_db(station.db)
    assert Ledger(conn, STATION).size() == size
    conn.close()


def test_cli_export_proof_pubkey_and_verify_package(station: Station, tmp_path: Path) -> None:
    out = tmp_path / "cli-pkg"
    proc = run_cli(
        "export",
        "--data-dir",
        station.data,
        "--case",
        CASE,
        "--out",
        out,
        "--who",
        "auditor",
        "--purpose",
        "review",
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 clips" in proc.stdout
    checked = run_cli("verify-package", out, "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True
    _flip(out / "clips" / "c1_c1.MP4")
    assert run_cli("verify-package", out).returncode == 1

    receipt = tmp_path / "c4.tlog-proof"
    assert run_cli("proof", "c4", "--data-dir", station.data, "--out", receipt).returncode == 0
    assert receipt.read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")
    note = run_cli("pubkey", "--data-dir", station.data, "--note")
    assert note.stdout.strip() == station.key.verifier.text()
    pem = run_cli("pubkey", "--data-dir", station.data)
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    again = run_cli(
        "export", "--data-dir", station.data, "--case", "no-such-case", "--out", tmp_path / "none"
    )
    assert again.returncode == 2 and "no clip is linked" in again.stderr
