"""Evidence export: the access is on record first, the package checks out offline with
standard tools and with ours, and our verifier trusts no key the package brings."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_fixtures import CASE, STATION, Station, make_station, run_cli

from agent.database import open_station_db
from ledger import (
    Anchor,
    ExportIntegrityError,
    Ledger,
    PackageError,
    PublicKeyFile,
    case_members,
    export_case,
    verify_package,
)
from ledger.anchor import anchor_for, make_checkpoint
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.layout import write_sums

ACCESS = {"clip_id": "c1", "who": "a", "purpose": "p", "action": "view", "via": "cli"}


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def export(station: Station, out: Path, store: object = None) -> None:
    conn = open_station_db(station.db)
    try:
        export_case(
            Ledger(conn, STATION),
            store or station.store,  # type: ignore[arg-type]
            station.keyring,
            CASE,
            out,
            who="检察官 A-17",
            purpose="起诉审查 / prosecution review",
        )
    finally:
        conn.close()


def ledger_size(station: Station) -> int:
    conn = open_station_db(station.db)
    try:
        return Ledger(conn, STATION).size()
    finally:
        conn.close()


def test_case_membership_follows_links_and_unlinks(station: Station) -> None:
    conn = open_station_db(station.db)
    led = Ledger(conn, STATION)
    assert sorted(case_members(led, CASE)) == ["c1", "c4", "c5"]
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
    assert sorted(case_members(led, CASE)) == ["c1", "c5"]
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
    report = verify_package(moved, station.pub)
    assert report.ok, report.problems
    assert report.clips == 3 and report.key_source == "pinned by --pubkey"
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
        "证据保管链报告",
        CASE,
        "证明对象",
        "违法停车现场",
        "DSJ-A1-0042",
        "警号010203",
        "+31.2304+121.4737/",
        "2026-11-22T00:30:15Z",
        "station-07",
        "SHA-256、BLAKE3 一致",
        "检察官 A-17",
        "调阅",
        "上传中心存储",
        station.key.verifier.fingerprint(),
        "随本包提供，未经固定",
        "公钥指纹",
    ):
        assert text in html, text


def test_without_a_pinned_key_a_package_is_internally_consistent_only(
    station: Station, tmp_path: Path
) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    report = verify_package(out)
    assert report.problems == [] and report.status == 3 and not report.ok
    assert report.key_source == "bundled in the package (not pinned)"
    assert report.key_fingerprint == station.key.verifier.fingerprint()
    assert report.verdict() == (
        "NOT PROVEN: internally consistent only: the key came from inside the package; "
        "pin it with --pubkey or --anchor"
    )
    data = report.as_json()
    assert data["status"] == 3 and data["pinned"] is False
    assert data["key"] == station.key.verifier.text()


def test_an_anchor_from_central_storage_pins_the_key_and_its_tree_is_compared(
    station: Station, tmp_path: Path
) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    older = station.anchors[-1]  # size 15; the package's checkpoint extends it
    report = verify_package(out, None, [("checkpoint-15.anchor", older)])
    assert report.ok, report.problems
    assert report.key_source == "pinned by anchor checkpoint-15.anchor"
    agree = "anchor tree(s) of size 15..15 agree with the package's checkpoint 19"
    assert any(agree in n for n in report.notes), report.notes
    # The whole chain of anchors, and a newer one that extends the package's tree.
    led = station.ledger()
    led.append("clip.accessed", {**ACCESS})
    newer = make_checkpoint(led, [station.key])
    led.conn.close()
    chain = [(f"a{a.checkpoint.size}", a) for a in [*station.anchors, newer]]
    report = verify_package(out, None, chain)
    assert report.ok, report.problems
    assert report.key_source == "pinned by anchor a20"
    assert any("4 anchor tree(s) of size 6..20 agree" in n for n in report.notes), report.notes
    # An anchor no proof links to the package's tree is named, not trusted for the tree.
    alone = verify_package(out, None, [("a6", station.anchors[0])])
    assert alone.ok and any("1 anchor(s) not compared" in n for n in alone.notes)
    # Anchors of the package's size with another root, or a proof that fails: two histories.
    conn = open_station_db(station.db)
    same = anchor_for(conn, Ledger(conn, STATION), report.checkpoint_size)
    conn.close()
    assert verify_package(out, None, [("same", same)]).ok
    forked = sign_checkpoint(
        Checkpoint(same.checkpoint.origin, same.checkpoint.size, bytes(32)), [station.key]
    )
    bad = verify_package(out, None, [("forked", Anchor(forked, 0, ()))])
    assert bad.status == 1
    assert (
        "anchor forked and the package are both of size 19 with different roots"
        in (bad.problems[0])
    )
    bent = Anchor(newer.note, newer.previous_size, (bytes(32),) * len(newer.proof))
    worse = verify_package(out, None, [("bent", bent)])
    assert worse.status == 1 and "anchor bent: " in worse.problems[0]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: _flip(p / "clips" / "c4_c4.MP4"), "clip c4: clips/c4_c4.MP4 does not match"),
        (lambda p: _flip(next((p / "leaves").iterdir()), 30), "leaf"),
        (lambda p: next((p / "proofs").iterdir()).unlink(), "leaf"),
        (lambda p: (p / "clips" / "planted.txt").write_text("x"), "not listed"),
        (lambda p: _flip(p / "custody.html"), "custody.html: content differs"),
        (lambda p: _flip(p / "checkpoint.txt", 28), "no valid signature by the package's key"),
        (lambda p: (p / "station.vkey").write_text("garbage"), "cannot read the package's key"),
    ],
)
def test_a_damaged_package_is_refused(
    station: Station, tmp_path: Path, damage: object, expected: str
) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    damage(out)  # type: ignore[operator]
    report = verify_package(out, station.pub)
    assert report.status == 1
    assert expected in "\n".join(report.problems)


def test_not_a_package_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="is not an evidence package"):
        verify_package(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff{")
    with pytest.raises(PackageError, match="not readable JSON"):
        verify_package(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(PackageError, match="manifest"):
        verify_package(tmp_path)


def test_a_clip_removed_with_its_traces_is_still_missed(station: Station, tmp_path: Path) -> None:
    """Sums and manifest are unsigned: rewrite them, and the signed case.exported leaf
    still names the clip."""
    out = tmp_path / "pkg"
    export(station, out)
    (out / "clips" / "c5_c5.MP4").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["clips"] = [c for c in manifest["clips"] if c["clip_id"] != "c5"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    write_sums(out)
    report = verify_package(out, station.pub)
    assert "clip c5: named by the case.exported leaf but missing" in "\n".join(report.problems)


def _flip(path: Path, offset: int = 100) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


class WatchedStore:
    """The station's real store, seen through the EvidenceFiles seam: notes what the
    ledger held when the export first asked for a clip's file."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.seen: list[tuple[int, int, list[str]]] = []

    def path_for(self, sha256: str) -> Path:
        conn = sqlite3.connect(f"file:{self.station.db}?mode=ro", uri=True)
        kinds = [str(r[0]) for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
        signed = conn.execute("SELECT max(tree_size) FROM ledger_checkpoints").fetchone()[0]
        conn.close()
        self.seen.append((len(kinds), int(signed), kinds[-4:]))
        return self.station.store.path_for(sha256)

    def iter_objects(self) -> Iterator[tuple[str, Path]]:
        return self.station.store.iter_objects()


def test_the_access_is_recorded_and_signed_before_a_byte_is_copied(
    station: Station, tmp_path: Path
) -> None:
    before = ledger_size(station)
    store = WatchedStore(station)
    export(station, tmp_path / "pkg", store)
    size, signed, last = store.seen[0]
    assert size == before + 4 and signed == size
    assert last == ["clip.accessed", "clip.accessed", "clip.accessed", "case.exported"]


def test_when_the_ledger_step_fails_no_evidence_is_copied(station: Station, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    conn = open_station_db(station.db)
    conn.execute(
        "CREATE TEMP TRIGGER full_disk BEFORE INSERT ON ledger_leaves"
        " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(sqlite3.DatabaseError, match="disk is full"):
        export_case(
            Ledger(conn, STATION),
            station.store,
            station.keyring,
            CASE,
            out,
            who="a",
            purpose="b",
        )
    conn.close()
    assert not out.exists()
    assert ledger_size(station) == 15


def test_a_modified_clip_is_not_handed_out_but_the_attempt_is_on_record(
    station: Station, tmp_path: Path
) -> None:
    _flip(station.store.path_for(station.sha("c5")))
    out = tmp_path / "pkg"
    with pytest.raises(ExportIntegrityError, match="does not match its ledger hashes"):
        export(station, out)
    assert not out.exists()
    conn = open_station_db(station.db)
    led = Ledger(conn, STATION)
    kinds = [leaf.kind for leaf in led.leaves(15)]
    conn.close()
    assert kinds == ["clip.accessed"] * 3 + ["case.exported"]
    assert station.verify(store=False).ok  # recorded and signed


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_fifo_or_a_link_in_a_clips_place_is_refused_without_hanging(
    station: Station, tmp_path: Path, kind: str
) -> None:
    place = station.store.path_for(station.sha("c5"))
    kept = tmp_path / "kept"
    place.rename(kept)
    if kind == "fifo":
        os.mkfifo(place)
    else:
        place.symlink_to(kept)  # the right bytes, but outside the store
    out = tmp_path / "pkg"
    with pytest.raises(ExportIntegrityError, match="not a regular file"):
        export(station, out)
    assert not out.exists()


@pytest.mark.parametrize("who", ["", "  "])
def test_export_needs_who_and_purpose(station: Station, tmp_path: Path, who: str) -> None:
    conn = open_station_db(station.db)
    with pytest.raises(PackageError, match="--who"):
        export_case(
            Ledger(conn, STATION), station.store, station.keyring, CASE, tmp_path / "o",
            who=who, purpose="p",
        )  # fmt: skip
    conn.close()
    assert ledger_size(station) == 15 and not (tmp_path / "o").exists()


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
    pem = station.data / "keys" / "station.pub.pem"
    checked = run_cli("verify-package", out, "--json", "--pubkey", pem)
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True
    alone = run_cli("verify-package", out)
    assert alone.returncode == 3
    assert alone.stdout.endswith(
        "NOT PROVEN: internally consistent only: the key came from inside the package; "
        "pin it with --pubkey or --anchor\n"
    )
    _flip(out / "clips" / "c1_c1.MP4")
    assert run_cli("verify-package", out, "--pubkey", pem).returncode == 1

    receipt = tmp_path / "c4.tlog-proof"
    assert run_cli("proof", "c4", "--data-dir", station.data, "--out", receipt).returncode == 0
    assert receipt.read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")
    note = run_cli("pubkey", "--data-dir", station.data, "--note")
    assert note.stdout.strip() == station.key.verifier.text()
    pem_out = run_cli("pubkey", "--data-dir", station.data)
    assert pem_out.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    again = run_cli(
        "export", "--data-dir", station.data, "--case", "no-such-case", "--out",
        tmp_path / "none", "--who", "a", "--purpose", "b",
    )  # fmt: skip
    assert again.returncode == 2 and "no clip is linked" in again.stderr


def test_the_pinned_key_must_be_the_packages(station: Station, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export(station, out)
    from ledger import StationKey, origin_for

    other = StationKey.generate(origin_for(STATION))
    report = verify_package(out, PublicKeyFile(other.verifier.public, None))
    assert report.status == 1
    assert f"not by the public key you gave (fingerprint {other.verifier.fingerprint()})" in (
        "\n".join(report.problems)
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_manifest_gives_a_report_or_a_usage_error(
    station: Station, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """The manifest is unsigned: whatever it says, the verifier reports, never crashes."""
    out = tmp_path_factory.mktemp("pkg") / "pkg"
    if not (station.data / "case.done").exists():
        export(station, station.data / "case.pkg")
        (station.data / "case.done").write_text("")
    shutil.copytree(station.data / "case.pkg", out)
    manifest: Any = json.loads((out / "manifest.json").read_text())
    node = manifest
    path = data.draw(st.lists(st.integers(0, 20), min_size=1, max_size=4))
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict) and node:
        node[sorted(node)[path[-1] % len(node)]] = data.draw(json_values)
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = data.draw(json_values)
    (out / "manifest.json").write_text(json.dumps(manifest))
    try:
        report = verify_package(out, station.pub)
    except PackageError:
        return
    assert report.status in (0, 1)
    json.dumps(report.as_json())
