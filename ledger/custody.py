"""The chain-of-custody report of an evidence package (``custody.html``), for a court
clerk, in the station's language (zh-CN by default, or English).

It opens with the station (its name and place, not only its id), the export (when, by
whom, why, the signed checkpoint and the key) and how to verify the package; then one
page per case: a summary (records, total time, the period and its gaps, the hashes),
then each clip with its five elements and their sources (``ledger.elements``), its
details and its custody events; it closes with a signature block. Times are local to
the station's zone with the offset shown (``ledger.custody_format``); the words are in
``ledger.custody_text``. The page forbids scripts and every fetch (a Content Security
Policy), so a hostile name that escaped escaping still could not run or call out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from html import escape

from ledger.custody_case import case_section, row, text
from ledger.custody_format import parse_time, show_time, station_zone, zone_label
from ledger.custody_model import CaseCustody, ExportFacts, ReportStation
from ledger.custody_text import Words, words

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Noto Sans", sans-serif;
  font-size: 10.5pt; line-height: 1.45; margin: 0 auto; max-width: 190mm; color: #000; }
h1 { font-size: 18pt; margin: 0 0 .4em; }
h2 { font-size: 14pt; margin: 0 0 .4em; border-bottom: 2px solid #333; }
h3 { font-size: 12pt; margin: 1em 0 .3em; }
h4 { font-size: 10.5pt; margin: .8em 0 .2em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; margin-bottom: .6em; }
th, td { border: 1px solid #888; padding: 3px 6px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eee; font-weight: 600; }
table.facts th, table.summary th, table.details th { width: 28%; }
table.elements th:first-child { width: 18%; }
table.elements td.source { width: 18%; }
table.events td.num, table.hashes td.num { width: 4em; }
table.events tr > :first-child { width: 4em; }
table.events tr > :nth-child(2) { width: 13em; }
table.events tr > :nth-child(3) { width: 8em; }
table.hashes tr > :first-child { width: 2.5em; }
table.hashes tr > :nth-child(3) { width: 13em; }
td.hash, code { font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", monospace;
  font-size: 8.5pt; }
td.time { white-space: nowrap; }
ul.fields { margin: 0; padding-left: 1.1em; }
.note { color: #444; font-size: 8.5pt; }
.missing { color: #a00; font-weight: 600; }
.mark { border: 2px solid #a00; color: #a00; font-weight: 700; padding: 0 .3em; }
.banner { border: 3px solid #a00; color: #a00; font-weight: 700; padding: .4em .6em;
  margin: 0 0 .6em; }
section.case { break-before: page; }
article.clip { break-inside: avoid-page; margin-top: 1em; }
table.elements, table.summary, .signatures { break-inside: avoid; }
ol.verify li { margin-bottom: .3em; }
.signatures td { height: 2.6em; }
@media screen { body { margin: 1.5em auto; padding: 0 1em; } }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'"


def _verify_steps(w: Words) -> str:
    if w.language == "en":
        steps = [
            "Get the station's public key (or an anchor) from outside this package: from the "
            "station's published key or from central storage. Compare its fingerprint with "
            "the one above.",
            "In this folder run <code>evidock verify-package . --pubkey STATION_KEY.pem</code> "
            "(or <code>--anchor ANCHOR_FILE</code>). It checks every file against its signed "
            "ledger leaf and every leaf against the signed checkpoint; exit 0 means proven.",
            "Without evidock, check every file's hash: <code>sha256sum -c SHA256SUMS</code> "
            "and <code>b3sum -c B3SUMS</code> print <code>OK</code> per file.",
            "One clip alone: <code>sha256sum clips/FILE</code> (or <code>b3sum</code>) must "
            "print the SHA-256 (BLAKE3) shown for it in this report.",
            "Without a key from outside the package, these checks prove only that the package "
            "is consistent with itself.",
        ]
    else:
        steps = [
            "从本包以外取得采集站公钥（或锚点）：采集站公布的公钥，或中心存储中的锚点；"
            "核对其指纹与上表一致。",
            "在本目录运行 <code>evidock verify-package . --pubkey 站点公钥.pem</code>"
            "（或 <code>--anchor 锚点文件</code>）：逐一核对每个文件与其签名账本记录、"
            "每条记录与签名检查点；退出码 0 即证明完整。",
            "不使用 evidock 时，核对全部文件哈希：<code>sha256sum -c SHA256SUMS</code> 与 "
            "<code>b3sum -c B3SUMS</code>，每个文件应显示 <code>OK</code>。",
            "单独核对一个记录：<code>sha256sum clips/文件名</code>（或 <code>b3sum</code>）"
            "输出的值须与本报告所列 SHA-256（BLAKE3）相同。",
            "若无来自本包以外的公钥，上述校验只证明本包内部一致。",
        ]
    items = "".join(f"<li>{step}</li>" for step in steps)
    return f'<h2>{escape(w("verify"))}</h2><ol class="verify">{items}</ol>'


def _signatures(w: Words, facts: ExportFacts) -> str:
    head = "".join(f"<th>{escape(w(k))}</th>" for k in ("name", "signature", "date"))
    rows = "".join(
        f"<tr><th>{escape(w(role))}</th><td>{name}</td><td></td><td></td></tr>"
        for role, name in (("operator", text(facts.who)), ("auditor", ""))
    )
    return (
        f'<div class="signatures"><h2>{escape(w("signatures"))}</h2>'
        f"<table><tr><th></th>{head}</tr>{rows}</table></div>"
    )


def _front(station: ReportStation, facts: ExportFacts, w: Words, zone: tzinfo) -> str:
    exported = parse_time(facts.exported_at, zone)
    at = show_time(exported, zone) if exported else facts.exported_at
    station_rows = [
        row(w("station_name"), text(station.name), w, required=False),
        row(w("station_place"), text(station.place), w, required=False),
        row(w("station_id"), text(station.id), w),
        row(
            w("time_zone"),
            text(zone_label(zone, exported)) if exported else None,
            w,
            required=False,
        ),
    ]
    export_rows = [
        row(w("exported_at"), text(at), w),
        row(w("exported_by"), text(facts.who), w),
        row(w("purpose"), text(facts.purpose), w),
        row(w("checkpoint"), text(w("checkpoint_value", size=facts.checkpoint_size)), w),
        row(w("key"), f"<code>{text(facts.key_text)}</code>", w),
        row(w("fingerprint"), f"<code>{text(facts.fingerprint)}</code>", w),
        row(w("key_source"), text(w("key_source_value")), w),
    ]
    return (
        f"<header><h1>{escape(w('title'))}</h1>"
        f'<h2>{escape(w("station"))}</h2><table class="facts">{"".join(station_rows)}</table>'
        f'<h2>{escape(w("export"))}</h2><table class="facts">{"".join(export_rows)}</table>'
        f'{_verify_steps(w)}<p class="note">{escape(w("pages_note"))}</p></header>'
    )


def _banner(cases: Sequence[CaseCustody], w: Words) -> str:
    """First-page notice of privacy and secret records, strictest first."""
    levels = [clip.sensitivity for case in cases for clip in case.clips]
    return "".join(
        f'<p class="banner {level}">{escape(w("banner_" + level, n=levels.count(level)))}</p>'
        for level in ("secret", "privacy")
        if level in levels
    )


def render_custody(station: ReportStation, facts: ExportFacts, cases: Sequence[CaseCustody]) -> str:
    """The whole report as one HTML page, in ``station.language``."""
    w = words(station.language)
    zone = station_zone(station.time_zone)
    title = w("title") + "".join(f" {case.case_number}" for case in cases)
    sections = "".join(case_section(case, w, zone) for case in cases)
    return (
        f'<!DOCTYPE html><html lang="{w.language}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head><body>"
        f"{_banner(cases, w)}{_front(station, facts, w, zone)}{sections}"
        f"{_signatures(w, facts)}</body></html>\n"
    )
