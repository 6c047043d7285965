"""The MQTT outbox: what the station publishes, kept in its own SQLite database until the
broker acknowledged it.

A message is a row of ``mqtt_outbox``: ``seq`` (AUTOINCREMENT, never reused), topic,
JSON payload, retained or not. Rows are added inside the caller's transaction, so a
message exists exactly when the fact it tells of was committed; the publisher sends them
in ``seq`` order and deletes each only after its PUBACK. The payload a subscriber gets
carries that ``seq``: a message seen twice (QoS 1 after a lost PUBACK) has the same seq.

``mqtt_marks`` holds named positions (how far the agent turned its ledger into events),
moved in the same transaction as the rows they account for.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from config.common import iso_utc, utc_now

SCHEMA_VERSION: Final = 1
DELETE_CHUNK: Final = 500  # seqs per DELETE statement (SQLite's variable limit is far above)

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class OutboxMessage:
    """One message as it goes on the wire: the payload already carries its ``seq``."""

    seq: int
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    """The ``mqtt_outbox`` table of one station database (a connection of the caller's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> int:
        """Queue one message (in the caller's transaction, if one is open); returns its seq.

        ``payload`` is a JSON object; ``seq`` is added to it when it is sent, and
        ``schema`` (the payload version) when the caller left it out."""
        if "seq" in payload:
            raise ValueError("the outbox gives each message its seq; leave it out")
        body = {"schema": SCHEMA_VERSION, **payload}
        cursor = self.conn.execute(
            "INSERT INTO mqtt_outbox (topic, payload, retain, created_at) VALUES (?, ?, ?, ?)",
            (topic, _ENCODER.encode(body), int(retain), iso_utc(utc_now())),
        )
        seq = cursor.lastrowid
        assert seq is not None
        return seq

    def pending(self, after: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """The oldest messages with a seq above ``after``, in seq order."""
        rows = self.conn.execute(
            "SELECT seq, topic, payload, retain FROM mqtt_outbox WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            OutboxMessage(int(seq), str(topic), _with_seq(str(payload), int(seq)), bool(retain))
            for seq, topic, payload, retain in rows
        ]

    def acknowledged(self, seqs: Iterable[int]) -> None:
        """The broker acknowledged these: they are sent (one statement per
        ``DELETE_CHUNK``, each its own transaction unless the caller holds one)."""
        done = sorted(set(seqs))
        for start in range(0, len(done), DELETE_CHUNK):
            chunk = done[start : start + DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM mqtt_outbox WHERE seq IN ({marks})", chunk)

    def depth(self) -> int:
        """Messages not acknowledged yet."""
        return int(self.conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0])

    def oldest(self) -> str | None:
        """When the oldest message not acknowledged yet was queued (ISO UTC), if any."""
        row = self.conn.execute("SELECT min(created_at) FROM mqtt_outbox").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def mark(self, name: str) -> int:
        """A named position (0 when never set)."""
        row = self.conn.execute(
            "SELECT position FROM mqtt_marks WHERE name = ?", (name,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def set_mark(self, name: str, position: int) -> None:
        """Move a named position (in the caller's transaction, with the rows it covers)."""
        self.conn.execute(
            "INSERT INTO mqtt_marks (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (name, position),
        )


def _with_seq(payload: str, seq: int) -> bytes:
    # The stored payload is a JSON object the outbox encoded, without "seq": the seq goes
    # in front of its first key, with no decoding and encoding again per message.
    assert payload.startswith("{") and payload != "{}"
    return f'{{"seq":{seq},{payload[1:]}'.encode()
