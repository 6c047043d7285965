"""API tokens: only the secret's hash is kept, a token is shown once, a revoked or altered
token does not authenticate; `evidock token create|list|revoke` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from station_cli import leaf_count, run_cli

from agent.database import open_station_db
from agent.tokens import TokenError, TokenStore


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(open_station_db(tmp_path / "station.db"))


def test_only_the_hash_of_the_secret_is_kept(store: TokenStore, tmp_path: Path) -> None:
    made, text = store.create("clerk", "0457", note="case desk", by="it-1")
    assert text.startswith(f"evd_{made.token_id}_") and len(text) == 4 + 12 + 1 + 43
    secret = text.split("_", 2)[2]
    store.conn.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("station.db*"))
    assert secret.encode() not in stored and made.token_id.encode() in stored
    again = TokenStore(open_station_db(tmp_path / "station.db"))
    token, why = again.authenticate(text)
    assert token is not None and why == "" and (token.role, token.owner) == ("clerk", "0457")
    again.conn.close()


def test_an_altered_unknown_or_revoked_token_does_not_authenticate(store: TokenStore) -> None:
    made, text = store.create("officer", "O1")
    other = text[:-1] + ("A" if text[-1] != "A" else "B")
    assert store.authenticate(other) == (None, f"unknown token {made.token_id}")
    assert store.authenticate("evd_ffffffffffff_" + text[-43:])[0] is None
    assert store.authenticate("Bearer " + text)[0] is None
    assert store.authenticate("")[1] == "not an evidock token"
    revoked = store.revoke(made.token_id, by="it-1")
    assert revoked.revoked_at and revoked.revoked_by == "it-1" and not revoked.active
    token, why = store.authenticate(text)
    assert token is None and "revoked" in why
    assert store.revoke(text).revoked_at == revoked.revoked_at  # the whole token names it too
    store.conn.close()


def test_bad_requests_change_nothing(store: TokenStore) -> None:
    with pytest.raises(TokenError, match="not a role"):
        store.create("root", "X")
    with pytest.raises(TokenError, match="--owner is empty"):
        store.create("admin", "  ")
    with pytest.raises(TokenError, match="control characters"):
        store.create("admin", "X\x1b[2J")
    with pytest.raises(TokenError, match="no token"):
        store.revoke("000000000000")
    assert store.tokens() == []
    store.conn.close()


def test_token_commands(tmp_path: Path, recorder: Path) -> None:
    data = tmp_path / "d"
    run_cli("ingest", recorder, "--data-dir", data, check=0)
    leaves = leaf_count(data)
    made = run_cli("token", "create", "--data-dir", data, "--role", "auditor", "--owner", "X",
                   "--note", "yearly audit", check=0)  # fmt: skip
    text = made.stdout.strip()
    assert text.startswith("evd_") and "\n" not in text
    assert "shown this once" in made.stderr and text not in made.stderr
    token_id = text.split("_")[1]
    listed = run_cli("token", "list", "--data-dir", data, check=0)
    assert token_id in listed.stdout and "auditor" in listed.stdout and "active" in listed.stdout
    as_json = run_cli("token", "list", "--data-dir", data, "--json", check=0)
    secret = text.split("_", 2)[2]
    assert secret not in listed.stdout + listed.stderr + as_json.stdout
    [entry] = json.loads(as_json.stdout)["tokens"]
    assert entry["owner"] == "X" and entry["active"] is True and "token" not in entry
    run_cli("token", "revoke", token_id, "--data-dir", data, "--by", "it-1", check=0)
    listed = run_cli("token", "list", "--data-dir", data, check=0)
    assert "revoked" in listed.stdout
    assert run_cli("token", "list", "--data-dir", data, "--active", check=0).stdout.startswith(
        "no tokens"
    )
    assert leaf_count(data) == leaves  # tokens are not ledger leaves
    assert run_cli("verify", "--data-dir", data).returncode == 0
    shutil.rmtree(data)
