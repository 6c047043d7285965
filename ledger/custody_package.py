"""The custody report inside an evidence package: custody.html, and custody.pdf when
asked for, written before the package's sums so that both are in SHA256SUMS and B3SUMS
(``verify-package`` then checks them like any other file)."""

from __future__ import annotations

from pathlib import Path

from ledger.custody import render_custody
from ledger.custody_format import station_zone
from ledger.custody_model import CaseCustody, ClipCustody, ExportFacts, ReportStation
from ledger.custody_pdf import HOW_TO_GET_IT, PdfError, print_pdf
from ledger.custody_text import words
from ledger.elements import clip_elements
from ledger.leaf import Leaf


def write_report(
    out: Path,
    report: tuple[ReportStation, bool],
    facts: ExportFacts,
    case_number: str,
    links: dict[str, Leaf],
    ingested: dict[str, Leaf],
    files: dict[str, str],
    events: dict[str, list[Leaf]],
    exported: Leaf,
    levels: dict[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """custody.html (and custody.pdf when asked for): written before the sums, so both
    are in SHA256SUMS and B3SUMS. Returns the PDF's name, or why there is none."""
    station, want_pdf = report
    zone = station_zone(station.time_zone)
    verified = words(station.language)("verified", size=facts.checkpoint_size)
    clips = [
        ClipCustody(
            c,
            files[c],
            ingested[c],
            clip_elements(
                events[c], c, case_number, zone=zone, station_place=station.place, link=links[c]
            ),
            events[c],
            verified,
            (levels or {}).get(c, "normal"),
        )
        for c in links
    ]
    case = CaseCustody(case_number, clips, (exported,))
    html = out / "custody.html"
    html.write_text(render_custody(station, facts, [case]), "utf-8")
    if not want_pdf:
        return None, None
    try:
        print_pdf(html, out / "custody.pdf")
    except PdfError as exc:
        return None, f"no custody.pdf ({exc}): {HOW_TO_GET_IT}"
    return "custody.pdf", None
