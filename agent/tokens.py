"""API bearer tokens: made, listed and revoked with ``evidock token``; checked by the API.

A token is ``evd_<id>_<secret>``: ``id`` names it in lists and revocations, ``secret`` is
32 random bytes (URL-safe base64). The station keeps only the SHA-256 of the secret
(``api_tokens``), so the database, a backup of it or ``token list`` never shows a token
that works; the token is printed once, when it is made. A presented token is looked up by
its id and its secret's hash compared in constant time.

Each token has a role (``officer``, ``clerk``, ``admin``, ``auditor``: which routes) and
an owner (the person id the station's ``[sensitivity]`` lists and the ledger's ``who``
name: what the API does for the token is recorded as done by its owner).

Tokens are not ledger leaves: they are access control, not facts about evidence. What a
token's owner does to evidence is a leaf naming that owner; making or revoking a token
changes no evidence, and a leaf kind for it would make every older verifier refuse the
ledger. The table keeps who made and revoked each token, and when.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from agent.errors import EvidockError
from config.common import iso_utc, transaction, utc_now

ROLES: Final = ("officer", "clerk", "admin", "auditor")
PREFIX: Final = "evd_"
SECRET_BYTES: Final = 32
MAX_TEXT: Final = 128
_TOKEN = re.compile(r"evd_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class TokenError(EvidockError):
    """A token cannot be made or revoked as asked; nothing was changed."""


@dataclass(frozen=True)
class Token:
    """A token as the station keeps it (never its secret)."""

    token_id: str
    role: str
    owner: str
    note: str | None
    created_at: str
    created_by: str | None
    revoked_at: str | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "role": self.role,
            "owner": self.owner,
            "note": self.note,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "active": self.active,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _text(option: str, value: str | None, *, required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise TokenError(f"{option} is empty: say who the token is for")
        return None
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise TokenError(f"{option} is longer than {MAX_TEXT} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise TokenError(f"{option} holds control characters: type it again")
    return text


def _row(row: sqlite3.Row) -> Token:
    return Token(
        row["token_id"],
        row["role"],
        row["owner"],
        row["note"],
        row["created_at"],
        row["created_by"],
        row["revoked_at"],
        row["revoked_by"],
    )


class TokenStore:
    """The ``api_tokens`` table of one station's database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def create(
        self, role: str, owner: str, *, note: str | None = None, by: str | None = None
    ) -> tuple[Token, str]:
        """A new token: (what the station keeps, the token text to hand over once)."""
        if role not in ROLES:
            raise TokenError(f"{role!r} is not a role: write one of {', '.join(ROLES)}")
        owner_text = _text("--owner", owner, required=True)
        assert owner_text is not None
        note_text = _text("--note", note, required=False)
        by_text = _text("--by", by, required=False)
        token_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode()[:43]
        now = iso_utc(utc_now())
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO api_tokens (token_id, secret_sha256, role, owner, note,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, _digest(secret), role, owner_text, note_text, now, by_text),
            )
        made = Token(token_id, role, owner_text, note_text, now, by_text, None, None)
        return made, f"{PREFIX}{token_id}_{secret}"

    def tokens(self, *, include_revoked: bool = True) -> list[Token]:
        rows = self.conn.execute("SELECT * FROM api_tokens ORDER BY created_at, token_id")
        found = [_row(r) for r in rows]
        return [t for t in found if include_revoked or t.active]

    def get(self, token_id: str) -> Token | None:
        row = self.conn.execute(
            "SELECT * FROM api_tokens WHERE token_id = ?", (token_id,)
        ).fetchone()
        return None if row is None else _row(row)

    def revoke(self, token_id: str, *, by: str | None = None) -> Token:
        """Revoke a token (at once: the next request with it is refused); a token
        already revoked is left as it was."""
        wanted = token_id.strip()
        if wanted.startswith(PREFIX):  # the whole token pasted: its id is enough
            found = _TOKEN.fullmatch(wanted)
            wanted = found.group(1) if found else wanted
        by_text = _text("--by", by, required=False)
        with transaction(self.conn):
            token = self.get(wanted)
            if token is None:
                raise TokenError(
                    f"no token {token_id!r} on this station: `evidock token list` shows the ids"
                )
            if not token.active:
                return token
            self.conn.execute(
                "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE token_id = ?",
                (iso_utc(utc_now()), by_text, wanted),
            )
        revoked = self.get(wanted)
        assert revoked is not None
        return revoked

    def authenticate(self, presented: str) -> tuple[Token | None, str]:
        """(the token, "") if ``presented`` is an active token of this station; else
        (None, why not) — the reason is for the station's log, never for the caller."""
        found = _TOKEN.fullmatch(presented.strip())
        if found is None:
            return None, "not an evidock token"
        token_id, secret = found.groups()
        row = self.conn.execute(
            "SELECT * FROM api_tokens WHERE token_id = ?", (token_id,)
        ).fetchone()
        # A missing id is compared too, so both paths take the same time.
        stored = row["secret_sha256"] if row is not None else "0" * 64
        matches = hmac.compare_digest(_digest(secret), stored)
        if row is None or not matches:
            return None, f"unknown token {token_id}"
        token = _row(row)
        if not token.active:
            return None, f"revoked token {token_id} (owner {token.owner})"
        return token, ""
