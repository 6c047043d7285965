"""The chain-of-custody report of an evidence package, in Chinese and English.

Each clip gets the five record elements the enforcement-recording rules ask for (case
number, capture time, capture place, collector, object of proof), its recorder and
station, every custody event the ledger holds for it, and the verification result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ledger.leaf import Leaf

EVENT_NAMES: dict[str, tuple[str, str]] = {
    "docking.opened": ("接入采集站", "docked"),
    "docking.closed": ("采集结束", "docking closed"),
    "clip.ingested": ("采集入库", "ingested"),
    "clip.redocked": ("再次接入", "seen again"),
    "case.linked": ("关联案件", "linked to case"),
    "case.unlinked": ("解除关联", "unlinked from case"),
    "clip.uploaded": ("上传中心存储", "uploaded"),
    "clip.accessed": ("调阅", "accessed"),
    "case.exported": ("导出", "exported"),
    "clip.purged": ("本地清除", "purged locally"),
}


@dataclass(frozen=True)
class ClipCustody:
    clip_id: str
    file_name: str
    case_number: str
    ingested: Leaf
    link: Leaf | None
    session: Leaf | None
    events: Sequence[Leaf]
    verification: str


def _label(zh: str, en: str) -> str:
    return f'<span lang="zh-CN">{escape(zh)}</span> / <span lang="en">{escape(en)}</span>'


def _text(value: Any) -> str:
    return "—" if value in (None, "") else escape(str(value))


def _details(leaf: Leaf) -> str:
    body = leaf.body
    keys = (
        "who",
        "purpose",
        "action",
        "via",
        "target",
        "location",
        "officer",
        "reason",
        "case_number",
        "object_of_proof",
    )
    parts = [f"{k}: {body[k]}" for k in keys if body.get(k) not in (None, "")]
    return escape("; ".join(parts))


def _clip_section(clip: ClipCustody, station: str) -> str:
    body = clip.ingested.body
    media: dict[str, Any] = body["media"] if isinstance(body.get("media"), dict) else {}
    link = clip.link.body if clip.link is not None else {}
    session = clip.session.body if clip.session is not None else {}
    rows = [
        (("案件编号", "Case number"), clip.case_number),
        (("证据文件", "Evidence file"), f"clips/{clip.file_name}"),
        (("采集时间", "Capture time"), media.get("creation_time") or body.get("recorder_time")),
        (("记录仪时钟", "Recorder clock"), body.get("recorder_time")),
        (("入库时间 (UTC)", "Ingested at (UTC)"), clip.ingested.at),
        (("采集地点", "Capture place"), media.get("location")),
        (("采集人", "Collector (officer)"), link.get("officer") or session.get("officer")),
        (("证明对象", "Object of proof"), link.get("object_of_proof")),
        (("执法记录仪编号", "Recorder serial"), body.get("recorder")),
        (("采集站", "Station"), station),
        (("SHA-256", "SHA-256"), body.get("sha256")),
        (("BLAKE3", "BLAKE3"), body.get("blake3")),
        (("大小（字节）", "Size (bytes)"), body.get("size")),
        (("校验结果", "Verification result"), clip.verification),
    ]
    table = "".join(f"<tr><th>{_label(*label)}</th><td>{_text(v)}</td></tr>" for label, v in rows)
    events = "".join(
        f"<tr><td>{leaf.index}</td><td>{escape(leaf.at)}</td>"
        f"<td>{_label(*EVENT_NAMES.get(leaf.kind, (leaf.kind, leaf.kind)))}</td>"
        f"<td>{_details(leaf)}</td></tr>"
        for leaf in clip.events
    )
    return (
        f"<section><h2>{_label('视音频记录', 'Record')} {escape(clip.clip_id)}</h2>"
        f"<table>{table}</table><h3>{_label('保管链', 'Custody events')}</h3>"
        f"<table><tr><th>{_label('账本序号', 'Leaf')}</th><th>{_label('时间 (UTC)', 'Time (UTC)')}"
        f"</th><th>{_label('事件', 'Event')}</th><th>{_label('详情', 'Details')}</th></tr>"
        f"{events}</table></section>"
    )


def render_custody(
    case_number: str,
    station: str,
    exported_at: str,
    who: str,
    purpose: str,
    checkpoint_size: int,
    key_text: str,
    fingerprint: str,
    clips: Sequence[ClipCustody],
) -> str:
    sections = "".join(_clip_section(clip, station) for clip in clips)
    summary = [
        (("案件编号", "Case number"), case_number),
        (("导出时间", "Exported at"), exported_at),
        (("导出人", "Exported by"), who),
        (("用途", "Purpose"), purpose),
        (("记录数", "Records"), len(clips)),
        (("签名检查点", "Signed checkpoint"), f"tree size {checkpoint_size} (checkpoint.txt)"),
        (("站点公钥", "Station key"), key_text),
        (("公钥指纹 (SHA-256)", "Key fingerprint (SHA-256)"), fingerprint),
        (
            ("公钥来源", "Key source"),
            "随本包提供，未经固定：请与采集站公布的指纹核对，或以 --pubkey / --anchor 校验 / "
            "bundled in this package, not pinned: compare the fingerprint with the one the "
            "station published, or verify with --pubkey / --anchor",
        ),
    ]
    rows = "".join(f"<tr><th>{_label(*label)}</th><td>{_text(v)}</td></tr>" for label, v in summary)
    how = (
        "在本目录运行 <code>sha256sum -c SHA256SUMS</code>、<code>b3sum -c B3SUMS</code> 与 "
        "<code>evidock verify-package . --pubkey 站点公钥</code>（或 <code>--anchor</code> "
        "中心存储的锚点）校验；未固定公钥时，校验只证明本包内部一致。 / Check with "
        "<code>sha256sum -c SHA256SUMS</code>, <code>b3sum -c B3SUMS</code> and "
        "<code>evidock verify-package . --pubkey STATION_KEY</code> (or <code>--anchor</code> "
        "with anchors from central storage) run in this folder; without a pinned key it "
        "proves internal consistency only."
    )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>保管链报告 Chain of custody {escape(case_number)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:1em}th,td{border:1px solid #999;padding:4px 8px;text-align:left;"
        "vertical-align:top}th{background:#eee}</style></head><body>"
        f"<h1>{_label('证据保管链报告', 'Chain-of-custody report')}</h1>"
        f"<table>{rows}</table><p>{how}</p>{sections}</body></html>\n"
    )
