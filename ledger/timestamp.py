"""Checking an RFC 3161 trusted timestamp (可信时间戳) offline.

A token is the DER ``TimeStampResp`` a time-stamping authority (TSA) answered, kept as
received (``<anchor name>.tsr``; ``openssl ts -verify -in`` reads the same file). It
holds when:

- the TSA granted it (PKIStatus granted);
- its messageImprint is SHA-256 of exactly the bytes it is said to cover (an anchor's
  text);
- the TSA's signature over the TSTInfo verifies with the TSA certificate (carried in the
  token, or given), and that certificate chains to a CA the checker trusts, at genTime,
  and is a time-stamping certificate (extendedKeyUsage timeStamping, critical);
- its nonce and policy are the ones asked for, when the checker knows them.

The parsing and the signature check are rfc3161-client's (trailofbits). Its DER reader
is strict, and some TSAs (``openssl ts -reply`` among them) send the certificate SET in
chain order rather than DER's sorted order; that SET is outside what the TSA signs, so
it is sorted here before the token is read (``der_sorted``), never in the stored token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from ledger.errors import LedgerError

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
TOKEN_SUFFIX = ".tsr"


class TimestampError(LedgerError):
    """A timestamp token that is malformed, not granted, or does not check."""


@dataclass(frozen=True)
class TokenCheck:
    """What a token that checks says."""

    gen_time: datetime
    tsa: str  # the signing certificate's subject (RFC 4514)
    serial: int
    policy: str
    imprint: str  # SHA-256 hex of the bytes it covers

    def gen_time_text(self) -> str:
        return self.gen_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_certificates(source: Path | bytes) -> list[x509.Certificate]:
    """Every PEM certificate of a file (or its bytes); TimestampError if there is none."""
    name = str(source) if isinstance(source, Path) else "the certificate text"
    try:
        data = source if isinstance(source, bytes) else source.read_bytes()
    except OSError as exc:
        raise TimestampError(f"cannot read the certificate file {name}: {exc.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TimestampError(f"{name} holds no PEM certificate; give the TSA's CA in PEM")
    return certs


def parse_token(token: bytes) -> TimeStampResponse:
    """The token's structure (TimestampError: not a TimeStampResp)."""
    try:
        return decode_timestamp_response(der_sorted(token))
    except (ValueError, IndexError) as exc:
        raise TimestampError(f"not an RFC 3161 timestamp response: {exc}") from None


def check_token(
    token: bytes,
    data: bytes,
    roots: Sequence[x509.Certificate],
    *,
    tsa_cert: x509.Certificate | None = None,
    policy: str | None = None,
    nonce: int | None = None,
) -> TokenCheck:
    """Check ``token`` over ``data`` against the trusted ``roots``; TimestampError if it
    does not hold (the message says which part)."""
    response = parse_token(token)
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA did not grant it (status {response.status})")
    info = response.tst_info
    if info.message_imprint.hash_algorithm != SHA256_OID:
        raise TimestampError("it covers a digest other than SHA-256")
    digest = hashlib.sha256(data).digest()
    if info.message_imprint.message != digest:
        raise TimestampError(
            f"it covers other bytes (SHA-256 {info.message_imprint.message.hex()}, "
            f"the anchor's is {digest.hex()})"
        )
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("its nonce is not the one sent: an answer to another request")
    if policy and info.policy.dotted_string != policy:
        raise TimestampError(f"its policy is {info.policy.dotted_string}, not {policy}")
    if not roots:
        raise TimestampError("no trusted TSA CA was given to check it against")
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if tsa_cert is not None:
        builder = builder.tsa_certificate(tsa_cert)
    try:
        builder.build().verify(response, digest)
    except (VerificationError, ValueError) as exc:  # ValueError: its PKCS#7 layer
        raise TimestampError(f"its signature does not check: {_why(exc)}") from None
    return TokenCheck(
        gen_time=_utc(info.gen_time),
        tsa=_signer(response, tsa_cert),
        serial=info.serial_number,
        policy=info.policy.dotted_string,
        imprint=digest.hex(),
    )


def _why(exc: Exception) -> str:
    # OpenSSL's error stack, as rfc3161-client passes it on, names the reason in data: "..."
    found = re.search(r'data: "([^"]+)"', str(exc))
    return found.group(1) if found else str(exc).splitlines()[0][:200]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _signer(response: TimeStampResponse, given: x509.Certificate | None) -> str:
    infos = list(response.signed_data.signer_infos)
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if (
            infos
            and cert.issuer == infos[0].issuer
            and cert.serial_number == infos[0].serial_number
        ):
            return cert.subject.rfc4514_string()
    return given.subject.rfc4514_string() if given is not None else "an unnamed TSA"


# --- DER: the certificate SET sorted -----------------------------------------------------


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the element at ``pos``."""
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not expected here")
    first = buf[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError("indefinite or oversized length")
        length = int.from_bytes(buf[start : start + count], "big")
        start += count
    end = start + length
    if end > len(buf):
        raise ValueError("an element runs past the end")
    return tag, start, end


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = _tlv(buf, pos)
        out.append((tag, pos, cstart, cend))
        pos = cend
    return out


def _encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_sorted(token: bytes) -> bytes:
    """``token`` with the SignedData's certificate SET in DER order (the rest unchanged);
    the same bytes when already sorted or when the layout is not the expected one."""
    try:
        tag, start, end = _tlv(token, 0)
        resp = _children(token, start, end)
        if tag != 0x30 or len(resp) < 2:
            return token
        _, _, info_start, info_end = resp[1]
        info = _children(token, info_start, info_end)
        if len(info) != 2 or info[1][0] != 0xA0:
            return token
        explicit = _children(token, info[1][2], info[1][3])
        if len(explicit) != 1 or explicit[0][0] != 0x30:
            return token
        signed = _children(token, explicit[0][2], explicit[0][3])
        certs = next((c for c in signed if c[0] == 0xA0), None)
        if certs is None:
            return token
        items = [token[p:e] for _, p, _, e in _children(token, certs[2], certs[3])]
        if items == sorted(items):
            return token
        new_certs = _encode(0xA0, b"".join(sorted(items)))
        parts = [new_certs if c is certs else token[c[1] : c[3]] for c in signed]
        new_signed = _encode(0x30, b"".join(parts))
        new_info = _encode(0x30, token[info[0][1] : info[0][3]] + _encode(0xA0, new_signed))
        return _encode(
            0x30,
            b"".join(new_info if i == 1 else token[p:e] for i, (_, p, _, e) in enumerate(resp)),
        )
    except (ValueError, IndexError):
        return token
