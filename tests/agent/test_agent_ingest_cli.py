"""`evidock ingest` end to end on real ffmpeg-made recorder volumes: digests equal
sha256sum/b3sum, a second docking is recorded without duplicates, bad input is reported
and changes no evidence."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from station_cli import ingest_json, run_cli


def _tool_digest(tool: str, path: Path) -> str:
    out = subprocess.run([tool, "--", str(path)], capture_output=True, check=True).stdout
    return out.split(b" ", 1)[0].decode()


def _objects(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "store" / "objects").rglob("*") if p.is_file())


def _leaf_kinds(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(data_dir / "station.db")
    try:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
    finally:
        conn.close()


def test_every_file_digest_matches_sha256sum_and_b3sum(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = ingest_json(recorder, data, "--officer", "000777")
    files = sorted(p for p in recorder.rglob("*") if p.is_file())
    assert len(result["clips"]) == len(files) >= 6
    by_path = {c["source_path"]: c for c in result["clips"]}
    for path in files:
        clip = by_path[str(path.relative_to(recorder))]
        assert clip["size"] == path.stat().st_size
        assert clip["sha256"] == _tool_digest("sha256sum", path)
        assert clip["blake3"] == _tool_digest("b3sum", path)
        stored = (
            data / "store" / "objects" / clip["sha256"][:2] / clip["sha256"][2:4] / clip["sha256"]
        )
        assert stored.read_bytes() == path.read_bytes()
        assert stored.stat().st_mode & 0o222 == 0, "committed evidence must be read-only"
        assert clip["clip_id"] and clip["status"] == "new"
    kinds = _leaf_kinds(data)
    assert kinds.count("clip.ingested") == len(files)
    assert kinds[0] == "docking.opened" and kinds[-1] == "docking.closed"
    run_cli("verify", "--data-dir", data, check=0)


def test_second_docking_is_recorded_not_duplicated(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ingest_json(recorder, data)
    objects = _objects(data)
    second = ingest_json(recorder, data)
    assert _objects(data) == objects
    assert {c["status"] for c in second["clips"]} == {"seen"}
    assert {c["clip_id"] for c in second["clips"]} == {c["clip_id"] for c in first["clips"]}
    assert second["session_id"] != first["session_id"]
    kinds = _leaf_kinds(data)
    assert kinds.count("clip.ingested") == len(objects)
    assert kinds.count("clip.redocked") == len(objects)
    assert kinds.count("docking.opened") == 2
    run_cli("verify", "--data-dir", data, check=0)


def test_hostile_names_empty_files_and_broken_clips_are_kept(
    recorder: Path, tmp_path: Path
) -> None:
    media = recorder / "DCIM" / "100MEDIA"
    (media / "with space 录像.MP4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a clip")
    (media / "EMPTY.MP4").write_bytes(b"")
    os.close(os.open(os.fsencode(media) + b"/bad\xff\xfename.MP4", os.O_CREAT | os.O_WRONLY, 0o644))
    with open(os.fsencode(media) + b"/bad\xff\xfename.MP4", "wb") as handle:
        handle.write(b"bytes under a name that is not UTF-8")
    good = sorted(media.glob("*_0001.MP4"))[0]
    (media / "TRUNCATED.MP4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    data = tmp_path / "data"
    result = ingest_json(recorder, data)
    by_path = {c["source_path"]: c for c in result["clips"]}
    assert by_path["DCIM/100MEDIA/EMPTY.MP4"]["size"] == 0
    assert by_path["DCIM/100MEDIA/EMPTY.MP4"]["sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert by_path["DCIM/100MEDIA/with space 录像.MP4"]["media_readable"] is False
    assert by_path["DCIM/100MEDIA/TRUNCATED.MP4"]["media_readable"] is False
    assert by_path["DCIM/100MEDIA/TRUNCATED.MP4"]["media_problem"]
    odd = [c for c in result["clips"] if c["source_path_b64"]]
    assert len(odd) == 1 and "\\xff\\xfe" in odd[0]["source_path"]
    run_cli("verify", "--data-dir", data, check=0)
    # The human summary names the same problems, not only --json.
    human = run_cli("ingest", recorder, "--data-dir", tmp_path / "data-human", check=0).stdout
    assert "stored with a warning" in human
    flagged = [line for line in human.splitlines() if line.startswith("  stored, flagged:")]
    assert any("EMPTY.MP4" in line for line in flagged), human
    assert any("TRUNCATED.MP4" in line for line in flagged), human
    assert any("with space 录像.MP4" in line for line in flagged), human


def test_symlinks_and_fifos_are_refused_and_never_followed(recorder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside-secret.txt"
    secret.write_bytes(b"station file that must never become evidence")
    media = recorder / "DCIM" / "100MEDIA"
    (media / "LINK.MP4").symlink_to(secret)
    os.mkfifo(media / "PIPE.MP4")
    data = tmp_path / "data"
    proc = run_cli("ingest", recorder, "--data-dir", data, check=1)
    assert "LINK.MP4" in proc.stdout and "symlink" in proc.stdout.lower()
    assert "PIPE.MP4" in proc.stdout
    stored = [p.read_bytes() for p in _objects(data)]
    assert secret.read_bytes() not in stored
    result = ingest_json(recorder, tmp_path / "data2", check=1)
    refused = {p["source_path"]: p for p in result["problems"]}
    assert refused["DCIM/100MEDIA/LINK.MP4"]["status"] == "refused"
    assert refused["DCIM/100MEDIA/PIPE.MP4"]["status"] == "refused"
    assert len(result["clips"]) == len(
        [
            p
            for p in recorder.rglob("*")
            if p.is_file() and not p.is_symlink() and p.name != "PIPE.MP4"
        ]
    )


def test_missing_source_and_unwritable_data_dir_are_clear_errors(
    tmp_path: Path, recorder: Path
) -> None:
    proc = run_cli("ingest", tmp_path / "no-such-recorder", "--data-dir", tmp_path / "d", check=2)
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_cli("ingest", recorder, "--data-dir", blocker / "data", check=2)
    assert "data dir" in proc.stderr and "Traceback" not in proc.stderr
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], check=True)
    try:
        proc = run_cli("ingest", recorder, "--data-dir", readonly, check=2)
        assert "not writable" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        subprocess.run(["umount", str(readonly)], check=True)


def test_case_at_ingest_is_a_ledger_leaf(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = ingest_json(
        recorder, data, "--case", "京公(刑)立字〔2026〕123号", "--officer", "000777"
    )
    assert result["case_number"] == "京公(刑)立字〔2026〕123号"
    conn = sqlite3.connect(data / "station.db")
    rows = conn.execute("SELECT case_number, session_id FROM case_links").fetchall()
    conn.close()
    assert rows == [("京公(刑)立字〔2026〕123号", result["session_id"])]
    assert _leaf_kinds(data)[-1] == "case.linked"
    clip = result["clips"][0]["clip_id"]
    run_cli(
        "unlink", "--data-dir", data, "--case", "京公(刑)立字〔2026〕123号", "--clip", clip, check=0
    )
    assert _leaf_kinds(data)[-1] == "case.unlinked"
    proc = run_cli("link", "--data-dir", data, "--case", "X-1", "--clip", "cnope", check=2)
    assert "no clip" in proc.stderr


def test_check_config_names_each_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text('[hashing]\nverify = "maybe"\n[docking]\nsettle_seconds = -1\n', "utf-8")
    proc = run_cli("check-config", bad, check=2)
    assert "hashing.verify" in proc.stderr and "docking.settle_seconds" in proc.stderr
    good = tmp_path / "good.toml"
    good.write_text(
        f'[station]\nid = "s-2"\n[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "recorder-mounts"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    (tmp_path / "recorder-mounts").mkdir()
    run_cli("check-config", good, check=0)
    run_cli("check-config", "--config", good, check=0)


def test_missing_ffprobe_stops_before_any_copy(recorder: Path, tmp_path: Path) -> None:
    import sys

    from station_cli import REPO

    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ingest", str(recorder), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PATH": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "install ffmpeg" in proc.stderr and "Traceback" not in proc.stderr
    assert _objects(data) == []
