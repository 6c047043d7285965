"""The API served for real: `evidock run` with `[api] enabled = true` on a free loopback
port answers /healthz and an authenticated status, and stops with the daemon; the server
in process speaks TLS with the station's certificate."""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from station_cli import REPO, run_cli

from agent.api import ApiServer, ApiStartError
from agent.station import Station, embedded_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        return json.loads(answer.read())


def _wait_for(url: str, proc: subprocess.Popen[str]) -> Any:
    for _ in range(600):  # bounded: 60 s at most
        assert proc.poll() is None, proc.communicate()
        try:
            return _get(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_evidock_run_serves_the_api_and_stops_it(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "station.toml"
    (tmp_path / "mount").mkdir()
    config.write_text(
        f'[station]\nid = "api-run-01"\n[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f"[api]\nenabled = true\nport = {port}\n",
        "utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(f"{base}/healthz", proc) == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"{base}/api/v1/status")
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["code"] == "unauthorized"
        made = run_cli("token", "create", "--config", config, "--role", "admin", "--owner",
                       "IT1", check=0)  # fmt: skip
        status = _get(f"{base}/api/v1/status", made.stdout.strip())
        assert status["station"]["id"] == "api-run-01"
        cli = json.loads(run_cli("status", "--config", config, "--json", check=0).stdout)
        assert status["ledger"] == cli["ledger"] and status["sessions"] == cli["sessions"]
        assert status["queue"]["depth"] == cli["queue"]["depth"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"API: serving http://127.0.0.1:{port}" in err and "API: stopped" in err
    assert "Traceback" not in err
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "api-cert.pem", folder / "api-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def test_the_server_speaks_tls_and_says_when_it_cannot_listen(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    section = {"enabled": True, "port": 0, "tls_cert_file": str(cert), "tls_key_file": str(key)}
    station = Station.open(embedded_config(tmp_path / "d", api=section))
    server = ApiServer(station).start()
    try:
        assert server.url.startswith("https://127.0.0.1:") and server.port > 0
        trusted = ssl.create_default_context(cafile=str(cert))
        assert _get(f"{server.url}/healthz", context=trusted) == {"status": "ok"}
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            _get(f"http://127.0.0.1:{server.port}/healthz")
        taken = {"enabled": True, "port": server.port}
        busy = Station.open(embedded_config(tmp_path / "d", api=taken))
        with pytest.raises(ApiStartError, match="cannot listen"):
            ApiServer(busy).start()
        busy.close()
    finally:
        server.stop()
        station.close()
