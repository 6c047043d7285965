"""Commands from IT over MQTT, and their replies.

A command is a JSON object on ``<prefix>/commands``::

    {"schema": 1, "request_id": "r-42", "command": "status", "args": {}, "by": "it-0457"}

It is taken only over the station's authenticated broker connection (it subscribes to
``commands`` only with a username; the broker's ACL says who may publish there:
docs/mqtt.md). Each accepted command is a ``command.received`` leaf before it is carried
out; its answer goes, through the outbox, to ``<prefix>/replies/<request_id>``. A message
that is no command (not JSON, no usable request id) is logged and dropped: with no
request id there is nowhere to answer.

Commands run on a thread of their own (re-verifying a clip reads the whole clip), one at
a time, never on the publisher's thread.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from agent import anchoring
from agent.delivery import delivery_target
from agent.station import Station
from config.common import iso_utc, printable, transaction, utc_now
from hashing import HashingError, hash_file
from ledger import LedgerError
from uploader import DeliveryError, Outbox, UploadQueue

if TYPE_CHECKING:
    from agent.telemetry import Telemetry

log = logging.getLogger("evidock")

COMMANDS: Final = ("status", "retry_uploads", "reverify_clip", "rotate_key")
# Parked for these reasons a job is retried on IT's word; an integrity failure (the
# station's copy or the target's bytes differ) never is: a person looks at it first.
RETRYABLE_FAILURES: Final = ("target-unavailable",)


class CommandRefused(Exception):
    """A command that cannot be carried out as sent; the message is the reply's error."""


class CommandDesk:
    """Takes commands from the publisher's thread and carries them out on its own."""

    def __init__(
        self,
        station: Station,
        telemetry: Telemetry,
        *,
        signing: threading.Lock,
        sign_checkpoint: Callable[[], None] | None = None,
    ) -> None:
        self.station = station
        self.telemetry = telemetry
        self.signing = signing
        self.sign_checkpoint = sign_checkpoint or self._sign
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        #: Other topics the station subscribes to, and who takes their messages (on this
        #: desk's thread too): the incident feeds (agent.telemetry_incidents).
        self.handlers: dict[str, Callable[[str, bytes], object]] = {}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="evidock-commands", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join()
            self._thread = None

    def received(self, topic: str, payload: bytes) -> None:
        """The publisher's callback: queue it, quickly."""
        if topic == self.telemetry.topics.commands or topic in self.handlers:
            self._inbox.put((topic, payload))

    def _run(self) -> None:
        while (item := self._inbox.get()) is not None:
            topic, payload = item
            try:
                handler = self.handlers.get(topic)
                if handler is not None:
                    handler(topic, payload)
                else:
                    self.handle(payload)
            except Exception as exc:  # one bad message must not end the desk
                log.error(
                    "MQTT message on %s failed: %s: %s",
                    printable(topic),
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )

    # --- one command --------------------------------------------------------------------

    def handle(self, payload: bytes) -> dict[str, Any] | None:
        """Check, record, carry out and answer one command; returns the reply (or None
        for a message that is no command)."""
        try:
            message = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            log.warning("MQTT: a message on the commands topic is not JSON: dropped")
            return None
        request_id = message.get("request_id") if isinstance(message, dict) else None
        try:
            reply_topic = (
                self.telemetry.topics.reply(request_id) if isinstance(request_id, str) else None
            )
        except ValueError:
            reply_topic = None
        if reply_topic is None or not isinstance(message, dict):
            log.warning(
                "MQTT: a command without a usable request_id (letters, digits, '.', '_', "
                "':' or '-', at most 64) was dropped: there is nowhere to answer it"
            )
            return None
        assert isinstance(request_id, str)
        try:
            command, args, by = _parse(message)
        except CommandRefused as exc:
            return self._reply(reply_topic, request_id, None, error=str(exc))
        try:
            self._record(request_id, command, args, by)
        except LedgerError as exc:  # e.g. a float in args: a leaf holds none
            return self._reply(reply_topic, request_id, command, error=f"not recorded: {exc}")
        log.info("MQTT: command %s (request %s, by %s)", command, request_id, printable(str(by)))
        try:
            result = self._carry_out(command, args)
        except CommandRefused as exc:
            return self._reply(reply_topic, request_id, command, error=str(exc))
        except (DeliveryError, LedgerError, HashingError, OSError) as exc:
            return self._reply(
                reply_topic, request_id, command, error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            # The command's leaf (and what it did) signed, as any command that writes.
            self.sign_checkpoint()
        return self._reply(reply_topic, request_id, command, result=result)

    def _record(self, request_id: str, command: str, args: dict[str, Any], by: str | None) -> None:
        body = {"request_id": request_id, "command": command, "args": args, "by": by, "via": "mqtt"}
        conn = self.station.connect()
        try:
            with transaction(conn):
                self.station.ledger(conn).append("command.received", body)
        finally:
            conn.close()

    def reply(
        self,
        request_id: str,
        command: str | None,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Answer on ``<prefix>/replies/<request_id>`` (the id already checked)."""
        topic = self.telemetry.topics.reply(request_id)
        return self._reply(topic, request_id, command, result=result, error=error)

    def _reply(
        self,
        topic: str,
        request_id: str,
        command: str | None,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        reply = {
            "station": self.station.station_id,
            "request_id": request_id,
            "command": command,
            "ok": error is None,
            "at": iso_utc(utc_now()),
            **({"result": result} if error is None else {"error": error}),
        }
        conn = self.station.connect()
        try:
            with transaction(conn):
                Outbox(conn).add(topic, reply)
        finally:
            conn.close()
        self.telemetry.follow()  # the command's leaf goes out as an event too
        self.telemetry.notify()
        return reply

    def _carry_out(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        if command == "status":
            return self.telemetry.status()
        if command == "retry_uploads":
            return self._retry_uploads()
        if command == "reverify_clip":
            return self._reverify(args)
        return self._rotate_key()

    def _retry_uploads(self) -> dict[str, Any]:
        conn = self.station.connect()
        try:
            jobs = UploadQueue(conn)
            retried = jobs.retry_parked(utc_now(), failure=RETRYABLE_FAILURES)
            kept = jobs.counts().get("parked", 0)
        finally:
            conn.close()
        return {"retried": retried, "still_parked": kept}

    def _reverify(self, args: dict[str, Any]) -> dict[str, Any]:
        clip_id = args.get("clip_id")
        if not isinstance(clip_id, str) or not clip_id:
            raise CommandRefused('reverify_clip needs "args": {"clip_id": "..."}')
        conn = self.station.connect()
        try:
            row = conn.execute(
                "SELECT sha256, blake3, size FROM clips WHERE clip_id = ?", (clip_id,)
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise CommandRefused(f"no clip {clip_id} on this station")
        sha256, blake3, size = str(row[0]), str(row[1]), int(row[2])
        path = self.station.store.path_for(sha256)
        if not path.exists():
            self.telemetry.error("reverify", f"clip {clip_id}: its copy is missing from the store")
            return {"clip_id": clip_id, "intact": False, "problem": "the copy is missing"}
        found = hash_file(path, self.station.options)
        intact = (found.sha256, found.blake3, found.size) == (sha256, blake3, size)
        if not intact:
            self.telemetry.error("reverify", f"clip {clip_id}: its copy differs from its leaf")
        return {
            "clip_id": clip_id,
            "intact": intact,
            "sha256": sha256,
            "found_sha256": found.sha256,
            "size": size,
            "found_size": found.size,
        }

    def _rotate_key(self) -> dict[str, Any]:
        with self.signing:
            old, new, published = anchoring.rotate_station_key(self.station)
        return {"old_key": old, "new_key": new, "anchor": published}

    def _sign(self) -> None:
        """Sign and publish a checkpoint (the daemon hands its own ``checkpoint`` instead)."""
        with self.signing:
            conn = self.station.connect()
            try:
                anchor = anchoring.publish_checkpoint(
                    self.station, conn, delivery_target(self.station)
                )
            except (LedgerError, OSError) as exc:
                log.error("checkpoint after a command not signed: %s; signed later", exc)
                return
            finally:
                conn.close()
        self.telemetry.checkpoint(anchor)


def _parse(message: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    command = message.get("command")
    if command not in COMMANDS:
        raise CommandRefused(f"unknown command {command!r}; send one of {', '.join(COMMANDS)}")
    args = message.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CommandRefused('"args" must be an object')
    by = message.get("by")
    if by is not None and not isinstance(by, str):
        raise CommandRefused('"by" must be a string (who sends the command)')
    return str(command), args, by
