"""Two stations sharing one central folder, through the `evidock` commands: each one's
anchors under its own id and key, each verified against the shared anchors with no false
alarm; a station restored from an old copy that then records another history is caught
by the anchors it published before, while the other stays OK. A station whose anchors
were named by size alone (before stations shared a folder) still verifies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from station_cli import run_cli

CHECKPOINT = "checkpoint-*.anchor"


def _station(root: Path, central: Path, station_id: str) -> Path:
    config = root / f"{station_id}.toml"
    (root / f"mount-{station_id}").mkdir(parents=True)
    config.write_text(
        f'[station]\nid = "{station_id}"\n'
        f'[paths]\ndata_dir = "{root / station_id}"\n'
        f'[docking]\nmount_root = "{root / f"mount-{station_id}"}"\n'
        f'[delivery]\ncentral_dir = "{central}"\n',
        "utf-8",
    )
    return config


def _recorder(root: Path, files: int, tag: str) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"V{n:04d}.MP4").write_bytes(tag.encode() + os.urandom(3000))
    return root


def _ingest_and_deliver(config: Path, recorder: Path) -> None:
    run_cli("ingest", recorder, "--config", config, check=0)
    run_cli("deliver", "--config", config, check=0)


def _own_anchors(central: Path, station_id: str) -> list[Path]:
    return sorted((central / "anchors" / station_id).glob(f"*/{CHECKPOINT}"))


def test_two_stations_on_one_folder_verify_against_the_shared_anchors(tmp_path: Path) -> None:
    central = tmp_path / "central"
    first, second = _station(tmp_path, central, "st-a"), _station(tmp_path, central, "st-b")
    _ingest_and_deliver(first, _recorder(tmp_path / "rec-a", 2, "a"))
    _ingest_and_deliver(second, _recorder(tmp_path / "rec-b", 3, "b"))
    # Both published checkpoints of the same sizes: before, the second collided.
    sizes = {
        sid: {p.name for p in _own_anchors(central, sid)} for sid in ("st-a", "st-b")
    }  # fmt: skip
    assert sizes["st-a"] and sizes["st-b"]
    assert list((central / "anchors").glob(CHECKPOINT)) == []
    hashes = {p.parent.name for p in _own_anchors(central, "st-a")}
    assert len(hashes) == 1 and len(hashes.pop()) == 16

    for config in (first, second):
        proc = run_cli("verify", "--config", config, "--anchor", "central", "--require-anchor")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        shared = run_cli("verify", "--config", config, "--anchor", central / "anchors")
        assert shared.returncode == 0, shared.stdout + shared.stderr
        assert "of other stations left out" in shared.stderr
    # The folder target here is no S3.
    refused = run_cli("verify", "--config", first, "--anchor", "s3", check=2)
    assert "--anchor central" in refused.stderr and "Traceback" not in refused.stderr

    # Station b is restored from an old copy, then records another history and signs it.
    data_b = tmp_path / "st-b"
    shutil.copytree(data_b, tmp_path / "st-b.old", symlinks=True)
    _ingest_and_deliver(second, _recorder(tmp_path / "rec-b2", 2, "b2"))
    assert run_cli("verify", "--config", second, "--anchor", "central").returncode == 0
    shutil.rmtree(data_b)
    shutil.copytree(tmp_path / "st-b.old", data_b, symlinks=True)
    _ingest_and_deliver(second, _recorder(tmp_path / "rec-b3", 4, "b3"))
    alone = run_cli("verify", "--config", second)
    assert alone.returncode == 0, "re-signed by the station key, it holds on its own"
    forked = run_cli("verify", "--config", second, "--anchor", "central")
    assert forked.returncode == 1, forked.stdout + forked.stderr
    assert "a fork" in forked.stdout or "only" in forked.stdout
    # The other station shares the folder and is not disturbed.
    run_cli("verify", "--config", first, "--anchor", "central", "--require-anchor", check=0)


def test_a_station_whose_anchors_are_named_by_size_alone_still_verifies(tmp_path: Path) -> None:
    central = tmp_path / "central"
    old = _station(tmp_path, central, "st-old")
    _ingest_and_deliver(old, _recorder(tmp_path / "rec-1", 2, "1"))
    # As an evidock from before stations shared a folder left them: straight in anchors/.
    for path in _own_anchors(central, "st-old"):
        path.rename(central / "anchors" / path.name)
    shutil.rmtree(central / "anchors" / "st-old")
    run_cli("verify", "--config", old, "--anchor", "central", "--require-anchor", check=0)
    run_cli("verify", "--config", old, "--anchor", central / "anchors", check=0)

    # A second station joins: the older anchors are not its own and are left out.
    other = _station(tmp_path, central, "st-new")
    _ingest_and_deliver(other, _recorder(tmp_path / "rec-2", 1, "2"))
    run_cli("verify", "--config", other, "--anchor", "central", "--require-anchor", check=0)
    # The old station goes on under the new names; old and new anchors verify together.
    _ingest_and_deliver(old, _recorder(tmp_path / "rec-3", 1, "3"))
    assert _own_anchors(central, "st-old")
    run_cli("verify", "--config", old, "--anchor", "central", "--require-anchor", check=0)


def test_a_folder_with_no_anchor_of_the_station_is_one_line(tmp_path: Path) -> None:
    central = tmp_path / "central"
    first = _station(tmp_path, central, "st-a")
    _ingest_and_deliver(first, _recorder(tmp_path / "rec-a", 1, "a"))
    second = _station(tmp_path, tmp_path / "elsewhere", "st-b")
    _ingest_and_deliver(second, _recorder(tmp_path / "rec-b", 1, "b"))
    proc = run_cli("verify", "--config", second, "--anchor", central / "anchors", check=2)
    assert "no anchor of station st-b" in proc.stderr and len(proc.stderr.splitlines()) == 1
