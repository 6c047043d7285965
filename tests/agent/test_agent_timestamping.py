"""Trusted timestamps of published checkpoints, through the real CLI and a real
``openssl ts`` TSA on loopback: a token beside every anchor, checked by openssl and by
verify; a TSA that is down delays the token, never the ingest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.tsa import TestTSA, make_tsa_certificates, openssl_verify, tsa
from station_cli import run_cli

from agent.anchoring import publish_checkpoint
from agent.delivery import delivery_target
from agent.station import Station
from agent.timestamping import TIMESTAMPS_DIR, stamp_pending, timestamp_lines
from config import load_config
from ledger.layout import write_sums

__all__ = ["tsa"]

CASE = "朝执罚〔2026〕12号"


def _config(tmp_path: Path, url: str, ca: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        '[station]\nid = "bj-cy-02"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\nsettle_seconds = 0.2\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'anchor_dir = "{tmp_path / "anchors"}"\n'
        f'[timestamping]\nurl = "{url}"\nca_file = "{ca}"\ntimeout_seconds = 5\n',
        "utf-8",
    )
    (tmp_path / "mount").mkdir(exist_ok=True)
    return path


def _recorder(root: Path, clips: int = 2) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(clips):
        (folder / f"V{n:04d}.MP4").write_bytes(f"clip {n} ".encode() * 40)
    return root


def _rows(data: Path) -> list[tuple[str, int, bytes | None, str | None]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return conn.execute(
            "SELECT anchor_name, tree_size, token, published_to FROM checkpoint_timestamps"
            " ORDER BY tree_size"
        ).fetchall()
    finally:
        conn.close()


def _anchor_files(anchors: Path) -> list[Path]:
    return sorted(anchors.rglob("*.anchor"))


def test_every_signed_checkpoint_gets_a_token_beside_its_anchor(
    tsa: TestTSA, tmp_path: Path
) -> None:
    config = _config(tmp_path, tsa.url, tsa.ca)
    source = _recorder(tmp_path / "mount" / "REC0001")
    run_cli("ingest", source, "--config", config, "--json", check=0)
    data = tmp_path / "d"

    rows = _rows(data)
    assert rows and all(token is not None for _, _, token, _ in rows)
    anchors = _anchor_files(tmp_path / "anchors")
    assert anchors
    for anchor in anchors:
        beside = anchor.with_name(anchor.name + ".tsr")
        assert beside.is_file()
        assert (data / TIMESTAMPS_DIR / beside.name).read_bytes() == beside.read_bytes()
        done = openssl_verify(anchor, beside, tsa.ca)  # what an auditor runs by hand
        assert done.returncode == 0, done.stderr
    assert {str(p.with_name(p.name + ".tsr")) for p in anchors} == {r[3] for r in rows}

    conn = sqlite3.connect(f"file:{data / 'station.db'}?mode=ro", uri=True)
    try:
        lines, invalid = timestamp_lines(
            conn, load_config(config).timestamping, data_dir=data, anchors=anchors
        )
    finally:
        conn.close()
    assert not invalid
    assert len(lines) == len(rows) + len(anchors)
    assert all("timestamped at" in line and "CN=evidock test TSA" in line for line in lines)
    said = run_cli("verify", "--data-dir", data, check=0).stdout
    assert said.count("timestamped at") == len(rows), said  # evidock verify says so


def test_tsa_down_the_ingest_goes_on_and_the_next_pass_adds_the_token(
    tsa: TestTSA, tmp_path: Path
) -> None:
    config = _config(tmp_path, tsa.url, tsa.ca)
    tsa.stop()
    source = _recorder(tmp_path / "mount" / "REC0001", clips=3)
    report = run_cli("ingest", source, "--config", config, "--json", check=0)
    assert '"clips_new": 3' in report.stdout or '"new": 3' in report.stdout, report.stdout
    data = tmp_path / "d"
    rows = _rows(data)
    assert rows and all(token is None for _, _, token, _ in rows)
    anchors = _anchor_files(tmp_path / "anchors")
    assert anchors and not list((tmp_path / "anchors").rglob("*.tsr"))
    run_cli("verify", "--data-dir", data, check=0)

    settings = load_config(config).timestamping
    conn = sqlite3.connect(data / "station.db")
    lines, invalid = timestamp_lines(conn, settings)
    conn.close()
    assert not invalid and all("pending" in line for line in lines), lines

    tsa.start()
    station = Station.open(load_config(config), config_file=config)
    try:
        # the daemon's next checkpoint, or any command that signs: the ledger has not
        # grown, the pending anchor still gets its token
        publish_checkpoint(station, station.conn, delivery_target(station))
    finally:
        station.close()
    rows = _rows(data)
    assert rows and all(token is not None and where for _, _, token, where in rows)
    for anchor in _anchor_files(tmp_path / "anchors"):
        assert (
            openssl_verify(anchor, anchor.with_name(anchor.name + ".tsr"), tsa.ca).returncode == 0
        )
    run_cli("verify", "--data-dir", data, check=0)


def test_a_token_under_another_ca_is_not_kept_and_verify_calls_a_changed_one_invalid(
    tsa: TestTSA, tmp_path: Path
) -> None:
    other_ca, _, _ = make_tsa_certificates(tmp_path / "other", "another TSA")
    config = _config(tmp_path, tsa.url, other_ca)
    source = _recorder(tmp_path / "mount" / "REC0001")
    run_cli("ingest", source, "--config", config, "--json", check=0)
    data = tmp_path / "d"
    assert tsa.requests > 0
    assert all(token is None for _, _, token, _ in _rows(data))
    conn = sqlite3.connect(data / "station.db")
    (error,) = {r[0] for r in conn.execute("SELECT last_error FROM checkpoint_timestamps")}
    assert "signature does not check" in error

    # The right CA: kept. Then a changed token, and a token over another anchor: INVALID.
    right = _config(tmp_path, tsa.url, tsa.ca)
    station = Station.open(load_config(right), config_file=right)
    try:
        assert stamp_pending(station, station.conn, None).stamped == len(_rows(data))
    finally:
        station.close()
    settings = load_config(right).timestamping
    assert timestamp_lines(conn, settings)[1] is False
    token = bytearray(conn.execute("SELECT token FROM checkpoint_timestamps").fetchone()[0])
    token[-3] ^= 1
    conn.execute("UPDATE checkpoint_timestamps SET token = ?", (bytes(token),))
    lines, invalid = timestamp_lines(conn, settings)
    assert invalid and "INVALID" in lines[0]
    conn.commit()
    conn.close()
    # evidock verify fails the station on it, and says why.
    said = run_cli("verify", "--config", right, "--data-dir", data, check=1).stdout
    assert "INVALID" in said, said


def test_an_export_carries_the_tokens_and_verify_package_checks_them(
    tsa: TestTSA, tmp_path: Path
) -> None:
    config = _config(tmp_path, tsa.url, tsa.ca)
    source = _recorder(tmp_path / "mount" / "REC0001")
    made = run_cli("ingest", source, "--config", config, "--json", check=0)
    data = tmp_path / "d"
    conn = sqlite3.connect(data / "station.db")
    clip = conn.execute("SELECT clip_id FROM clips ORDER BY clip_id").fetchone()[0]
    conn.close()
    assert clip, made.stdout
    run_cli("link", "--data-dir", data, "--case", CASE, "--clip", clip, check=0)
    out = tmp_path / "package"
    run_cli(
        "export", "--data-dir", data, "--case", CASE, "--out", out,
        "--who", "auditor", "--purpose", "court", check=0,
    )  # fmt: skip
    stamped = sorted((out / "timestamps").glob("*.anchor"))
    assert stamped
    for anchor in stamped:
        token = anchor.with_name(anchor.name + ".tsr")
        ca = out / "timestamps" / "tsa-ca.pem"
        assert openssl_verify(anchor, token, ca).returncode == 0
    pub = data / "keys" / "station.pub.pem"
    checked = run_cli("verify-package", out, "--pubkey", pub, check=0)
    assert checked.stdout.count("existed at") == len(stamped), checked.stdout
    assert "CN=evidock test TSA" in checked.stdout

    # A token over another anchor (sums made again, so only the token check can tell)
    first, last = stamped[0], stamped[-1]
    if first == last:
        (out / "timestamps" / "tsa-ca.pem").write_bytes(
            make_tsa_certificates(tmp_path / "other", "another TSA")[0].read_bytes()
        )
    else:
        token = first.with_name(first.name + ".tsr")
        token.chmod(0o644)
        token.write_bytes(last.with_name(last.name + ".tsr").read_bytes())
    write_sums(out)
    bad = run_cli("verify-package", out, "--pubkey", pub, check=1)
    assert "trusted timestamp INVALID" in bad.stdout
