"""``evidock stats --png FILE``: the statistics as a chart, for people who would rather look.

Drawn as SVG (plain text, every name escaped) and turned into a PNG by headless Chromium,
the browser the station already uses for the custody report's PDF: no plotting library.
Chromium runs with a throwaway profile, no sandbox (the station runs as root) and no
network services, on our own page whose Content Security Policy forbids scripts and every
fetch, in its own process group that is ended with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from html import escape
from pathlib import Path
from typing import Final

from agent.errors import EvidockError
from agent.stats import Stats, hours_text

CHROMIUM: Final = "/usr/bin/chromium"
TIMEOUT_S: Final = 120.0
WIDTH: Final = 1000
ROW_H: Final = 54
TOP: Final = 96
LABEL_W: Final = 260
BAR_W: Final = WIDTH - LABEL_W - 140


class ChartError(EvidockError):
    """The chart cannot be drawn (no Chromium, an unusable output path)."""


def chart_svg(stats: Stats, title: str) -> tuple[str, int]:
    """The SVG text and its height."""
    rows = stats.rows
    height = TOP + max(1, len(rows)) * ROW_H + 40
    most = max((r.hours for r in rows), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Noto Sans CJK SC, sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="20" y="34" font-size="22" fill="#111">{escape(title)}</text>',
        '<rect x="20" y="52" width="14" height="14" fill="#2f6db5"/>'
        '<text x="40" y="64" font-size="14" fill="#333">hours recorded</text>'
        '<rect x="180" y="52" width="14" height="14" fill="#3a9a5b"/>'
        '<text x="200" y="64" font-size="14" fill="#333">linked to a case</text>'
        '<rect x="350" y="52" width="14" height="14" fill="#d08a1e"/>'
        '<text x="370" y="64" font-size="14" fill="#333">all five elements</text>',
    ]
    if not rows:
        parts.append(f'<text x="20" y="{TOP + 24}" font-size="16">no clips in this range</text>')
    for n, r in enumerate(rows):
        y = TOP + n * ROW_H
        label = r.group if r.period == "all" else f"{r.group}  {r.period}"
        linked = r.share(r.linked) or 0.0
        complete = r.share(r.complete) or 0.0
        parts += [
            f'<rect x="0" y="{y - 4}" width="{WIDTH}" height="{ROW_H - 4}" '
            f'fill="{"#f4f6f9" if n % 2 else "#ffffff"}"/>',
            f'<text x="20" y="{y + 20}" font-size="15" fill="#111">{escape(label[:40])}</text>',
            f'<text x="20" y="{y + 38}" font-size="12" fill="#555">{r.clips} clip(s), '
            f"{r.gaps} gap(s)</text>",
            f'<rect x="{LABEL_W}" y="{y}" width="{max(2.0, BAR_W * r.hours / most):.1f}" '
            f'height="14" fill="#2f6db5"/>',
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 12}" font-size="12">'
            f"{hours_text(r.hours)}</text>",
            f'<rect x="{LABEL_W}" y="{y + 17}" width="{max(2.0, BAR_W * linked):.1f}" '
            f'height="12" fill="#3a9a5b"/>',
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 27}" font-size="12">{linked:.0%}</text>',
            f'<rect x="{LABEL_W}" y="{y + 32}" width="{max(2.0, BAR_W * complete):.1f}" '
            f'height="12" fill="#d08a1e"/>',
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 42}" font-size="12">{complete:.0%}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts), height


def _page(svg: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        "<style>html,body{margin:0;padding:0;background:#fff}</style></head>"
        f"<body>{svg}</body></html>"
    )


def find_chromium() -> str | None:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def write_png(stats: Stats, out: Path, title: str) -> Path:
    """Draw the chart into ``out`` (a new or replaced PNG file)."""
    chromium = find_chromium()
    if chromium is None:
        raise ChartError(
            "--png needs Chromium to draw the chart: apt-get install chromium fonts-noto-cjk "
            "(or use --csv / --json)"
        )
    if out.is_dir() or not out.absolute().parent.is_dir():
        raise ChartError(f"--png {out}: give a file name in an existing folder")
    svg, height = chart_svg(stats, title)
    with tempfile.TemporaryDirectory(prefix="evidock-chart-") as tmp:
        work = Path(tmp)
        page = work / "chart.html"
        page.write_text(_page(svg), "utf-8")
        shot = work / "chart.png"
        _run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={work / 'profile'}",
                "--hide-scrollbars",
                f"--window-size={WIDTH},{height}",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            work,
        )
        if not shot.is_file() or shot.stat().st_size == 0:
            raise ChartError("Chromium drew no chart; run again, or use --csv / --json")
        try:
            shutil.copyfile(shot, out)
        except OSError as exc:
            raise ChartError(f"--png {out}: {exc.strerror}: check the path") from None
    return out


def _run(args: list[str], home: Path) -> None:
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
    )
    try:
        _out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise ChartError("Chromium did not draw the chart in time; use --csv / --json") from None
    finally:
        # Its helpers may outlive the main process: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ChartError(f"Chromium could not draw the chart ({last[0][:200]})")
