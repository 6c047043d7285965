"""`evidock demo`: the README's first command's main job, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from station_cli import run_cli


def test_demo_ingests_links_delivers_and_verifies(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first = run_cli(
        "demo", "--data-dir", data, "--recorders", "2", "--clips", "2", "--json", check=0
    )
    summary = json.loads(first.stdout)
    assert summary["clips_new"] > 0 and summary["verified"] is True
    cases = {s["case_number"] for s in summary["sessions"]}
    assert len(cases) == 2 and all(c.endswith("号") for c in cases)

    # Run again: the simulated recorders are still "docked" and unchanged, so they are
    # recognised and not read again (docking.recheck = "metadata"), and the station says so.
    again = run_cli("demo", "--data-dir", data, "--recorders", "2", "--clips", "2", check=0)
    assert "ledger verified: OK" in again.stdout
    assert "covered by an anchor" in again.stdout
    assert again.stdout.count("not read again, already safe") == 2
    assert "ingested 0 new clips" in again.stdout
    sessions = run_cli("sessions", "--data-dir", data, "--json", check=0).stdout
    phases = {s["phase"] for s in json.loads(sessions)["sessions"]}
    assert phases == {"safe"}, phases  # delivered: each recorder may be taken
    export = tmp_path / "package"
    run_cli(
        "export",
        "--data-dir",
        data,
        "--case",
        sorted(cases)[0],
        "--out",
        export,
        "--who",
        "clerk-1",
        "--purpose",
        "court",
        check=0,
    )
    # The key inside the package proves nothing on its own; pinned by the published
    # anchors (or the station's key) the package verifies.
    unpinned = run_cli("verify-package", export, check=3)
    assert "pin" in unpinned.stdout
    run_cli("verify-package", export, "--anchor", data / "anchors", check=0)
    key = tmp_path / "station.pub.pem"
    key.write_text(run_cli("pubkey", "--data-dir", data, check=0).stdout, "utf-8")
    run_cli("verify-package", export, "--pubkey", key, check=0)
