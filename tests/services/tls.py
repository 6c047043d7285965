"""A throwaway certificate authority (openssl) and a server certificate for loopback."""

from __future__ import annotations

from pathlib import Path

from services.ports import run


def make_server_certificates(folder: Path) -> Path:
    """CA and server certificate (SAN DNS:localhost, IP:127.0.0.1) in `folder`.

    Writes ca.crt, server.crt and server.key there; returns the CA certificate, which is
    what a client passes to trust the server.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    what = "test certificates"
    run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
         "-subj", "/CN=evidock test CA"],
        what=what,
    )  # fmt: skip
    run(
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"],
        what=what,
    )  # fmt: skip
    extensions = folder / "server.ext"
    extensions.write_text(
        "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage = serverAuth\n"
        "basicConstraints = CA:FALSE\n"
    )
    run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(extensions)],
        what=what,
    )  # fmt: skip
    return ca_crt
