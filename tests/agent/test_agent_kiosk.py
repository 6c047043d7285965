"""The officer kiosk (/kiosk) in a real headless Chromium, driven over the DevTools
protocol, during a live docking: a real station and daemon, the API on a free loopback
port, a simulated recorder read through a slow USB link so the copy takes seconds.

The kiosk shows the slot's progress advancing and "可以取走" once the footage is safe,
refuses a malformed case number on screen with the expected form, tags the session with
a good one (a case.linked leaf), switches to English with one touch, and the screenshots
of both languages are kept (paths printed; copies in /work/notes when that folder exists).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser import needs_chromium, read_png
from station_cli import REPO

from agent.api import ApiServer
from agent.api.routes_pages import KIOSK
from agent.daemon import Daemon
from agent.station import Station, embedded_config
from agent.tokens import TokenStore
from agent.verification import verify_data_dir
from config.case_numbers import fold_case_number
from docking import Docked
from docking.simulated import generate_volume
from docking.usb_link import UsbLink, link_opener
from hashing import open_source
from ledger.custody_pdf import CHROMIUM, chromium_args

NOTES = Path("/work/notes")
COPY_SECONDS = 8.0  # how long the slow link takes for the whole recorder


# --- a browser on the DevTools protocol (--remote-debugging-pipe: fd 3 in, fd 4 out) ---


@dataclass
class Chromium:
    """Headless Chromium as the station runs it (ledger.custody_pdf's flags), one page,
    commands and answers as NUL-terminated JSON on two pipes."""

    home: Path
    proc: subprocess.Popen[bytes] | None = None
    session: str = ""
    errors: list[str] = field(default_factory=list)
    _next: int = 0
    _answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    _ready: threading.Condition = field(default_factory=threading.Condition)
    _in: int = -1
    _out: int = -1

    def start(self) -> Chromium:
        to_browser, from_browser = os.pipe(), os.pipe()
        # Its ends moved above 9 first, so placing them at 3 and 4 clobbers nothing.
        into = fcntl.fcntl(to_browser[0], fcntl.F_DUPFD_CLOEXEC, 10)
        outof = fcntl.fcntl(from_browser[1], fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser[0])
        os.close(from_browser[1])

        def place() -> None:
            os.dup2(into, 3)
            os.dup2(outof, 4)

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "LANG": "C.UTF-8",
        }
        self.proc = subprocess.Popen(
            [
                *chromium_args(CHROMIUM, self.home / "profile"),
                "--remote-debugging-pipe",
                "--hide-scrollbars",
                "--window-size=1280,800",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            pass_fds=(3, 4),
            preexec_fn=place,
            start_new_session=True,
        )
        os.close(into)
        os.close(outof)
        self._in, self._out = to_browser[1], from_browser[0]
        threading.Thread(target=self._read, name="cdp-reader", daemon=True).start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for method in ("Page.enable", "Runtime.enable"):
            self.call(method)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._out, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._ready:
                    self._answers[-1] = {"error": {"message": "the browser went away"}}
                    self._ready.notify_all()
                return
            pending += chunk
            while b"\0" in pending:
                raw, pending = pending.split(b"\0", 1)
                message = json.loads(raw)
                if message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    self.errors.append(str(details.get("exception", {}).get("description")))
                if "id" in message:
                    with self._ready:
                        self._answers[message["id"]] = message
                        self._ready.notify_all()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        with self._ready:
            answered = self._ready.wait_for(
                lambda: ident in self._answers or -1 in self._answers, timeout=60
            )
            assert answered, f"Chromium did not answer {method}"
            answer = self._answers.pop(ident, None) or self._answers[-1]
        assert "error" not in answer, f"{method}: {answer['error']}"
        return dict(answer["result"])

    def js(self, expression: str) -> Any:
        found = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def until(self, expression: str, what: str, seconds: float = 60) -> Any:
        """The value of ``expression`` once it is truthy (bounded, polled every 0.1 s)."""
        pause = threading.Event()
        for _ in range(int(seconds * 10)):
            value = self.js(expression)
            if value:
                return value
            pause.wait(0.1)
        raise AssertionError(f"the kiosk never showed {what}; page: {self.text()[:1500]}")

    def text(self) -> str:
        return str(self.js("document.body.innerText"))

    def tap(self, selector: str) -> None:
        """A touch on the middle of the first element ``selector`` finds, as a finger."""
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)  # fmt: skip

    def tap_key(self, label: str) -> None:
        """A key of the on-screen keyboard, by what it shows."""
        index = self.js(
            "[...document.querySelectorAll('#keyboard button')]"
            f".findIndex(b => b.textContent === {json.dumps(label)})"
        )
        assert index >= 0, f"no key {label!r} on the on-screen keyboard"
        self.tap(f"#keyboard button:nth-child({index + 1})")

    def screenshot(self, png: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png")
        png.write_bytes(base64.b64decode(shot["data"]))
        return png

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        for fd in (self._in, self._out):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


@contextlib.contextmanager
def chromium() -> Iterator[Chromium]:
    with tempfile.TemporaryDirectory(prefix="evidock-kiosk-") as home:
        browser = Chromium(Path(home))
        try:
            yield browser.start()
        finally:
            browser.stop()


# --- a station with its daemon and API -------------------------------------------------


@dataclass
class LiveStation:
    station: Station
    daemon: Daemon
    api: ApiServer
    token: str
    thread: threading.Thread

    def leaves(self, kind: str) -> list[dict[str, Any]]:
        conn = self.station.connect()
        try:
            led = self.station.ledger(conn)
            return [leaf.body for leaf in led.leaves() if leaf.kind == kind]
        finally:
            conn.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveStation]:
    mount_root = tmp_path / "media"
    mount_root.mkdir()
    config = embedded_config(
        tmp_path / "data",
        api={"enabled": True, "port": 0},
        docking={"mount_root": str(mount_root), "slots": {"1-1.2": 2, "1-1.3": 3}},
        delivery={"central_dir": str(tmp_path / "central")},
    )
    station = Station.open(config)
    _token, secret = TokenStore(station.conn).create("clerk", "kiosk-1", by="it-07")
    daemon = Daemon(station)
    thread = threading.Thread(target=daemon.run_forever, name="daemon", daemon=True)
    thread.start()
    api = ApiServer(station, daemon).start()
    try:
        yield LiveStation(station, daemon, api, secret, thread)
    finally:
        api.stop()
        daemon.request_stop()
        thread.join(60)
        station.close()


def _slow_recorder(live: LiveStation, root: Path) -> Path:
    """A recorder whose files come over a link slow enough that the copy takes seconds."""
    volume = root / "REC7001"
    generate_volume(volume, serial="REC7001", clips=5, seconds=2, officer="004711")
    total = sum(p.stat().st_size for p in volume.rglob("*") if p.is_file())
    link = UsbLink(total / COPY_SECONDS, latency_s=0.0, jitter=0.0)
    live.station.source_opener = link_opener({volume: link}, open_source)
    return volume


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _keep(png: Path, name: str) -> Path:
    print(f"kiosk screenshot: {png}")
    if NOTES.is_dir():
        shutil.copyfile(png, NOTES / name)
        print(f"kiosk screenshot: {NOTES / name}")
    return png


SLOT3 = "#slots .slot[data-session]"


@needs_chromium
def test_the_kiosk_follows_a_live_docking_and_tags_a_case(
    live: LiveStation, tmp_path: Path
) -> None:
    volume = _slow_recorder(live, tmp_path / "recorders")
    with chromium() as page:
        # The token handed over once in the fragment, then kept by the browser.
        page.call("Page.navigate", url=f"{live.api.url}/kiosk#token={live.token}")
        page.until("document.querySelectorAll('#slots .slot').length === 2", "two free slots")
        assert "空闲" in page.text() and page.js("location.hash") == ""
        assert page.js("document.documentElement.lang") == "zh-CN"

        live.daemon.on_event(Docked(volume, slot="3"))
        # Progress advances on screen while the recorder is copied: several distinct
        # shares of files done are seen in the copying phase, each above the last.
        seen: list[int] = []
        pause = threading.Event()
        for _ in range(600):
            shown = page.js(
                f"(() => {{ const s = document.querySelector({json.dumps(SLOT3)});"
                " return s ? [s.dataset.phase, s.querySelector('.progress').textContent,"
                " s.querySelector('.bar > div').style.width] : null; })()"
            )
            if shown and shown[0] == "copying":
                width = int(shown[2].rstrip("%") or 0)
                if not seen or width != seen[-1]:
                    seen.append(width)
            if shown and shown[0] != "copying" and seen:
                break
            pause.wait(0.1)
        assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] < 100, seen
        assert "004711" in page.text() and "槽位 3" in page.text()

        # Safe: the footage is delivered centrally; the kiosk says so in big green.
        page.until(f"!!document.querySelector('{SLOT3} .safe-mark')", "可以取走", 90)
        mark = page.js(f"document.querySelector('{SLOT3} .safe-mark').textContent")
        assert mark == "可以取走"
        assert live.leaves("clip.uploaded"), "safe was shown before delivery"

        # Tagging: a malformed number is refused on screen with the expected form.
        page.tap(f"{SLOT3} .tag-button")
        page.until("!document.getElementById('tag').hidden", "the tagging sheet")
        for key in ["1", "2", "号"]:
            page.tap_key(key)
        assert page.js("document.getElementById('case').value") == "12号"
        check = page.js("document.getElementById('case-check').textContent")
        assert check.startswith("格式不符") and "朝执罚〔2026〕12号" in check, check
        page.tap("#tag-save")
        refused = page.until(
            "!document.getElementById('tag-result').hidden &&"
            " document.getElementById('tag-result').textContent",
            "the refusal",
        )
        assert refused.startswith("已拒绝") and "朝执罚〔2026〕12号" in refused
        _keep(page.screenshot(tmp_path / "kiosk-zh-refused.png"), "kiosk-zh-refused.png")
        assert live.leaves("case.linked") == []

        # A good one, typed partly on the on-screen keys and partly freely, in another
        # form of the same number: the kiosk folds it as the station does.
        page.tap_key("清空")
        typed = "朝执罚（２０２６）"
        page.js(
            f"(() => {{ const i = document.getElementById('case'); i.value = {json.dumps(typed)};"
            " i.dispatchEvent(new Event('input')); })()"
        )
        for key in ["1", "2", "号"]:
            page.tap_key(key)
        folded = fold_case_number(typed + "12号")
        assert folded == "朝执罚〔2026〕12号"
        check = page.js("document.getElementById('case-check').textContent")
        assert check == f"格式正确：{folded}", check
        page.js("document.getElementById('proof').value = '现场执法过程'")
        page.tap("#tag-save")
        saved = page.until(
            "document.getElementById('tag-result').className.includes('good') &&"
            " document.getElementById('tag-result').textContent",
            "the saved link",
        )
        assert folded in saved, saved
        (linked,) = live.leaves("case.linked")
        assert linked["case_number"] == folded and linked.get("object_of_proof") == "现场执法过程"
        page.tap("#tag-cancel")
        zh = _keep(page.screenshot(tmp_path / "kiosk-zh.png"), "kiosk-zh.png")

        # English, one touch away.
        page.tap("#lang")
        page.until("document.documentElement.lang === 'en'", "English")
        assert "Safe to take" in page.text() and "Slot 3" in page.text()
        assert "可以取走" not in page.text()
        en = _keep(page.screenshot(tmp_path / "kiosk-en.png"), "kiosk-en.png")
        assert page.errors == [], page.errors

    for png in (zh, en):
        image = read_png(png)
        assert (image.width, image.height) == (1280, 800)
        # The big green mark is there, drawn in the safe colour.
        green = sum(
            1
            for y in range(0, image.height, 4)
            for x in range(0, image.width, 4)
            if image.pixel(x, y)[:3] == (0x0A, 0x7D, 0x2C)
        )
        assert green > 500, f"{png}: no green 'safe to take' mark"
    live.api.stop()
    live.daemon.request_stop()
    live.thread.join(60)
    assert verify_data_dir(live.station.data_dir).ok


def test_the_pages_need_no_token_and_the_rule_does(live: LiveStation) -> None:
    base = live.api.url
    status, headers, body = _get(f"{base}/kiosk")
    assert status == 200 and b'<html lang="zh-CN"' in body
    assert "script-src 'self'" in headers["content-security-policy"]
    for name, kind in (("kiosk.js", "text/javascript"), ("kiosk.css", "text/css")):
        status, headers, body = _get(f"{base}/kiosk/{name}")
        assert status == 200 and headers["content-type"].startswith(kind) and body
    status, _, body = _get(f"{base}/kiosk/..%2Fapp.py")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, _, body = _get(f"{base}/kiosk/index.html.bak")
    assert status == 404

    status, _, body = _get(f"{base}/api/v1/cases/rule")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    status, _, body = _get(f"{base}/api/v1/cases/rule", live.token)
    rule = json.loads(body)
    assert status == 200, rule
    assert rule["example"] == "朝执罚〔2026〕12号" and rule["pattern"].endswith("〔{year}〕{seq}号")
    # The regex the page compiles is the station's own rule in JavaScript's syntax.
    python = re.compile(rule["regex"].replace("(?<", "(?P<"))
    assert python.fullmatch("朝执罚〔2026〕12号") and not python.fullmatch("12号")
    assert "(?P<" not in rule["regex"]
    assert {"朝", "执", "罚"} <= set(rule["keys"]) and len(rule["keys"]) <= 24


def test_an_english_station_opens_its_kiosk_in_english(tmp_path: Path) -> None:
    config = embedded_config(
        tmp_path / "data", api={"enabled": True, "port": 0}, station={"language": "en"}
    )
    station = Station.open(config)
    server = ApiServer(station).start()
    try:
        status, _, body = _get(f"{server.url}/kiosk")
        assert status == 200 and b'<html lang="en"' in body
    finally:
        server.stop()
        station.close()


def test_the_kiosk_files_are_package_data() -> None:
    """An installed copy serves the kiosk: pyproject ships agent.api and every file of
    static/kiosk (a wheel built without them would answer /kiosk with 404)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    setuptools = project["tool"]["setuptools"]
    assert "agent.api" in setuptools["packages"]
    globs = setuptools["package-data"]["agent.api"]
    shipped = {p for g in globs for p in (REPO / "agent" / "api").glob(g) if p.is_file()}
    assert {p.name for p in KIOSK.iterdir()} == {"index.html", "kiosk.js", "kiosk.css"}
    assert set(KIOSK.iterdir()) <= shipped
