"""Incident feeds over MQTT: the agency's dispatch system publishes incidents to
``<prefix>/incidents`` (and, where the config names one, an agency-wide topic); the
station imports them exactly as ``evidock incidents import`` imports a file.

A message is an incident object, a list of them, or ``{"request_id": ..., "by": ...,
"incidents": [...]}`` (agent.incident_feed.read_message; the rows are those of a JSON
feed file, docs/records.md). Its usable rows are one ``incident.imported`` leaf (source
``mqtt:<topic>``, ``file_sha256`` the SHA-256 of the message's bytes), the clips matched
and the review list filled as after a file import, and a checkpoint signed. A rejected
row is an ``error`` event naming its row number and why, and so is a message nothing of
which can be used; with a usable ``request_id`` the answer goes to
``<prefix>/replies/<request_id>`` as a command's does.

A message whose bytes were imported already (an ``incident.imported`` leaf from the same
topic with the same SHA-256: QoS 1 sends a message again when its acknowledgement was
lost) imports nothing and writes no leaf; the incidents table would not take its
incidents twice anyway, but its rejected rows would otherwise be recorded again.

Runs on the command desk's thread (agent.telemetry_commands), one message at a time.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from agent import incidents
from agent.clip_facts import load_clip_facts
from agent.incident_feed import Feed, FeedError, feed_of, read_message
from agent.station import Station
from config.common import printable, transaction
from ledger import Ledger, LedgerError

if TYPE_CHECKING:
    from agent.telemetry import Telemetry

log = logging.getLogger("evidock")

SOURCE_PREFIX: Final = "mqtt:"
COMMAND: Final = "incidents"  # the "command" of the replies
SHOWN_REJECTIONS: Final = 5  # rows named in the error event; the reply names them all

#: How the desk answers: (request id, command, result or error) -> the reply queued.
Reply = Callable[..., dict[str, Any]]


def imported_before(ledger: Ledger, source: str, sha256: str) -> int | None:
    """The index of the ``incident.imported`` leaf of these bytes from this source."""
    for leaf in ledger.leaves_of_kind("incident.imported", newest_first=True):
        if leaf.body.get("file_sha256") == sha256 and leaf.body.get("source") == source:
            return leaf.index
    return None


class IncidentFeed:
    """Takes incident messages from the desk's thread and imports them on record."""

    def __init__(
        self,
        station: Station,
        telemetry: Telemetry,
        *,
        reply: Reply,
        sign_checkpoint: Callable[[], None],
    ) -> None:
        self.station = station
        self.telemetry = telemetry
        self.reply = reply
        self.sign_checkpoint = sign_checkpoint

    def handle(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Read, import, match and answer one message; returns the reply (None when the
        message named no usable request id)."""
        source = f"{SOURCE_PREFIX}{topic}"
        message = read_message(payload)
        request_id = message.request_id
        if request_id is not None and not _answerable(self.telemetry, request_id):
            log.warning(
                "MQTT: incident message on %s: request_id %s is not usable (letters, digits, "
                "'.', '_', ':' or '-', at most 64): no reply",
                printable(topic),
                printable(request_id[:80]),
            )
            request_id = None
        if message.problem is not None:
            return self._refuse(source, request_id, message.problem)
        try:
            feed = feed_of(
                source, payload, message.rows, self.station.config.cases.rule(), numbered="row"
            )
        except FeedError as exc:
            return self._refuse(source, request_id, str(exc), named=True)
        try:
            result = self._import(feed, message.by)
        except (LedgerError, sqlite3.Error, OSError) as exc:
            return self._refuse(source, request_id, f"not imported: {type(exc).__name__}: {exc}")
        if feed.rejected:
            shown = "; ".join(f"row {r.line}: {r.reason}" for r in feed.rejected[:SHOWN_REJECTIONS])
            more = len(feed.rejected) - SHOWN_REJECTIONS
            self.telemetry.error(
                "incidents",
                f"{source}: {len(feed.rejected)} row(s) rejected ({shown}"
                f"{f'; {more} more' if more > 0 else ''}); the other rows were imported",
            )
        log.info(
            "MQTT: incidents from %s: %d added, %d already on the station, %d rejected%s",
            printable(topic),
            result["added"],
            result["already_known"],
            len(result["rejected"]),
            " (a message imported before)" if result["duplicate_of"] is not None else "",
        )
        return self._answer(request_id, result=result)

    def _import(self, feed: Feed, by: str | None) -> dict[str, Any]:
        conn = self.station.connect()
        try:
            ledger = self.station.ledger(conn)
            digest = hashlib.sha256(feed.data).hexdigest()
            with transaction(conn):  # the look and the import: one writer's transaction
                earlier = imported_before(ledger, feed.source, digest)
                made = None
                if earlier is None:
                    made = incidents.import_feed(conn, ledger, feed, by=by)
            if made is None:
                return {
                    "duplicate_of": earlier,
                    "leaf_index": None,
                    "added": 0,
                    "already_known": len(feed.incidents),
                    "rejected": [],
                    "linked": [],
                    "reviews": [],
                }
            section = self.station.config.station
            clips = load_clip_facts(
                conn, ledger, time_zone=section.time_zone, station_place=section.place
            )
            matched = incidents.match_incidents(conn, ledger, clips)
        finally:
            conn.close()
        if made.leaf_index is not None or matched.linked:
            self.sign_checkpoint()
        return {
            "duplicate_of": None,
            "leaf_index": made.leaf_index,
            "added": made.added,
            "already_known": made.known,
            "rejected": made.rejected,
            "linked": [{"clip_id": c, "case_number": n} for c, n in matched.linked],
            "reviews": [
                {"clip_id": c, "reason": r, "candidates": n} for c, r, n in matched.reviews
            ],
        }

    def _refuse(
        self, source: str, request_id: str | None, problem: str, *, named: bool = False
    ) -> dict[str, Any] | None:
        text = problem if named else f"{source}: {problem}"
        self.telemetry.error("incidents", f"{text}; nothing imported")
        return self._answer(request_id, error=f"{text}; nothing imported")

    def _answer(
        self,
        request_id: str | None,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any] | None:
        if request_id is None:
            self.telemetry.follow()  # the import's leaves go out as events
            return None
        return self.reply(request_id, COMMAND, result=result, error=error)


def _answerable(telemetry: Telemetry, request_id: str) -> bool:
    try:
        telemetry.topics.reply(request_id)
    except ValueError:
        return False
    return True
