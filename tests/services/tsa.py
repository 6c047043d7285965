"""A real RFC 3161 time-stamping authority for tests: ``openssl ts -reply`` behind a small
HTTP server thread on 127.0.0.1.

The fixture makes its own CA and a TSA certificate (extendedKeyUsage timeStamping,
critical, as RFC 3161 requires); each POSTed ``application/timestamp-query`` is answered
by running ``openssl ts -reply`` on it. ``stop()`` closes the port (a TSA that is down:
connections are refused); ``start()`` opens the same port again.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.ports import LOOPBACK, free_port, run

POLICY = "1.2.3.4.1"


def make_tsa_certificates(folder: Path, name: str = "evidock test TSA") -> tuple[Path, Path, Path]:
    """A CA, and a TSA key and certificate signed by it, in ``folder``.

    Returns (ca.pem, tsa.pem, tsa.key).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "tsa.key", folder / "tsa.csr", folder / "tsa.pem"
    what = "test TSA certificates"
    run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
         "-subj", f"/CN={name} CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        what=what,
    )  # fmt: skip
    run(
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}"],
        what=what,
    )  # fmt: skip
    extensions = folder / "tsa.ext"
    extensions.write_text(
        "basicConstraints = CA:FALSE\n"
        "keyUsage = critical,digitalSignature,nonRepudiation\n"
        "extendedKeyUsage = critical,timeStamping\n"
    )
    run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions)],
        what=what,
    )  # fmt: skip
    return ca, cert, key


class TestTSA:
    """``openssl ts -reply`` answering on http://127.0.0.1:<port>/tsr."""

    __test__ = False  # not a test class

    def __init__(self, folder: Path, name: str = "evidock test TSA") -> None:
        self.folder = folder
        self.ca, self.cert, self.key = make_tsa_certificates(folder, name)
        self.config = folder / "tsa.cnf"
        (folder / "serial").write_text("01\n")
        self.config.write_text(
            "[tsa]\ndefault_tsa = tsa_config\n\n[tsa_config]\n"
            f"dir = {folder}\nserial = $dir/serial\ncrypto_device = builtin\n"
            f"signer_cert = {self.cert}\ncerts = {self.ca}\nsigner_key = {self.key}\n"
            f"signer_digest = sha256\ndefault_policy = {POLICY}\n"
            "other_policies = 1.2.3.4.2\ndigests = sha256, sha384, sha512\n"
            "accuracy = secs:1\nordering = no\ntsa_name = yes\n"
            "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n"
        )
        self.port = free_port()
        self.requests = 0
        # "ok"; "garbage": answers 200 with bytes that are no token; "busy": HTTP 503
        self.mode = "ok"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/tsr"

    def reply(self, query: bytes) -> bytes:
        """The DER TimeStampResp ``openssl ts -reply`` gives for ``query``."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.folder) as work:
            request, response = Path(work) / "req.tsq", Path(work) / "resp.tsr"
            request.write_bytes(query)
            run(
                ["openssl", "ts", "-reply", "-config", str(self.config),
                 "-queryfile", str(request), "-out", str(response)],
                what="openssl ts -reply",
            )  # fmt: skip
            self.requests += 1
            return response.read_bytes()

    def start(self) -> None:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                query = self.rfile.read(length)
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415)
                    return
                if tsa.mode == "busy":
                    self.send_error(503)
                    return
                try:
                    answer = tsa.reply(query) if tsa.mode == "ok" else b"not a token"
                except Exception:
                    self.send_error(400)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="test-tsa", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def openssl_verify(data: Path, token: Path, ca: Path) -> subprocess.CompletedProcess[bytes]:
    """``openssl ts -verify -data DATA -in TOKEN.tsr -CAfile CA``, as an auditor runs it."""
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(data), "-in", str(token), "-CAfile", str(ca)],
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestTSA]:
    """A running test TSA (import this fixture into a test module)."""
    service = TestTSA(tmp_path_factory.mktemp("tsa"))
    service.start()
    try:
        yield service
    finally:
        service.stop()
