"""The custody report as a PDF, printed by headless Chromium from ``custody.html``.

Chromium is optional: a station without it exports the HTML alone (and says how to get
the PDF). It runs with a fresh profile folder and home of its own, no sandbox (the
station runs as root, where Chromium's sandbox cannot start; the page it is given is
our own escaped HTML whose Content Security Policy forbids scripts and every fetch),
no network services, and a time limit; everything it started is ended with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

CHROMIUM: Final = "/usr/bin/chromium"
PRINT_TIMEOUT_S: Final = 120.0
HOW_TO_GET_IT: Final = (
    "install Chromium (apt-get install chromium fonts-noto-cjk) and export again for "
    "custody.pdf, or print custody.html from any browser (a PDF printed later is not in "
    "the package's SHA256SUMS)"
)


class PdfError(Exception):
    """Chromium is missing or could not print the report; the message says why."""


def find_chromium() -> str | None:
    """Debian's /usr/bin/chromium, else a ``chromium`` on PATH, else None."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def chromium_args(chromium: str, profile: Path) -> list[str]:
    """Headless Chromium with a throwaway profile, quiet on the network."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def run_chromium(chromium: str, args: Sequence[str], *, timeout: float = PRINT_TIMEOUT_S) -> None:
    """Run Chromium with ``args`` after the common flags; raise PdfError if it fails.

    Its own session (process group), so a timeout ends every process it started.
    """
    with tempfile.TemporaryDirectory(prefix="evidock-chromium-") as tmp:
        home = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "LANG": "C.UTF-8",
        }
        command = [*chromium_args(chromium, home / "profile"), *args]
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise PdfError(f"cannot start {chromium}: {exc.strerror}") from None
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise PdfError(f"{chromium} did not finish within {timeout:.0f} s") from None
        finally:
            _end_group(proc.pid)
        if proc.returncode != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise PdfError(f"{chromium} failed (exit {proc.returncode}): {last[0][:200]}")


def _end_group(pgid: int) -> None:
    """Helpers Chromium left behind in its own process group end with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def print_pdf(html: Path, pdf: Path, *, chromium: str | None = None) -> None:
    """Print ``html`` to ``pdf`` (A4, the page's own print CSS, no browser header or
    footer). ``pdf`` appears whole or not at all."""
    binary = chromium or find_chromium()
    if binary is None:
        raise PdfError("Chromium is not installed")
    partial = pdf.with_name(f".{pdf.name}.partial")
    try:
        run_chromium(
            binary,
            ["--no-pdf-header-footer", f"--print-to-pdf={partial}", html.absolute().as_uri()],
        )
        with partial.open("rb") as f:
            if f.read(5) != b"%PDF-":
                raise PdfError(f"{binary} wrote no PDF")
            os.fsync(f.fileno())
        os.replace(partial, pdf)
    except FileNotFoundError:
        raise PdfError(f"{binary} wrote no PDF") from None
    finally:
        partial.unlink(missing_ok=True)
