"""Sensitivity through the real CLI on a real station: a privacy or secret clip is
refused (exit 2, one line, an access.refused leaf, no file) to people the station's
[sensitivity] config does not list, handed out and logged to those it does; an export
of a case holding secret footage is refused the same way, and an allowed export marks
each clip's sensitivity in its manifest and its custody report."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, leaf_count, run_cli

from hashing import EvidenceStore

SECRET_CASE = "朝执罚〔2026〕21号"
PLAIN_CASE = "朝执罚〔2026〕22号"
CONFIG = """
[station]
id = "sens-01"
[paths]
data_dir = "{data}"
[docking]
mount_root = "{mount}"
[delivery]
central_dir = "{central}"
[sensitivity]
privacy = ["role:supervisor"]
secret = ["chief-1"]
[sensitivity.roles]
supervisor = ["sup-7", "０４５７"]
"""


class Made:
    def __init__(self, root: Path, report: dict[str, Any]) -> None:
        self.root = root
        self.config = root / "station.toml"
        self.data = root / "data"
        self.clips = {str(c["clip_id"]): str(c["sha256"]) for c in report["clips"]}

    def cli(self, *args: str | Path, check: int | None = 0) -> str:
        proc = run_cli(*args, "--config", self.config, check=check)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout + proc.stderr

    def last_leaf(self) -> tuple[str, dict[str, Any]]:
        conn = sqlite3.connect(self.data / "station.db")
        try:
            kind, data = conn.execute(
                "SELECT kind, data FROM ledger_leaves ORDER BY idx DESC LIMIT 1"
            ).fetchone()
        finally:
            conn.close()
        body: dict[str, Any] = json.loads(bytes(data))["body"]
        return str(kind), body

    def verify(self) -> None:
        proc = run_cli("verify", "--data-dir", self.data)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def fetch(self, clip: str, out: Path, who: str, *, check: int) -> str:
        return self.cli(
            "fetch", clip, "--out", out, "--who", who, "--purpose", "hearing", check=check
        )


@pytest.fixture(scope="module")
def template(recorder_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sensitivity")
    (root / "mount").mkdir()
    shutil.copytree(recorder_template, root / "mount" / "REC0001")
    config = root / "station.toml"
    config.write_text(
        CONFIG.format(data=root / "data", mount=root / "mount", central=root / "central"), "utf-8"
    )
    report = ingest_json(root / "mount" / "REC0001", root / "data", "--config", config)
    (root / "report.json").write_text(json.dumps(report), "utf-8")
    return root


@pytest.fixture
def made(template: Path, tmp_path: Path) -> Made:
    """A copy of the station that a test may change (its config names the copy)."""
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    text = (root / "station.toml").read_text("utf-8").replace(str(template), str(root))
    (root / "station.toml").write_text(text, "utf-8")
    return Made(root, json.loads((root / "report.json").read_text("utf-8")))


def _media_clips(made: Made) -> list[str]:
    return sorted(made.clips)


def test_a_privacy_clip_is_refused_to_the_unlisted_and_handed_to_the_listed(
    made: Made, tmp_path: Path
) -> None:
    clip = _media_clips(made)[0]
    # Anyone may raise a mark (it only protects); it is a leaf.
    out = made.cli("clip", "mark", clip, "--sensitivity", "privacy", "--by", "officer-1",
                   "--reason", "a minor is seen")  # fmt: skip
    assert "marked privacy" in out
    assert made.last_leaf()[0] == "clip.sensitivity_set"
    outdir = tmp_path / "out"
    outdir.mkdir()
    before = leaf_count(made.data)

    err = made.fetch(clip, outdir / "c.mp4", "auditor-7", check=2)

    assert len(err.strip().splitlines()) == 1, err
    assert "privacy" in err and "auditor-7 may not view it" in err and "recorded" in err
    assert list(outdir.iterdir()) == []  # no file, not even a temporary one
    assert leaf_count(made.data) == before + 1
    kind, body = made.last_leaf()
    assert kind == "access.refused"
    assert (body["who"], body["clip_id"], body["action"], body["sensitivity"]) == (
        "auditor-7", clip, "download", "privacy",
    )  # fmt: skip
    made.verify()

    # A person of the supervisor role (written with full-width digits in the config) may.
    made.fetch(clip, outdir / "c.mp4", "0457", check=0)
    stored = EvidenceStore(made.data / "store").path_for(made.clips[clip])
    assert (outdir / "c.mp4").read_bytes() == stored.read_bytes()
    kind, body = made.last_leaf()
    assert (kind, body["who"], body["action"]) == ("clip.accessed", "0457", "download")
    # So may whoever may see secret; a normal clip anyone who says who and why.
    made.fetch(clip, outdir / "d.mp4", "chief-1", check=0)
    made.fetch(_media_clips(made)[1], outdir / "e.mp4", "auditor-7", check=0)
    made.verify()


def test_secret_through_a_case_refuses_privacy_readers_and_the_export(
    made: Made, tmp_path: Path
) -> None:
    secret, plain = _media_clips(made)[:2]
    made.cli("case", "create", "--case", SECRET_CASE, "--subject", "张三", "--category",
             "刑事", "--unit", "朝阳分局", "--sensitivity", "secret")  # fmt: skip
    made.cli("link", "--case", SECRET_CASE, "--clip", secret)
    made.cli("link", "--case", SECRET_CASE, "--clip", plain)
    made.cli("unlink", "--case", SECRET_CASE, "--clip", plain)
    made.cli("link", "--case", PLAIN_CASE, "--clip", plain)

    err = made.fetch(secret, tmp_path / "x.mp4", "sup-7", check=2)
    assert f"secret (case {SECRET_CASE})" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()
    # Unlinked from the secret case: the other clip is normal again.
    made.fetch(plain, tmp_path / "y.mp4", "sup-7", check=0)

    package = tmp_path / "pkg"
    before = leaf_count(made.data)
    err = made.cli("export", "--case", "朝执罚[2026]21号", "--out", package, "--who", "sup-7",
                   "--purpose", "court", "--no-pdf", check=2)  # fmt: skip
    assert "may not export" in err and len(err.strip().splitlines()) == 1
    assert not package.exists()
    assert leaf_count(made.data) == before + 1
    kind, body = made.last_leaf()
    assert kind == "access.refused"
    assert (body["action"], body["case_number"], body["clips"], body["clip_id"]) == (
        "export", SECRET_CASE, [secret], None,
    )  # fmt: skip
    made.verify()

    made.cli("export", "--case", SECRET_CASE, "--out", package, "--who", "chief-1",
             "--purpose", "court", "--no-pdf", "--language", "en")  # fmt: skip
    manifest = json.loads((package / "manifest.json").read_text("utf-8"))
    assert manifest["sensitivity"] == "secret"
    assert [(c["clip_id"], c["sensitivity"]) for c in manifest["clips"]] == [(secret, "secret")]
    html = (package / "custody.html").read_text("utf-8")
    first_page = html.split("<section", 1)[0]
    assert "This package holds 1 SECRET record(s)" in first_page
    assert '<span class="mark secret">SECRET</span>' in html
    proc = run_cli("verify-package", package, "--pubkey", made.data / "keys" / "station.pub.pem")
    assert proc.returncode == 0, proc.stdout
    made.verify()


def test_an_allowed_export_of_a_normal_case_marks_normal(made: Made, tmp_path: Path) -> None:
    clip = _media_clips(made)[2]
    made.cli("link", "--case", PLAIN_CASE, "--clip", clip)
    made.cli("clip", "mark", clip, "--sensitivity", "privacy", "--by", "o", "--reason", "r")
    package = tmp_path / "pkg"
    made.cli("export", "--case", PLAIN_CASE, "--out", package, "--who", "sup-7",
             "--purpose", "court", "--no-pdf")  # fmt: skip
    manifest = json.loads((package / "manifest.json").read_text("utf-8"))
    assert manifest["sensitivity"] == "privacy"
    assert manifest["clips"][0]["sensitivity"] == "privacy"
    html = (package / "custody.html").read_text("utf-8")
    assert '<span class="mark privacy">隐私</span>' in html
    assert "涉及个人隐私的视音频记录 1 条" in html.split("<section", 1)[0]


def test_changing_a_mark_needs_a_person_allowed_at_it(made: Made) -> None:
    clip = _media_clips(made)[0]
    made.cli("clip", "mark", clip, "--sensitivity", "secret", "--by", "o", "--reason", "r")
    before = leaf_count(made.data)
    err = made.cli("clip", "mark", clip, "--sensitivity", "normal", "--by", "sup-7",
                   "--reason", "not secret", check=2)  # fmt: skip
    assert "may not change that mark" in err and len(err.strip().splitlines()) == 1
    assert leaf_count(made.data) == before + 1
    kind, body = made.last_leaf()
    assert (kind, body["action"], body["who"], body["sensitivity"]) == (
        "access.refused", "mark", "sup-7", "secret",
    )  # fmt: skip
    out = made.cli("clip", "mark", clip, "--sensitivity", "normal", "--by", "chief-1",
                   "--reason", "reviewed")  # fmt: skip
    assert "marked normal (was secret" in out
    assert "already" in made.cli("clip", "mark", clip, "--sensitivity", "normal", "--by", "x",
                                 "--reason", "y")  # fmt: skip
    made.verify()


def test_lowering_a_case_needs_a_person_allowed_at_it(made: Made) -> None:
    made.cli("case", "create", "--case", SECRET_CASE, "--subject", "某公司", "--category",
             "行政处罚", "--unit", "一中队", "--sensitivity", "secret", "--by", "o")  # fmt: skip
    before = leaf_count(made.data)
    err = made.cli("case", "edit", SECRET_CASE, "--sensitivity", "normal", "--by", "sup-7",
                   "--reason", "not secret", check=2)  # fmt: skip
    assert "may not change its sensitivity" in err and len(err.strip().splitlines()) == 1
    assert leaf_count(made.data) == before + 1
    kind, body = made.last_leaf()
    assert (kind, body["action"], body["who"], body["case_number"]) == (
        "access.refused", "mark", "sup-7", SECRET_CASE,
    )  # fmt: skip
    out = made.cli("case", "edit", SECRET_CASE, "--sensitivity", "normal", "--by", "chief-1",
                   "--reason", "reviewed")  # fmt: skip
    assert "sensitivity" in out and made.last_leaf()[0] == "case.changed"
    # Raising is open to anyone: it only protects.
    made.cli("case", "edit", SECRET_CASE, "--sensitivity", "privacy", "--by", "o",
             "--reason", "faces")  # fmt: skip
    assert made.last_leaf()[0] == "case.changed"
    made.verify()


@pytest.mark.parametrize(
    ("section", "key", "word"),
    [
        ('[sensitivity]\nprivacy = ["role:supervisr"]\n[sensitivity.roles]\nsupervisor = ["a"]\n',
         "sensitivity", "role:supervisor"),
        ('[sensitivity]\nsecret = [""]\n', "sensitivity", "empty"),
        ("[sensitivity]\nsecret = 3\n", "sensitivity.secret", "list"),
        ('[sensitivity]\nreaders = ["a"]\n', "sensitivity.readers", "readers"),
        ('[sensitivity.roles]\nboss = ["role:chief"]\n', "sensitivity.roles", "not other roles"),
    ],
)  # fmt: skip
def test_bad_sensitivity_config_is_one_line(
    tmp_path: Path, section: str, key: str, word: str
) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text(section, "utf-8")
    proc = run_cli("check-config", bad, check=2)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert key in proc.stderr and word in proc.stderr, proc.stderr
