"""Asking a time-stamping authority (TSA) for an RFC 3161 token over some bytes.

The request (``TimeStampReq``) carries SHA-256 of the bytes, a random nonce and asks for
the TSA's certificate; it is POSTed as ``application/timestamp-query`` over HTTP(S)
with a timeout. The answer (``TimeStampResp``) is kept as DER exactly as received, once
it is granted and answers this request (its imprint and nonce). Whether its signature
chains to a trusted CA is checked by whoever keeps it (``ledger.timestamp``).

::

    DeliveryError
    ├── TargetUnavailable
    │   └── TsaUnavailable     the TSA cannot be reached, timed out, or failed (HTTP 5xx)
    └── TsaRefused             the TSA answered, but not with a token for this request
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    decode_timestamp_response,
)

from uploader.errors import DeliveryError, TargetUnavailable

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
_MAX_REPLY = 1 << 20


class TsaUnavailable(TargetUnavailable):
    """The TSA cannot be asked now; the token is asked for again later."""


class TsaRefused(DeliveryError):
    """The TSA answered with something other than a granted token for this request."""


@dataclass(frozen=True)
class TimestampReply:
    token: bytes  # the DER TimeStampResp, as the TSA sent it
    nonce: int
    sha256: str  # hex of the bytes it covers


class TsaClient:
    """One configured TSA: ``stamp(data)`` returns its token over ``data``."""

    def __init__(
        self, url: str, *, timeout: float, readable: Callable[[bytes], bytes] | None = None
    ) -> None:
        """``readable`` turns an answer into what rfc3161-client's strict DER reader takes
        (the agent passes ``ledger.timestamp.der_sorted``: some TSAs send the certificate
        SET unsorted); the token kept is the answer as received."""
        self.url = url
        self.timeout = timeout
        self._context = ssl.create_default_context() if url.startswith("https:") else None
        self._readable = readable

    def stamp(self, data: bytes) -> TimestampReply:
        """Ask for a token over SHA-256 of ``data``."""
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        answer = self._post(request.as_bytes())
        digest = hashlib.sha256(data).digest()
        nonce = request.nonce
        if nonce is None:  # rfc3161-client always sets one when asked to
            raise TsaRefused("the request was built without a nonce")
        try:
            response = decode_timestamp_response(
                self._readable(answer) if self._readable else answer
            )
        except ValueError as exc:
            raise TsaRefused(
                f"TSA {self.url} answered something that is not a token: {exc}"
            ) from None
        if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            why = "; ".join(response.status_string) or f"status {response.status}"
            raise TsaRefused(f"TSA {self.url} refused the request: {why}")
        info = response.tst_info
        if info.message_imprint.message != digest:
            raise TsaRefused(f"TSA {self.url} answered with a token over other bytes")
        if info.nonce != nonce:
            raise TsaRefused(f"TSA {self.url} answered with another request's nonce")
        return TimestampReply(answer, nonce, digest.hex())

    def _post(self, query: bytes) -> bytes:
        request = urllib.request.Request(
            self.url,
            data=query,
            method="POST",
            headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._context
            ) as reply:
                body: bytes = reply.read(_MAX_REPLY + 1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (408, 429):
                raise TsaUnavailable(
                    f"TSA {self.url} answered HTTP {exc.code}; asked again later"
                ) from None
            raise TsaRefused(
                f"TSA {self.url} answered HTTP {exc.code} {exc.reason}: check timestamping.url"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise TsaUnavailable(
                f"TSA {self.url} cannot be reached ({reason}); asked again later"
            ) from None
        if len(body) > _MAX_REPLY:
            raise TsaRefused(f"TSA {self.url} answered more than 1 MiB: not a token")
        return body
