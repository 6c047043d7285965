"""The station's management API: the ``[api]`` section of a station config (docs/api.md).

The API is served by the daemon itself (``evidock run``), on loopback unless the config
says otherwise; every route but ``/healthz`` needs a bearer token (``evidock token``).
TLS uses the station's certificate and key (PEM files) when both are given.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from config.phrasing import toml_value


def _plain_path(value: object) -> object:
    if isinstance(value, str) and (not value.strip() or "\0" in value):
        raise ValueError("write the PEM file's full path")
    return value


PemPath = Annotated[Path, BeforeValidator(_plain_path)]


class ApiSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(
        default=False,
        description="Serve the management API from the daemon (evidock run); false: no API.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the API listens on: loopback by default; another address "
        "exposes it to the network (use TLS then).",
    )
    port: int = Field(
        default=8470,
        strict=True,
        ge=0,
        le=65535,
        description="TCP port of the API; 0 takes any free port (the daemon logs which).",
    )
    tls_cert_file: PemPath | None = Field(
        default=None,
        description="The station's TLS certificate (PEM); with tls_key_file the API speaks "
        "HTTPS only.",
    )
    tls_key_file: PemPath | None = Field(
        default=None,
        description="The private key of tls_cert_file (PEM, readable by the evidock user only).",
    )
    auth_failures: int = Field(
        default=10,
        strict=True,
        ge=1,
        le=10000,
        description="Failed authentications one client address may make in "
        "auth_window_seconds before it is refused (HTTP 429) until the window has passed.",
    )
    auth_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="The window, in seconds, that auth_failures counts in.",
    )

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        text = value.strip()
        if not text or any(c.isspace() or c in "/[]" for c in text):
            raise ValueError(
                f"{toml_value(value)} is not an address to listen on; write an IP address "
                'such as "127.0.0.1" or a host name of this machine'
            )
        return text

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSection:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            raise ValueError(f"tls_cert_file and tls_key_file go together; set {missing} too")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def loopback(self) -> bool:
        """Whether the API is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
