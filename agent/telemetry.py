"""What the station tells IT over MQTT: its status, its events, its checkpoints; and the
commands it takes back. Topics, payloads and the broker's ACL: docs/mqtt.md.

Everything goes through the outbox (``uploader.Outbox``, a table of the station's own
database) and leaves it only after the broker acknowledged it, so a broker that is down,
or refuses the station's account, never holds up ingest and loses nothing.

Events come from two places. Every ledger leaf becomes an event (``follow``): the
position of the last one published moves in the same transaction as the rows it adds,
so a crash can neither lose a fact's event nor add it twice, and leaves written by the
CLI are told too. What is not a fact of the ledger (a recorder docked or taken out, a
session's phase, an error) is added where the daemon sees it (``event``).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from agent.station import Station
from agent.telemetry_commands import CommandDesk
from agent.telemetry_incidents import IncidentFeed
from config.common import iso_utc, printable, transaction, utc_now
from ledger import Anchor, Leaf
from uploader import Outbox, Publisher, Topics, broker_settings, read_password

log = logging.getLogger("evidock")

__all__ = ["LEAVES_PER_BATCH", "Telemetry"]

LEAVES_PER_BATCH: Final = 500
LEDGER_MARK: Final = "ledger"
CHECKPOINT_MARK: Final = "checkpoint"
DISK_LOW_PERCENT: Final = 10

#: What the daemon says is docked now: one dict per recorder (volume, slot).
Docked = Callable[[], Sequence[Mapping[str, Any]]]


def _scalars(body: Mapping[str, Any]) -> dict[str, Any]:
    # A leaf's strings, numbers and flags; lists and objects (a clip's window hashes, its
    # media) stay in the ledger, which the leaf's index and hash point to.
    return {k: v for k, v in body.items() if v is None or isinstance(v, str | int | bool)}


class Telemetry:
    """The station's MQTT side; every method is a no-op when ``[mqtt] host`` is empty.

    ``start`` reads the broker password (a ConfigError, before anything runs, if it
    cannot be read or others can read it) and starts the publisher thread and the
    command desk; ``stop`` publishes the clean offline status and drains.
    """

    def __init__(
        self,
        station: Station,
        *,
        docked: Docked | None = None,
        environ: Mapping[str, str] | None = None,
        retry_delays: Sequence[float] | None = None,
        signing: threading.Lock | None = None,
        sign_checkpoint: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.station = station
        self.section = station.config.mqtt
        self.enabled = bool(self.section.host)
        self.topics = Topics(self.section.prefix(station.station_id))
        self.docked = docked or (lambda: ())
        self.environ = environ
        self.retry_delays = retry_delays
        self.clock = clock
        self.publisher: Publisher | None = None
        self.problems: list[str] = []  # recent errors, for the status
        self._lock = threading.Lock()  # one follower at a time
        self._next_status = 0.0
        self.desk = CommandDesk(
            station,
            self,
            signing=signing or threading.Lock(),
            sign_checkpoint=sign_checkpoint,
        )
        self.incidents = IncidentFeed(
            station, self, reply=self.desk.reply, sign_checkpoint=self.desk.sign_checkpoint
        )

    # --- life ---------------------------------------------------------------------------

    def start(self) -> None:
        if not self.enabled or self.publisher is not None:
            return
        password = read_password(self.section, self.environ, source="the station config")
        settings = broker_settings(self.section, self.station.station_id, password)
        if not settings.subscribe:
            log.warning(
                "MQTT: no [mqtt] username: the broker connection is anonymous, so commands "
                "from IT and incident feeds are not taken (status, events and checkpoints "
                "are published)"
            )
        for topic in settings.subscribe:
            if topic != self.topics.commands:  # the others are incident feeds
                self.desk.handlers[topic] = self.incidents.handle
        publisher = Publisher(self.station.connect, settings, on_message=self.desk.received)
        if self.retry_delays is not None:  # tests: one short schedule for every failure
            publisher.retry_delays = publisher.auth_retry_delays = tuple(self.retry_delays)
        self.publisher = publisher
        self.follow()
        self.publish_status()
        self.desk.start()
        self.publisher.start()

    def stop(self) -> None:
        publisher = self.publisher
        if publisher is None:
            return
        self.desk.stop()
        try:
            self.follow()
        except (sqlite3.Error, OSError) as exc:
            log.error("MQTT: last events not queued: %s", exc)
        self.publish_status(state="offline")
        publisher.stop()
        self.publisher = None

    def notify(self) -> None:
        if self.publisher is not None:
            self.publisher.notify()

    # --- what goes out ------------------------------------------------------------------

    def _add(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        retain: bool = False,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        body = {"station": self.station.station_id, **payload}
        if conn is not None:  # the caller's transaction: the message goes with its fact
            Outbox(conn).add(topic, body, retain=retain)
            return
        own = self.station.connect()
        try:
            with transaction(own):
                Outbox(own).add(topic, body, retain=retain)
        finally:
            own.close()
        self.notify()

    def event(
        self, name: str, fields: Mapping[str, Any], *, conn: sqlite3.Connection | None = None
    ) -> None:
        """An event that is no ledger leaf (docked, removed, a session's phase, an error);
        with ``conn``, in that connection's open transaction."""
        if not self.enabled:
            return
        try:
            self._add(
                self.topics.events, {"event": name, "at": iso_utc(utc_now()), **fields}, conn=conn
            )
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                raise
            log.error("MQTT: event %s not queued: %s", name, exc)

    def error(self, what: str, message: str) -> None:
        """An error worth IT's attention: an event now, and a problem in the status."""
        if not self.enabled:
            return
        self.problems = [*self.problems[-9:], f"{what}: {message}"]
        self.event("error", {"what": what, "message": message})

    def follow(self) -> int:
        """Turn the ledger's new leaves into events; returns how many were added."""
        if not self.enabled:
            return 0
        added = 0
        with self._lock:
            conn = self.station.connect()
            try:
                while True:
                    with transaction(conn):
                        outbox = Outbox(conn)
                        start = outbox.mark(LEDGER_MARK)
                        leaves = list(
                            self.station.ledger(conn).leaves(start, start + LEAVES_PER_BATCH)
                        )
                        for leaf in leaves:
                            outbox.add(self.topics.events, self._leaf_event(leaf))
                        if leaves:
                            outbox.set_mark(LEDGER_MARK, leaves[-1].index + 1)
                    added += len(leaves)
                    if len(leaves) < LEAVES_PER_BATCH:
                        break
            finally:
                conn.close()
        if added:
            self.notify()
        return added

    def _leaf_event(self, leaf: Leaf) -> dict[str, Any]:
        return {
            **_scalars(leaf.body),
            "station": self.station.station_id,
            "event": leaf.kind,
            "at": leaf.at,
            "leaf": leaf.index,
            "leaf_hash": leaf.hash_hex,
        }

    def checkpoint(self, anchor: Anchor | None) -> None:
        """The newest signed checkpoint, retained, with the consistency proof from the
        previous one (the anchor's text); a checkpoint already published is not again."""
        if not self.enabled or anchor is None:
            return
        try:
            self._checkpoint(anchor)
        except (sqlite3.Error, OSError) as exc:
            log.error("MQTT: checkpoint not queued: %s; the next one carries it", exc)
            return
        self.notify()

    def _checkpoint(self, anchor: Anchor) -> None:
        size = anchor.checkpoint.size
        conn = self.station.connect()
        try:
            with transaction(conn):
                outbox = Outbox(conn)
                if size <= outbox.mark(CHECKPOINT_MARK):
                    return
                payload = {
                    "station": self.station.station_id,
                    "size": size,
                    "previous_size": anchor.previous_size,
                    "anchor": anchor.text(),
                    "checkpoint": anchor.note,
                    "at": iso_utc(utc_now()),
                }
                outbox.add(self.topics.checkpoints, payload, retain=True)
                outbox.set_mark(CHECKPOINT_MARK, size)
        finally:
            conn.close()

    # --- status -------------------------------------------------------------------------

    def status(self, state: str = "online") -> dict[str, Any]:
        """The station's status as IT sees it (also the answer to a status command)."""
        conn = self.station.connect()
        try:
            jobs = dict(
                conn.execute("SELECT state, count(*) FROM upload_jobs GROUP BY state").fetchall()
            )
            outbox = Outbox(conn)
            backlog, oldest = outbox.depth(), outbox.oldest()
            size = self.station.ledger(conn).size()
        finally:
            conn.close()
        problems = list(self.problems)
        if jobs.get("parked"):
            problems.append(f"{jobs['parked']} uploads parked")
        disk: dict[str, Any] = {}
        try:
            usage = shutil.disk_usage(self.station.data_dir)
            disk = {"free_bytes": usage.free, "total_bytes": usage.total}
            if usage.free * 100 < usage.total * DISK_LOW_PERCENT:
                problems.append(f"disk {usage.free * 100 // max(usage.total, 1)} % free")
        except OSError as exc:
            problems.append(f"disk not readable: {exc.strerror}")
        publisher = self.publisher
        return {
            "state": state,
            "clean": state == "offline",
            "at": iso_utc(utc_now()),
            "health": "ok" if not problems else "degraded",
            "problems": problems,
            "disk": disk,
            "queue": {name: int(jobs.get(name, 0)) for name in ("queued", "parked", "done")},
            "outbox": {"depth": backlog, "oldest": oldest},
            "ledger": {"size": size},
            "recorders": [dict(r) for r in self.docked()],
            "broker_connections": publisher.state.connections if publisher else 0,
        }

    def publish_status(self, state: str = "online") -> None:
        """Queue the retained status now (and start the interval again)."""
        if not self.enabled:
            return
        self._next_status = self.clock() + self.section.status_seconds
        try:
            self._add(self.topics.status, self.status(state), retain=True)
        except (sqlite3.Error, OSError) as exc:
            log.error("MQTT: status not queued: %s", exc)

    def tick(self) -> None:
        """The daemon's main loop: new leaves, and the status when it is due."""
        if not self.enabled or self.publisher is None:
            return
        try:
            self.follow()
        except (sqlite3.Error, OSError) as exc:
            log.error("MQTT: events not queued: %s: %s", type(exc).__name__, printable(str(exc)))
        if self.clock() >= self._next_status:
            self.publish_status()
