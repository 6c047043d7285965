"""The TSA client against a real ``openssl ts -reply`` TSA on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from services.tsa import TestTSA, make_tsa_certificates, openssl_verify, tsa

from ledger.timestamp import TimestampError, check_token, der_sorted, read_certificates
from uploader.tsa import TsaClient, TsaRefused, TsaUnavailable

__all__ = ["tsa"]

ANCHOR = b"evidock.anchor@v1\nprevious 0\n\nevidock.station/st-1\n3\nroot\n"


def client(service: TestTSA) -> TsaClient:
    return TsaClient(service.url, timeout=10, readable=der_sorted)


def test_a_token_over_the_bytes_checks_with_openssl_and_with_our_checker(
    tsa: TestTSA, tmp_path: Path
) -> None:
    reply = client(tsa).stamp(ANCHOR)
    data, token = tmp_path / "checkpoint.anchor", tmp_path / "checkpoint.anchor.tsr"
    data.write_bytes(ANCHOR)
    token.write_bytes(reply.token)

    done = openssl_verify(data, token, tsa.ca)
    assert done.returncode == 0, done.stderr
    assert b"Verification: OK" in done.stdout

    check = check_token(reply.token, ANCHOR, read_certificates(tsa.ca), nonce=reply.nonce)
    assert check.tsa == "CN=evidock test TSA"
    assert check.policy == "1.2.3.4.1"
    assert reply.sha256 == check.imprint


def test_a_token_is_refused_for_other_bytes_and_under_another_ca(
    tsa: TestTSA, tmp_path: Path
) -> None:
    reply = client(tsa).stamp(ANCHOR)
    roots = read_certificates(tsa.ca)
    with pytest.raises(TimestampError, match="covers other bytes"):
        check_token(reply.token, ANCHOR + b" ", roots)
    other_ca, _, _ = make_tsa_certificates(tmp_path / "other", "another TSA")
    with pytest.raises(TimestampError, match="signature does not check"):
        check_token(reply.token, ANCHOR, read_certificates(other_ca))
    with pytest.raises(TimestampError, match="nonce"):
        check_token(reply.token, ANCHOR, roots, nonce=reply.nonce + 1)
    with pytest.raises(TimestampError, match="policy"):
        check_token(reply.token, ANCHOR, roots, policy="1.2.3.4.2")
    # openssl agrees: other bytes, and another CA, are refused
    data, token = tmp_path / "a", tmp_path / "a.tsr"
    data.write_bytes(ANCHOR + b" ")
    token.write_bytes(reply.token)
    assert openssl_verify(data, token, tsa.ca).returncode != 0
    data.write_bytes(ANCHOR)
    assert openssl_verify(data, token, tsa.ca).returncode == 0
    assert openssl_verify(data, token, other_ca).returncode != 0


def test_a_token_with_a_changed_byte_is_refused(tsa: TestTSA) -> None:
    token = bytearray(client(tsa).stamp(ANCHOR).token)
    # the last bytes are the TSA's signature
    token[-3] ^= 0x01
    with pytest.raises(TimestampError):
        check_token(bytes(token), ANCHOR, read_certificates(tsa.ca))


def test_the_certificate_set_openssl_sends_unsorted_is_read_after_sorting(tsa: TestTSA) -> None:
    token = client(tsa).stamp(ANCHOR).token
    # openssl ts puts the signer, then the CA: not DER's order for this pair
    assert der_sorted(token) != token
    assert der_sorted(der_sorted(token)) == der_sorted(token)
    check_token(token, ANCHOR, read_certificates(tsa.ca))


def test_a_tsa_that_is_down_or_busy_is_unavailable(tsa: TestTSA) -> None:
    tsa.mode = "busy"
    with pytest.raises(TsaUnavailable, match="HTTP 503"):
        client(tsa).stamp(ANCHOR)
    tsa.mode = "ok"
    tsa.stop()
    with pytest.raises(TsaUnavailable, match="cannot be reached"):
        client(tsa).stamp(ANCHOR)
    tsa.start()
    assert client(tsa).stamp(ANCHOR).token


def test_an_answer_that_is_no_token_is_refused(tsa: TestTSA) -> None:
    tsa.mode = "garbage"
    with pytest.raises(TsaRefused, match="not a token"):
        client(tsa).stamp(ANCHOR)
