"""`evidock wipe` follows the station's policy exactly: each policy against a wipe asked
for too early, the ledger leaf naming exactly what went, and `verify` still passing.

Every test ingests a real recorder (real ffmpeg clips) with `evidock ingest` and wipes it
with `evidock wipe`, as a person at the station would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from station_cli import leaf_count, run_cli
from wipe_station import (
    CLIP,
    FOOTAGE,
    files,
    ingest,
    leaf_files,
    make_uploads_due,
    paths,
    query,
    reasons,
    station,
    wipe,
    wipe_leaves,
)


def test_after_central_confirmed_waits_until_central_storage_holds_each_clip(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path)  # the default policy: after_central_confirmed
    data = tmp_path / "d"
    ingest(recorder, config)
    before = files(recorder)

    # Copied and verified, but not delivered yet: nothing goes.
    early = wipe(recorder, config)
    assert early["exit"] == 1 and early["removed"] == [] and early["leaf_index"] is None
    assert early["policy"] == "after_central_confirmed"
    for path in FOOTAGE:
        assert "central storage has not confirmed it yet" in reasons(early)[path]
        assert "`evidock deliver`" in reasons(early)[path]
    assert files(recorder) == before and wipe_leaves(data) == []

    # Central storage fails: still nothing goes, and the reason says the upload failed.
    (tmp_path / "central").mkdir()
    (tmp_path / "central" / "objects").write_text("not a folder")
    run_cli("deliver", "--config", config, check=1)
    failing = wipe(recorder, config)
    assert failing["exit"] == 1 and failing["removed"] == []
    assert "its upload failed and will be retried" in reasons(failing)[CLIP]
    assert files(recorder) == before and wipe_leaves(data) == []

    # Central storage confirms every clip: the footage goes, the device-info file stays.
    (tmp_path / "central" / "objects").unlink()
    make_uploads_due(data)
    run_cli("deliver", "--config", config, check=0)
    done = wipe(recorder, config, check=0)
    assert paths(done["removed"]) == FOOTAGE
    assert set(files(recorder)) == {"DEVICE.INF"}
    assert "device-info" in reasons(done)["DEVICE.INF"]
    assert all("confirmed by central storage" in e["reason"] for e in done["removed"])

    # One leaf names exactly the files removed; the catalogue says the same.
    [leaf] = wipe_leaves(data)
    assert leaf["index"] == done["leaf_index"]
    assert leaf_files(leaf) == FOOTAGE
    assert leaf["body"]["recorder"] == "REC0001"
    assert leaf["body"]["policy"] == "after_central_confirmed"
    assert set(leaf["body"]["clips"]) == {e["clip_id"] for e in done["removed"]}
    rows = query(data, "SELECT source_path, leaf_index, session_id FROM wiped_files")
    assert {r[0] for r in rows} == FOOTAGE and {r[1] for r in rows} == {leaf["index"]}
    assert {r[2] for r in rows} == {leaf["body"]["session_id"]}
    phases = query(
        data,
        f"SELECT phase FROM docking_sessions WHERE session_id IN ('{leaf['body']['session_id']}')",
    )
    assert [p[0] for p in phases] == ["wiped"]
    run_cli("verify", "--data-dir", data, check=0)

    # Wiping again finds nothing to do and records nothing.
    again = wipe(recorder, config, check=0)
    assert again["removed"] == [] and len(wipe_leaves(data)) == 1


def test_after_verified_frees_the_recorder_without_waiting_for_central_storage(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    ingest(recorder, config)
    done = wipe(recorder, config, check=0)
    assert paths(done["removed"]) == FOOTAGE
    assert all("copy verified" in e["reason"] for e in done["removed"])
    assert set(files(recorder)) == {"DEVICE.INF"}
    [leaf] = wipe_leaves(tmp_path / "d")
    assert leaf_files(leaf) == FOOTAGE
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)


def test_a_copy_that_was_not_read_back_is_never_wiped(recorder: Path, tmp_path: Path) -> None:
    config = station(tmp_path, wipe="after_verified", verify="none")
    ingest(recorder, config)
    before = files(recorder)
    result = wipe(recorder, config, check=1)
    assert result["removed"] == [] and result["leaf_index"] is None
    for path in FOOTAGE:
        assert "was not read back and checked" in reasons(result)[path]
    assert files(recorder) == before and wipe_leaves(tmp_path / "d") == []


def test_never_removes_nothing_even_once_central_storage_confirmed(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="never")
    ingest(recorder, config)
    run_cli("deliver", "--config", config, check=0)
    before = files(recorder)
    result = wipe(recorder, config, check=0)  # nothing the policy would remove stays
    assert result["removed"] == [] and result["policy"] == "never"
    assert all("'never'" in why for why in reasons(result).values())
    assert files(recorder) == before and wipe_leaves(tmp_path / "d") == []


def test_policy_option_may_only_be_stricter_than_the_station(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path)  # after_central_confirmed
    ingest(recorder, config)
    before = files(recorder)
    looser = run_cli("wipe", recorder, "--config", config, "--policy", "after_verified", check=2)
    assert looser.stderr.count("\n") == 1 and "may only be stricter" in looser.stderr
    assert looser.stdout == "" and files(recorder) == before

    run_cli("deliver", "--config", config, check=0)
    never = wipe(recorder, config, "--policy", "never", check=0)
    assert never["policy"] == "never" and never["removed"] == []
    assert files(recorder) == before and wipe_leaves(tmp_path / "d") == []

    same = wipe(recorder, config, "--policy", "after_central_confirmed", check=0)
    assert paths(same["removed"]) == FOOTAGE


def test_dry_run_lists_what_would_go_and_changes_nothing(recorder: Path, tmp_path: Path) -> None:
    config = station(tmp_path, wipe="after_verified")
    data = tmp_path / "d"
    ingest(recorder, config)
    (recorder / "DCIM" / "100MEDIA" / "20261122_120000_0009.JPG").write_bytes(b"\xff\xd8 later")
    before, leaves = files(recorder), leaf_count(data)
    db = (data / "station.db").read_bytes()

    plan = wipe(recorder, config, "--dry-run", check=1)  # the new photo stays: exit 1
    assert plan["dry_run"] and paths(plan["would_remove"]) == FOOTAGE
    assert plan["removed"] == [] and plan["leaf_index"] is None
    assert "never copied" in reasons(plan)["DCIM/100MEDIA/20261122_120000_0009.JPG"]
    assert files(recorder) == before and leaf_count(data) == leaves
    assert (data / "station.db").read_bytes() == db
    assert query(data, "SELECT count(*) FROM wiped_files") == [(0,)]

    text = run_cli("wipe", recorder, "--config", config, "--dry-run", check=1).stdout
    assert "would remove 8 file(s)" in text and "nothing was changed" in text
    assert files(recorder) == before and leaf_count(data) == leaves

    done = wipe(recorder, config, check=1)
    assert paths(done["removed"]) == paths(plan["would_remove"])


def test_a_recorder_copied_twice_is_wiped_on_the_proof_of_its_latest_docking(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    first = ingest(recorder, config)
    second = ingest(recorder, config)  # everything seen again: clip.redocked leaves
    assert second["seen"] == len(FOOTAGE) + 1
    done = wipe(recorder, config, check=0)
    assert paths(done["removed"]) == FOOTAGE
    assert {e["copied_in"] for e in done["removed"]} == {second["session_id"]}
    [leaf] = wipe_leaves(tmp_path / "d")
    assert leaf["body"]["session_id"] == second["session_id"] != first["session_id"]


def test_a_recorder_this_station_never_copied_keeps_everything(
    recorder: Path, recorder_template: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    other = tmp_path / "other" / "REC0002"
    shutil.copytree(recorder_template, other)
    (other / "DEVICE.INF").write_text("serial=REC0002\nmodel=EVIDOCK-SIM\n")
    ingest(other, config)
    before = files(recorder)
    # REC0001 holds the very same clips as the REC0002 copied, but was never copied itself.
    result = wipe(recorder, config, check=1)
    assert result["removed"] == [] and result["session_id"] is None
    assert all("never copied" in reasons(result)[p] for p in FOOTAGE)
    assert files(recorder) == before


def test_a_recorder_still_being_copied_is_not_wiped(recorder: Path, tmp_path: Path) -> None:
    from agent.sessions import current_owner

    config = station(tmp_path, wipe="after_verified")
    data = tmp_path / "d"
    done = ingest(recorder, config)
    # As if this (live) process were still copying it.
    conn = __import__("sqlite3").connect(data / "station.db")
    conn.execute(
        "UPDATE docking_sessions SET state = 'open', owner = ? WHERE session_id = ?",
        (current_owner(), done["session_id"]),
    )
    conn.commit()
    conn.close()
    proc = run_cli("wipe", recorder, "--config", config, check=2)
    assert "is being copied" in proc.stderr and "Traceback" not in proc.stderr
    assert set(files(recorder)) >= FOOTAGE and wipe_leaves(data) == []


def test_wipe_of_what_is_not_a_volume_is_one_line(tmp_path: Path) -> None:
    config = station(tmp_path)
    run_cli("ingest", tmp_path / "mount", "--config", config, check=0)
    for volume in (tmp_path / "missing", config):
        proc = run_cli("wipe", volume, "--config", config, check=2)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_recorder_profile_can_only_make_the_policy_stricter() -> None:
    from agent.station_args import UsageError
    from agent.wipe import policy_for
    from docking import get_profile

    generic = get_profile("generic")
    careful = generic.model_copy(update={"wipe": "never"})
    loose = generic.model_copy(update={"wipe": "after_verified"})
    assert policy_for("after_central_confirmed", generic) == "after_central_confirmed"
    assert policy_for("after_central_confirmed", careful) == "never"
    assert policy_for("after_central_confirmed", loose) == "after_central_confirmed"
    assert policy_for("after_verified", generic, "after_central_confirmed") == (
        "after_central_confirmed"
    )
    assert policy_for("after_verified", careful, "after_central_confirmed") == "never"
    with pytest.raises(UsageError, match="may only be stricter"):
        policy_for("never", generic, "after_verified")
