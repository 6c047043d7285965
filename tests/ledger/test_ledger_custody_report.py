"""The custody report from hand-made leaves: the five elements' sources, coverage gaps
computed by hand, one page per case, unknown kinds, hostile names; and a look at it in
headless Chromium (PNG screenshots in zh-CN and en, a PDF with a page per case)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from browser import needs_chromium, pdf_pages, print_to_pdf, read_png, screenshot

from ledger.custody import render_custody
from ledger.custody_format import parse_place, show_place
from ledger.custody_model import CaseCustody, ClipCustody, ExportFacts, ReportStation
from ledger.elements import clip_elements
from ledger.leaf import Leaf

ZONE_NAME = "Asia/Shanghai"
NOTES = Path("/work/notes")


def leaf(
    index: int, kind: str, body: dict[str, Any], at: str = "2026-11-22T01:00:00.000000Z"
) -> Leaf:
    return Leaf(index, at, kind, "sh-hp-01", "0" * 64, body, b"")


def ingested(index: int, clip: str, session: str, start: str | None, place: str | None) -> Leaf:
    media = {"duration_ms": 60_000, "codec": "h264", "audio_codec": "aac", "integrity": "ok",
             "start": start, "location": place, "width": 1920, "height": 1080}  # fmt: skip
    return leaf(index, "clip.ingested", {
        "clip_id": clip, "session_id": session, "sha256": f"{index:064x}", "blake3": "b" * 64,
        "size": 1234567, "recorder": "DSJ-A1-0042", "source_path": f"DCIM/{clip}.MP4",
        "recorder_time": None, "media": media,
    })  # fmt: skip


def docking(index: int, session: str, officer: str | None, source: str) -> Leaf:
    return leaf(index, "docking.opened", {"session_id": session, "recorder": "DSJ-A1-0042",
                "officer": officer, "officer_source": source})  # fmt: skip


def link(index: int, case: str, clip: str, **extra: Any) -> Leaf:
    return leaf(index, "case.linked", {"clip_id": clip, "session_id": None,
                "case_number": case, "officer": "警号010203", **extra})  # fmt: skip


CASE_A = '朝执罚〔2026〕12号<script>alert("x")</script>'
CASE_B = "朝执罚〔2026〕13号"


def clips(case: str, leaves: list[Leaf], zone: Any) -> list[ClipCustody]:
    found = []
    for item in leaves:
        if item.kind != "clip.ingested":
            continue
        clip_id = item.body["clip_id"]
        elements = clip_elements(
            leaves, clip_id, case, zone=zone, station_place="黄浦区人民大道200号"
        )
        if elements.case_number.value is None:
            continue
        events = [x for x in leaves if x.body.get("clip_id") in (clip_id, None)]
        found.append(ClipCustody(clip_id, f"{clip_id}_<b>&.MP4", item, elements, events, "ok"))
    return found


def report(language: str) -> str:
    from ledger.custody_format import station_zone

    zone = station_zone(ZONE_NAME)
    leaves = [
        docking(0, "s1", "警号010203", "assignment"),
        ingested(1, "c1", "s1", "2026-11-22T00:30:00.000000Z", "+31.2304+121.4737/"),
        ingested(2, "c2", "s1", "2026-11-22T00:32:00.000000Z", None),  # 1 min after c1 ends
        ingested(3, "c3", "s1", "2026-11-22T00:32:30.000000Z", "+3113.824+12128.422/"),
        link(4, CASE_A, "c1", object_of_proof="现场", source="incident-feed"),
        link(5, CASE_A, "c2", place_name="人民广场"),
        link(6, CASE_A, "c3"),
        link(7, CASE_B, "c3", object_of_proof="证人"),
        leaf(8, "case.frobbed", {"case_number": CASE_A, "weird_key": "<i>x</i>"}),
    ]
    cases = [
        CaseCustody(CASE_A, clips(CASE_A, leaves, zone), (leaves[8],)),
        CaseCustody(CASE_B, clips(CASE_B, leaves, zone)),
    ]
    station = ReportStation(
        "sh-hp-01", "黄浦分局采集站", "黄浦区人民大道200号", ZONE_NAME, language
    )
    facts = ExportFacts(
        "2026-11-23T02:00:00.123456Z", "检察官 A-17", "起诉审查", 9, "key+abc", "ab cd"
    )
    return render_custody(station, facts, cases)


def test_elements_carry_their_sources_and_gaps_are_hand_computed() -> None:
    html = report("en")
    # c1: case number and object of proof from the incident feed, place from the recorder
    assert '<td class="source">incident feed</td>' in html
    # collector from the recorder's assignment; c2's place from the officer's place name
    assert '<td class="source">assignment</td>' in html and "人民广场" in html
    # c3 (DDMM.MMM ISO 6709): 31°13.824' = 31.2304°
    assert html.count("31.2304° N, 121.4737° E") == 3  # c1, and c3 in both cases
    # c1 00:30-00:31, c2 00:32-00:33, c3 00:32:30-00:33:30 (UTC): one gap, 08:31 to 08:32
    assert "2026-11-22 08:31:00 +08:00 to 2026-11-22 08:32:00 +08:00, 1 min 00 s" in html
    assert "3 min 00 s" in html  # total recorded time: 3 clips of a minute
    assert "2026-11-22 08:30:00 +08:00 until 2026-11-22 08:33:30 +08:00" in html
    assert "2026-11-23 10:00:00 +08:00" in html and ".123456" not in html
    # c2 in case A has no object of proof: missing
    assert "c2_&lt;b&gt;&amp;.MP4: Object of proof" in html


def test_one_section_per_case_unknown_kinds_and_hostile_names() -> None:
    for language in ("zh-CN", "en"):
        html = report(language)
        assert html.count('<section class="case">') == 2
        assert "break-before: page" in html
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<i>x</i>" not in html and "&lt;i&gt;x&lt;/i&gt;" in html
        assert "case.frobbed" in html  # an unknown kind: a generic label and its name
        assert ("其他事件" if language == "zh-CN" else "other event") in html


def test_places_parse_in_every_iso6709_form() -> None:
    for text in ("+31.2304+121.4737/", "+3113.824+12128.422/", "+311349.44+1212825.32/"):
        place = parse_place(text)
        assert place is not None
        assert show_place(place, "en") == "31.2304° N, 121.4737° E", text
    south = parse_place("-33.8688-070.6693+520/")
    assert south is not None
    assert show_place(south, "zh-CN") == "南纬 33.8688°，西经 70.6693°，海拔 520 米"
    for bad in ("", "+99.0+10.0/", "nowhere", "+31.2304"):
        assert parse_place(bad) is None, bad


def _keep(png: Path, name: str) -> None:
    if NOTES.is_dir():
        shutil.copyfile(png, NOTES / name)


@needs_chromium
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_report_renders_in_chromium(language: str, tmp_path: Path) -> None:
    page = tmp_path / f"custody-{language}.html"
    page.write_text(report(language), "utf-8")
    png = screenshot(page, tmp_path / f"custody-{language}.png", height=1600)
    print(f"custody report screenshot ({language}): {png}")
    _keep(png, f"custody-{'zh' if language == 'zh-CN' else 'en'}.png")
    image = read_png(png)
    assert image.width == 1000 and image.height == 1600
    assert 0.02 < image.share_not_white() < 0.5  # text and tables, not a blank page
    assert image.band_has_ink(0, 80)  # the title is at the top
    pdf = print_to_pdf(page, tmp_path / f"custody-{language}.pdf")
    # the front page, then each of the two cases on pages of its own
    assert pdf_pages(pdf) >= 3


@needs_chromium
def test_chinese_text_renders_with_a_font_not_as_boxes(tmp_path: Path) -> None:
    """Two different Chinese words: with no CJK font both are the same missing-glyph
    boxes, so their pictures are the same."""
    shots = []
    for n, word in enumerate(("证据保管", "案件编号")):
        page = tmp_path / f"w{n}.html"
        page.write_text(f'<meta charset="utf-8"><p style="font-size:40px">{word}</p>', "utf-8")
        shots.append(read_png(screenshot(page, tmp_path / f"w{n}.png", width=400, height=120)))
    assert shots[0].rows != shots[1].rows


def test_a_key_whose_sense_depends_on_the_event_gets_that_events_label() -> None:
    from ledger.custody_text import Words

    zh, en = Words("zh-CN"), Words("en")
    assert zh.field("previous", "officer.assigned") == "原领用人"
    assert zh.field("previous", "clip.sensitivity_set") == "原密级"
    assert en.field("previous", "clip.sensitivity_set") == "Previous sensitivity"
    assert zh.field("previous") == "原值"  # any other event: its previous value
