"""Every command, given bad input, says in one line what to do and exits 2 (or 1 where
the input was usable but the result is not): never a traceback, never a changed ledger.

A new command without a case here fails ``test_every_command_has_bad_input_cases``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from station_cli import leaf_count, run_as_auditor, run_cli

from agent.cli import _subcommands, build_parser

LINKED = "朝执罚〔2026〕1号"
OPEN = "朝执罚〔2026〕2号"
CLOSED = "朝执罚〔2026〕3号"
NONE = "朝执罚〔2026〕404号"


class Station:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "d"
        self.config = root / "station.toml"
        self.clip = ""
        self.session = ""

    def leaves(self) -> int:
        return leaf_count(self.data)


@pytest.fixture(scope="module")
def station(recorder_template: Path) -> Iterator[Station]:
    # A folder an unprivileged auditor may enter (pytest's tmp folders are root's only).
    root = Path(tempfile.mkdtemp(prefix="evidock-bad-input-"))
    root.chmod(0o755)
    made = Station(root)
    (root / "mount").mkdir()
    shutil.copytree(recorder_template, root / "mount" / "REC0001")
    made.config.write_text(
        f'[station]\nid = "bad-input-01"\n[paths]\ndata_dir = "{made.data}"\n'
        f'[docking]\nmount_root = "{root / "mount"}"\n'
        f'[delivery]\ncentral_dir = "{root / "central"}"\n',
        "utf-8",
    )
    proc = run_cli("ingest", root / "mount" / "REC0001", "--config", made.config, "--json", check=0)
    import json

    report = json.loads(proc.stdout)
    made.clip = report["clips"][0]["clip_id"]
    made.session = report["session_id"]
    run_cli("link", "--data-dir", made.data, "--case", LINKED, "--clip", made.clip, check=0)
    for number in (OPEN, CLOSED):
        run_cli("case", "create", "--data-dir", made.data, "--case", number, "--subject", "张三",
                "--category", "行政处罚", "--unit", "朝阳分局", check=0)  # fmt: skip
    run_cli("case", "close", CLOSED, "--data-dir", made.data, "--by", "a", "--reason", "b", check=0)
    yield made
    shutil.rmtree(root, ignore_errors=True)


_FIELDS = ("--subject", "张三", "--category", "行政处罚", "--unit", "朝阳分局")
_WHO = ("--by", "clerk", "--reason", "why")


def _cases(s: Station) -> list[tuple[str, tuple[str, ...], int, str]]:
    """(command, args, expected exit, a word the one-line message must hold)."""
    d, r = str(s.data), s.root
    missing = str(r / "no-such-thing")
    garbage = r / "garbage.txt"
    garbage.write_text("not a key, not an anchor, not a receipt\n", "utf-8")
    bad_toml = r / "bad.toml"
    bad_toml.write_text('[station]\nnmae = "x"\n[hashing]\nverify = "sometimes"\n', "utf-8")
    no_mount = r / "no-mount.toml"
    no_mount.write_text(
        f'[station]\nid = "bad-input-01"\n[paths]\ndata_dir = "{s.data}"\n'
        f'[docking]\nmount_root = "{r / "not-mounted"}"\n'
        f'[delivery]\ncentral_dir = "{r / "central"}"\n',
        "utf-8",
    )
    not_package = r / "not-a-package"
    not_package.mkdir(exist_ok=True)
    a_file = r / "a-file"
    a_file.write_text("x", "utf-8")
    bad_feed = r / "bad-feed.csv"
    bad_feed.write_text(
        "case_number,officer,start,end\nK-1,O1,yesterday,2026-11-20T09:00+08:00\n", "utf-8"
    )
    empty_feed = r / "empty-feed.json"
    empty_feed.write_text("", "utf-8")
    return [
        ("demo", ("--data-dir", "/proc/evidock-demo"), 2, "/proc"),
        ("ingest", (missing, "--data-dir", d), 2, "does not exist"),
        ("ingest", (str(a_file), "--data-dir", d), 2, "not a folder"),
        ("ingest", (str(r / "mount" / "REC0001"), "--data-dir", str(a_file / "d")), 2, "data dir"),
        ("ingest", (str(r / "mount" / "REC0001"), "--config", missing), 2, "does not exist"),
        ("ingest", (str(r / "mount" / "REC0001"), "--config", str(bad_toml)), 2, "nmae"),
        ("ingest", (str(r / "mount" / "REC0001"),), 2, "--data-dir"),
        ("link", ("--data-dir", d, "--case", "K-2", "--clip", "cnothere"), 2, "no clip"),
        ("link", ("--data-dir", d, "--case", " ", "--clip", s.clip), 2, "case number"),
        ("link", ("--data-dir", missing, "--case", "K-2", "--clip", s.clip), 2, "no station"),
        ("link", ("--data-dir", d, "--case", "K-2"), 2, "--clip"),
        ("unlink", ("--data-dir", d, "--case", LINKED, "--session", "Snothere"), 2, "session"),
        ("link", ("--data-dir", d, "--case", "K-3", "--clip", s.clip), 2, "number_pattern"),
        (
            "unlink",
            ("--data-dir", d, "--case", "朝执罚[2026]2号", "--clip", s.clip),
            2,
            "not linked",
        ),
        ("unlink", ("--data-dir", d, "--case", "K-1", "--clip", s.clip), 2, "e.g. 朝执罚"),
        (
            "ingest",
            (str(r / "mount" / "REC0001"), "--data-dir", d, "--case", "K-3"),
            2,
            "number_pattern",
        ),
        ("case", ("--data-dir", d), 2, "ACTION"),
        ("case", ("create", "--data-dir", d, "--case", "K-3", *_FIELDS), 2, "{year}"),
        ("case", ("create", "--data-dir", d, "--case", "朝执罚（2026）2号", *_FIELDS), 2, "exists"),
        ("case", ("create", "--data-dir", d, "--case", NONE, "--subject", "s"), 2, "--category"),
        (
            "case",
            ("create", "--data-dir", d, "--case", NONE, *_FIELDS, "--subject", " "),
            2,
            "empty",
        ),
        (
            "case",
            ("create", "--data-dir", d, "--case", NONE, *_FIELDS, "--starts", "昨天"),
            2,
            "ISO",
        ),
        (
            "case",
            ("create", "--data-dir", d, "--case", NONE, *_FIELDS, "--ends", "2026-11-22T08:00"),
            2,
            "time zone",
        ),
        (
            "case",
            ("create", "--data-dir", d, "--case", NONE, *_FIELDS, "--sensitivity", "x"),
            2,
            "choice",
        ),
        ("case", ("create", "--data-dir", missing, "--case", NONE, *_FIELDS), 2, "no station"),
        ("case", ("show", NONE, "--data-dir", d), 2, "no case"),
        ("case", ("show", " ", "--data-dir", d), 2, "empty"),
        ("case", ("show", OPEN, "--data-dir", missing), 2, "no station"),
        ("case", ("list", "--data-dir", missing), 2, "no station"),
        ("case", ("list", "--data-dir", d, "--open", "--closed"), 2, "not allowed"),
        ("case", ("edit", OPEN, "--data-dir", d, "--by", "a", "--reason", "b"), 2, "say what"),
        (
            "case",
            ("edit", OPEN, "--data-dir", d, "--subject", "张三", *_WHO),
            2,
            "nothing to change",
        ),
        (
            "case",
            ("edit", OPEN, "--data-dir", d, "--whole-process", "maybe", *_WHO),
            2,
            "yes or no",
        ),
        ("case", ("edit", NONE, "--data-dir", d, "--unit", "u2", *_WHO), 2, "no case"),
        ("case", ("edit", CLOSED, "--data-dir", d, "--unit", "u2", *_WHO), 2, "closed"),
        ("case", ("edit", OPEN, "--data-dir", d, "--unit", "u2", "--by", "a"), 2, "--reason"),
        ("case", ("close", NONE, "--data-dir", d, *_WHO), 2, "no case"),
        ("case", ("close", CLOSED, "--data-dir", d, *_WHO), 2, "closed"),
        ("case", ("close", OPEN, "--data-dir", d, "--by", " ", "--reason", "b"), 2, "--by"),
        (
            "fetch",
            ("cnothere", "--data-dir", d, "--out", str(r / "o1"), "--who", "a", "--purpose", "b"),
            2,
            "no clip",
        ),
        (
            "fetch",
            (s.clip, "--data-dir", d, "--out", str(a_file), "--who", "a", "--purpose", "b"),
            2,
            "exists",
        ),
        (
            "fetch",
            (s.clip, "--data-dir", d, "--out", "/proc/evidock-out", "--who", "a", "--purpose", "b"),
            2,
            "/proc",
        ),
        (
            "fetch",
            (s.clip, "--data-dir", d, "--out", str(r / "o2"), "--who", " ", "--purpose", "b"),
            2,
            "--who",
        ),
        ("deliver", ("--data-dir", missing), 2, "no station"),
        ("queue", ("--data-dir", missing), 2, "no station"),
        ("queue", ("--data-dir", d, "--state", "lost"), 2, "invalid choice"),
        ("queue", ("--data-dir", d, "--retry-parked", "all"), 2, "unrecognized"),
        ("purge", ("--data-dir", missing, "--dry-run"), 2, "no station"),
        ("purge", ("--dry-run",), 2, "--data-dir"),
        ("purge", ("--data-dir", d, "--older-than", "30d"), 2, "unrecognized"),
        ("deliver", ("--config", str(bad_toml)), 2, "verify"),
        ("run", ("--config", missing), 2, "does not exist"),
        ("run", ("--config", str(no_mount), "--once"), 2, "mount_root"),
        ("run", ("--config", str(bad_toml)), 2, "did you mean"),
        ("rotate-key", ("--data-dir", missing), 2, "no station"),
        ("check-config", (missing,), 2, "does not exist"),
        ("check-config", (str(bad_toml),), 2, "did you mean"),
        ("check-config", (str(no_mount),), 2, "mount_root"),
        ("verify", ("--data-dir", missing), 2, "station"),
        ("verify", ("--data-dir", d, "--pubkey", str(garbage)), 2, "key"),
        ("verify", ("--data-dir", d, "--anchor", str(garbage)), 2, "anchor"),
        ("verify", ("--data-dir", d, "--anchor", "s3"), 2, "--anchor central"),
        ("verify", ("--data-dir", d, "--anchor", str(not_package)), 2, "no *.anchor"),
        ("reverify", ("--data-dir", d), 2, "--central"),
        ("reverify", ("--data-dir", d, "--central", "--sample", "-1"), 2, "--sample"),
        ("reverify", ("--data-dir", missing, "--central"), 2, "no station"),
        ("proof", ("cnothere", "--data-dir", d), 2, "cnothere"),
        (
            "export",
            (
                "--data-dir",
                d,
                "--case",
                LINKED,
                "--out",
                "/proc/evidock-x",
                "--who",
                "a",
                "--purpose",
                "b",
            ),
            2,
            "/proc",
        ),
        (
            "export",
            (
                "--data-dir",
                d,
                "--case",
                LINKED,
                "--out",
                "/etc/hostname",
                "--who",
                "a",
                "--purpose",
                "b",
            ),
            2,
            "/etc/hostname",
        ),
        (
            "export",
            (
                "--data-dir",
                d,
                "--case",
                "K-404",
                "--out",
                str(r / "p404"),
                "--who",
                "a",
                "--purpose",
                "b",
            ),
            2,
            "K-404",
        ),
        ("export", ("--data-dir", d, "--case", LINKED, "--out", str(r / "p1")), 2, "--who"),
        ("verify-package", (missing,), 2, "folder"),
        ("verify-package", (str(not_package),), 2, "not an evidence package"),
        ("pubkey", ("--data-dir", missing), 2, "station"),
        ("verify-proof", (str(garbage), "--pubkey", str(garbage)), 2, "receipt"),
        ("recorders", ("--data-dir", missing), 2, "no station"),
        ("sessions", ("--data-dir", missing, "--active"), 2, "no station"),
        ("assign", ("--data-dir", d, "REC0001"), 2, "officer"),
        ("assign", ("--data-dir", d, "REC0001", "A", "--from", "2026-11-22 08:00"), 2, "zone"),
        ("assign", ("--data-dir", d, "--import", missing, "--by", "IT"), 2, "cannot read"),
        ("assign", ("--data-dir", d, "--import", str(garbage), "--by", "IT"), 2, "line 1"),
        ("assign", ("--data-dir", missing, "--list"), 2, "no station"),
        ("wipe", (missing, "--data-dir", d), 2, "does not exist"),
        ("wipe", (str(garbage), "--data-dir", d), 2, "not a folder"),
        ("wipe", (str(r), "--data-dir", missing), 2, "no station"),
        ("wipe", (str(r), "--data-dir", d, "--policy", "sometimes"), 2, "invalid choice"),
        ("incidents", ("--data-dir", d), 2, "ACTION"),
        ("incidents", ("import", missing, "--data-dir", d), 2, "does not exist"),
        ("incidents", ("import", str(r), "--data-dir", d), 2, "is a folder"),
        ("incidents", ("import", str(garbage), "--data-dir", d), 2, "line 1"),
        ("incidents", ("import", str(bad_feed), "--data-dir", d), 2, "line 2"),
        ("incidents", ("import", str(empty_feed), "--data-dir", d), 2, "empty"),
        ("incidents", ("import", str(bad_feed), "--data-dir", missing), 2, "no station"),
        (
            "incidents",
            ("import", str(bad_feed), "--data-dir", d, "--slack-s", "-5"),
            2,
            "0 or more",
        ),
        ("incidents", ("match", "--data-dir", d, "--close-s", "soon"), 2, "number of seconds"),
        ("incidents", ("review", "--data-dir", missing), 2, "no station"),
        ("completeness", ("--data-dir", missing), 2, "no station"),
        ("completeness", ("--data-dir", d, "--unit"), 2, "expected one argument"),
        ("gaps", ("--data-dir", d), 2, "--case"),
        ("gaps", ("--data-dir", d, "--case", NONE), 2, "no case"),
        ("gaps", ("--data-dir", d, "--case", " "), 2, "case number"),
        ("gaps", ("--data-dir", d, "--case", OPEN, "--max-gap-s", "-1"), 2, "0 or more"),
        ("stats", ("--data-dir", missing), 2, "no station"),
        ("stats", ("--data-dir", d, "--by", "shift"), 2, "invalid choice"),
        ("stats", ("--data-dir", d, "--from", "yesterday"), 2, "neither a day"),
        ("stats", ("--data-dir", d, "--from", "2026-11-22", "--to", "2026-11-20"), 2, "swap"),
        ("stats", ("--data-dir", d, "--to", "2026-11-20T08:00"), 2, "offset"),
        ("stats", ("--data-dir", d, "--png", str(r / "no-dir" / "s.png")), 2, "existing folder"),
        ("stats", ("--data-dir", d, "--json", "--csv"), 2, "not allowed"),
        ("clips", ("--data-dir", missing), 2, "no station"),
        ("clips", ("--data-dir", d, "--near", "north", "--radius-m", "5"), 2, "LAT,LON"),
        ("clips", ("--data-dir", d, "--near", "91,0", "--radius-m", "5"), 2, "off the globe"),
        ("clips", ("--data-dir", d, "--near", "39.9,116.4"), 2, "--radius-m"),
        ("clips", ("--data-dir", d, "--radius-m", "5"), 2, "--near"),
        ("clips", ("--data-dir", d, "--near", "39.9,116.4", "--radius-m", "0"), 2, "positive"),
        ("clips", ("--data-dir", d, "--integrity", "broken"), 2, "invalid choice"),
        ("clips", ("--data-dir", d, "--case", " "), 2, "case number"),
        ("clips", ("--data-dir", d, "--from", "2026-13-01"), 2, "neither a day"),
        ("clip", ("--data-dir", d), 2, "ACTION"),
        (
            "clip",
            ("mark", "cnothere", "--data-dir", d, "--sensitivity", "secret", *_WHO),
            2,
            "no clip",
        ),
        (
            "clip",
            ("mark", s.clip, "--data-dir", d, "--sensitivity", "top", *_WHO),
            2,
            "invalid choice",
        ),
        (
            "clip",
            (
                "mark",
                s.clip,
                "--data-dir",
                d,
                "--sensitivity",
                "privacy",
                "--by",
                " ",
                "--reason",
                "r",
            ),
            2,
            "--by",
        ),
        ("clip", ("mark", s.clip, "--data-dir", d, "--sensitivity", "privacy"), 2, "--by"),
        (
            "clip",
            ("mark", s.clip, "--data-dir", missing, "--sensitivity", "privacy", *_WHO),
            2,
            "no station",
        ),
        ("retention", ("--data-dir", missing), 2, "no station"),
        ("retention", ("--data-dir", d, "--json", "extra"), 2, "unrecognized"),
        ("status", ("--data-dir", missing), 2, "no station"),
        ("status", (), 2, "--data-dir"),
        ("status", ("--data-dir", d, "extra"), 2, "unrecognized"),
        (
            "token",
            ("create", "--data-dir", d, "--role", "root", "--owner", "X"),
            2,
            "invalid choice",
        ),
        ("token", ("create", "--data-dir", d, "--role", "admin", "--owner", " "), 2, "--owner"),
        ("token", ("create", "--data-dir", d, "--role", "admin"), 2, "--owner"),
        (
            "token",
            ("create", "--data-dir", missing, "--role", "admin", "--owner", "X"),
            2,
            "station",
        ),
        ("token", ("revoke", "000000000000", "--data-dir", d), 2, "no token"),
        ("token", ("list", "--data-dir", missing), 2, "no station"),
        ("token", ("rotate", "--data-dir", d), 2, "invalid choice"),
    ]


def test_every_command_has_bad_input_cases(station: Station) -> None:
    commands = set(_subcommands(build_parser()))
    covered = {case[0] for case in _cases(station)}
    assert commands - covered == set(), "commands without a bad-input case"


def test_bad_input_gives_one_line_and_changes_nothing(station: Station) -> None:
    before = station.leaves()
    failures = []
    for command, args, code, word in _cases(station):
        proc = run_cli(command, *args)
        err = proc.stderr.strip()
        if (
            proc.returncode != code
            or "Traceback" in proc.stderr
            or word.lower() not in err.lower()
            or (proc.stdout.strip() and code == 2)
        ):
            failures.append((command, args, proc.returncode, proc.stdout[-300:], err[-600:]))
    assert failures == []
    assert station.leaves() == before
    verify = run_cli("verify", "--data-dir", station.data)
    assert verify.returncode == 0, verify.stdout


def test_unknown_option_shows_the_commands_usage(station: Station) -> None:
    proc = run_cli("verify", "--data-dir", station.data, "--no-such-option", check=2)
    assert "usage: evidock verify" in proc.stderr and "--no-such-option" in proc.stderr
    proc = run_cli("--version", check=0)
    assert proc.stdout.startswith("evidock ")


def test_an_unprivileged_auditor_can_verify_and_cannot_write(station: Station) -> None:
    proc = run_as_auditor("verify", "--data-dir", station.data, cwd=station.root)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    proc = run_as_auditor("pubkey", "--data-dir", station.data, cwd=station.root)
    assert proc.returncode == 0 and "BEGIN PUBLIC KEY" in proc.stdout, proc.stderr
    # Looking at cases reads the station, read-only: an auditor may.
    proc = run_as_auditor("case", "list", "--data-dir", station.data, "--json", cwd=station.root)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout)["unregistered"] == [LINKED]
    proc = run_as_auditor("case", "show", LINKED, "--data-dir", station.data, cwd=station.root)
    assert proc.returncode == 0 and station.clip in proc.stdout, (proc.stdout, proc.stderr)
    # So are the station's records: statistics, completeness, search.
    for command in (("stats", "--json"), ("completeness", "--json"), ("clips", "--json")):
        proc = run_as_auditor(*command, "--data-dir", station.data, cwd=station.root)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        assert json.loads(proc.stdout), command
    # The private key stays private.
    keys = station.data / "keys"
    private = [p for p in keys.iterdir() if p.suffix == ".ed25519"]
    assert private and all(p.stat().st_mode & 0o077 == 0 for p in private)
    before = station.leaves()
    proc = run_as_auditor(
        "link",
        "--data-dir",
        station.data,
        "--case",
        "朝执罚〔2026〕9号",
        "--clip",
        station.clip,
        cwd=station.root,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert station.leaves() == before
