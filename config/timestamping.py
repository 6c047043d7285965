"""RFC 3161 trusted timestamps (可信时间戳) of published checkpoints: the ``[timestamping]``
section of a station config (docs/timestamping.md).

An empty ``url`` turns timestamping off. With a URL, every published checkpoint's anchor
is sent (as its SHA-256) to that time-stamping authority; the token it answers is kept
beside the anchor. A TSA that cannot be reached delays the token, never an ingest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from config.phrasing import toml_value

_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def _plain_path(value: object) -> object:
    if isinstance(value, str) and (not value.strip() or "\0" in value):
        raise ValueError("write the PEM file's full path")
    return value


PemPath = Annotated[Path, BeforeValidator(_plain_path)]


class TimestampingSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: str = Field(
        default="",
        description="The time-stamping authority's RFC 3161 URL (http:// or https://), "
        "asked for a token over every published checkpoint; empty: no timestamps.",
    )
    ca_file: PemPath | None = Field(
        default=None,
        description="CA certificate(s) (PEM) the TSA's certificate must chain to; needed "
        "with a url: a token is kept only once it checks against this CA.",
    )
    tsa_cert_file: PemPath | None = Field(
        default=None,
        description="The TSA's own certificate (PEM), for a TSA whose tokens do not carry "
        "it; tokens that carry another certificate are then refused.",
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long one request to the TSA may take; a TSA slower than this is "
        "taken as down and asked again at the next checkpoint or daemon pass.",
    )
    policy_oid: str = Field(
        default="",
        description="The TSA policy (an OID such as 1.2.3.4.1) to ask for and require in "
        "its tokens; empty: the TSA's default policy.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
            raise ValueError(
                f"{toml_value(value)} is not an http:// or https:// URL; write the TSA's "
                'address such as "https://tsa.example.gov.cn/tsr"'
            )
        return value

    @field_validator("policy_oid")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value and not _OID.fullmatch(value):
            raise ValueError(
                f"{toml_value(value)} is not an object identifier; write dotted numbers "
                'such as "1.2.3.4.1", or leave it empty'
            )
        return value

    @model_validator(mode="after")
    def _trust(self) -> TimestampingSection:
        if self.url and self.ca_file is None:
            raise ValueError(
                "a TSA url needs ca_file too: the CA its tokens are checked against "
                "(a token nobody can check proves nothing)"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.url)
