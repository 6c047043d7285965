"""The custody report a court clerk reads, from a real station: two recorders ingested
by `evidock ingest` (real ffmpeg clips, real SQLite), clips linked to two cases, each
case exported in Chinese and in English, each package verified offline."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from browser import needs_chromium, pdf_pages
from station_cli import run_cli

from docking.simulated import generate_volume

CASE_A = "沪公(交)行罚决字〔2026〕123号"
CASE_B = "沪公(治)行罚决字〔2026〕7号"
STATION_NAME = "黄浦分局执法记录仪采集站"
STATION_PLACE = "上海市黄浦区人民大道200号"
ZONE = ZoneInfo("Asia/Shanghai")
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{6}")


@dataclass
class Site:
    root: Path
    config: Path
    data: Path
    first: list[str]  # REC0001's files (clips with GPS, sidecars, device-info): case A
    second: list[str]  # REC0002's (no GPS): two in case B, one with its object of proof

    def export(self, case: str, name: str, *extra: str) -> tuple[Path, str]:
        out = self.root / name
        proc = run_cli(
            "export", "--config", self.config, "--case", case, "--out", out,
            "--who", "检察官 A-17", "--purpose", "起诉审查", *extra, check=0,
        )  # fmt: skip
        return out, proc.stdout

    def verify(self, out: Path) -> None:
        pem = self.data / "keys" / "station.pub.pem"
        run_cli("verify-package", out, "--pubkey", pem, check=0)


def _ingest(site_root: Path, config: Path, volume: Path, *extra: str) -> list[str]:
    proc = run_cli("ingest", volume, "--config", config, "--json", *extra, check=0)
    report = json.loads(proc.stdout)
    return [c["clip_id"] for c in report["clips"] if c.get("clip_id")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("custody")
    config = root / "station.toml"
    config.write_text(
        f'[station]\nid = "sh-hp-01"\nname = "{STATION_NAME}"\nplace = "{STATION_PLACE}"\n'
        'time_zone = "Asia/Shanghai"\nlanguage = "zh-CN"\n'
        f'[paths]\ndata_dir = "{root / "data"}"\n'
        f'[docking]\nmount_root = "{root / "mount"}"\n'
        f'[delivery]\ncentral_dir = "{root / "central"}"\n',
        "utf-8",
    )
    first_volume = root / "mount" / "REC0001"
    generate_volume(first_volume, serial="REC0001", clips=3, seconds=2, officer="000123",
                    start=datetime(2026, 11, 22, 8, 30, 15))  # fmt: skip
    second_volume = root / "mount" / "REC0002"
    generate_volume(second_volume, serial="REC0002", clips=2, seconds=2, officer="000456",
                    place=None, start=datetime(2026, 11, 22, 9, 15, 0))  # fmt: skip
    first = _ingest(
        root, config, first_volume, "--officer", "警号010203", "--case", CASE_A,
        "--object-of-proof", "违法停车现场",
    )  # fmt: skip
    second = _ingest(root, config, second_volume)
    run_cli("link", "--config", config, "--case", CASE_B, "--clip", second[0],
            "--officer", "警号010203", "--object-of-proof", "驶离现场", check=0)  # fmt: skip
    run_cli("link", "--config", config, "--case", CASE_B, "--clip", second[1], check=0)
    return Site(root, config, root / "data", first, second)


def _local(text: str) -> str:
    """A leaf's time as the report must show it: Shanghai time, offset, whole seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZONE)
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S +08:00")


def _moment(media: dict[str, Any], which: str) -> str:
    """The clip's start or end as the report takes it: corrected when the recorder's
    clock was read at docking, else as the recorder recorded it (these recorders'
    newest-file clock corrects nothing: docs/media.md)."""
    return str(media.get(f"{which}_corrected") or media[which])


def _media(out: Path, name: str) -> dict[str, Any]:
    """The media object of the clip.ingested leaf of the recorder file ``name``."""
    for path in sorted((out / "leaves").iterdir()):
        leaf = json.loads(path.read_bytes())
        if leaf["kind"] == "clip.ingested" and leaf["body"]["source_path"].endswith(name):
            return dict(leaf["body"]["media"])
    raise AssertionError(f"no leaf for {name}")


def _outside_notes(html: str) -> str:
    """The report without its "as recorded" notes (which quote the leaves exactly)."""
    return re.sub(r'<div class="note">.*?</div>', "", html)


def test_a_case_in_chinese_for_the_clerk(site: Site) -> None:
    out, said = site.export(CASE_A, "pkg-a-zh")
    site.verify(out)
    html = (out / "custody.html").read_text("utf-8")
    media = [_media(out, f"_000{n}.MP4") for n in (1, 2)]
    first = {k: _local(_moment(media[0], k)) for k in ("start", "end")}
    gap = (_local(_moment(media[0], "end")), _local(_moment(media[1], "start")))
    assert '<html lang="zh-CN">' in html
    for text in (
        "证据保管链报告",
        STATION_NAME,  # the station's name and place, not only its id
        STATION_PLACE,
        "sh-hp-01",
        "Asia/Shanghai (UTC+08:00)",
        "2026-11-22 08:30:15 +08:00",  # the recorder's own clock, with the offset
        # capture times: corrected by the recorder's clock offset, local, no microseconds
        f"{first['start']} 至 {first['end']}",
        "北纬 31.2304°，东经 121.4737°",  # readable coordinates
        # the five elements, each with its source
        "<th>案件编号</th>",
        "<th>采集时间</th>",
        "<th>采集地点</th>",
        "<th>采集人</th>",
        "<th>证明对象</th>",
        '<td class="source">执法记录仪</td>',
        '<td class="source">民警录入</td>',
        '<td class="source">采集站默认</td>',  # a sidecar has no place: the station's
        "违法停车现场",
        "警号010203",
        # the case's summary
        f"<th>视音频记录数</th><td>{len(site.first)}</td>",
        "记录总时长",
        "记录间断",
        # the gap between the clips (2 s long, 7 s apart: 5 s of nothing recorded)
        f"{gap[0]} 至 {gap[1]}，共 0分05秒",
        "1 条记录的采集时间不明",  # the device-info file
        # event details as labelled fields
        "<b>执法记录仪编号</b>：REC0001",
        "接入采集站",
        "采集入库",
        "关联案件",
        "调阅",
        # verification and signatures
        "evidock verify-package",
        "sha256sum -c SHA256SUMS",
        "b3sum -c B3SUMS",
        "导出操作员",
        "审核人",
        "签名",
        "日期",
    ):
        assert text in html, text
    assert html.count('<section class="case">') == 1
    assert html.count('<article class="clip"') == len(site.first)
    for clip in site.first:
        assert clip in html
    for clip in site.second:
        assert clip not in html  # case B's clips are not case A's business
    shown = _outside_notes(html)
    assert not MICROSECONDS.search(shown), MICROSECONDS.search(shown)
    assert "T08:30:15" not in shown and "+31.2304+121.4737/" not in shown
    # every hash is in the summary's table
    sums = (out / "SHA256SUMS").read_text()
    for line in sums.splitlines():
        digest, name = line.split("  ", 1)
        if name.startswith("clips/"):
            assert digest in html, name
    if (out / "custody.pdf").exists():
        assert "custody.pdf" in said and "custody.pdf" in sums
    else:
        assert "apt-get install chromium" in said


def test_the_same_case_in_english(site: Site) -> None:
    out, said = site.export(CASE_A, "pkg-a-en", "--language", "en", "--no-pdf")
    site.verify(out)
    assert not (out / "custody.pdf").exists() and "custody.pdf" not in said
    html = (out / "custody.html").read_text("utf-8")
    media = [_media(out, f"_000{n}.MP4") for n in (1, 2)]
    gap = (_local(_moment(media[0], "end")), _local(_moment(media[1], "start")))
    assert '<html lang="en">' in html
    for text in (
        "Chain-of-custody report",
        STATION_NAME,
        STATION_PLACE,
        "2026-11-22 08:30:15 +08:00",
        "31.2304° N, 121.4737° E",
        "<th>Case number</th>",
        "<th>Capture time</th>",
        "<th>Capture place</th>",
        "<th>Collector</th>",
        "<th>Object of proof</th>",
        '<td class="source">recorder</td>',
        '<td class="source">officer input</td>',
        '<td class="source">station default</td>',
        f"<th>Records</th><td>{len(site.first)}</td>",
        "Gaps in coverage",
        f"{gap[0]} to {gap[1]}, 0 min 05 s",
        "<b>Recorder serial</b>: REC0001",
        "docked",
        "ingested",
        "linked to case",
        "accessed",
        "evidock verify-package",
        "Signatures",
        "Operator",
        "Auditor",
    ):
        assert text in html, text
    assert "采集站默认" not in html and "执法记录仪编号" not in html
    assert not MICROSECONDS.search(_outside_notes(html))


def test_the_other_case_has_its_own_page_and_says_what_is_missing(site: Site) -> None:
    out, _ = site.export(CASE_B, "pkg-b", "--no-pdf")
    site.verify(out)
    html = (out / "custody.html").read_text("utf-8")
    assert html.count('<section class="case">') == 1
    assert html.count('<article class="clip"') == 2
    assert site.second[0] in html and site.second[1] in html
    assert "<th>视音频记录数</th><td>2</td>" in html and "驶离现场" in html
    # nobody said what the second one proves: missing, never guessed
    assert (
        '<th>证明对象</th><td><span class="missing">缺失</span></td>'
        '<td class="source"><span class="missing">缺失</span></td>'
    ) in html
    assert "要素不全的记录" in html
    # the collector came from the recorder's own device-info (no officer was given)
    assert "000456" in html


@needs_chromium
def test_the_pdf_is_in_the_package_and_verifies(site: Site) -> None:
    out, said = site.export(CASE_B, "pkg-b-pdf")
    assert "custody.html and custody.pdf" in said
    assert pdf_pages(out / "custody.pdf") >= 2  # the front page, then the case's own
    site.verify(out)
    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0 and "custody.pdf: OK" in checked.stdout
