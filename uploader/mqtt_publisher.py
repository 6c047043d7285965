"""The publisher: one thread, one paho client per connection, the outbox as its only queue.

The thread connects (its own loop with back-off, never paho's reconnect), publishes the
outbox in seq order with QoS 1, at most ``max_in_flight`` unacknowledged, and deletes a
row only once the broker's PUBACK for it came. A connection that ends loses nothing: the
rows are still there, and the next connection (a new client, so paho keeps no messages
of its own across connections) sends again from the oldest one. A message can so reach
the broker twice, never out of order and never not at all; its payload's ``seq`` tells
a consumer it saw it already.

paho runs in this thread only: the thread selects on the client's socket and on a wake
pipe (``notify()``) and calls ``loop_read`` / ``loop_write`` / ``loop_misc`` (paho's
external-loop API), so callbacks, publishes and SQLite all happen here. What one
connection sends and deletes, and how cheaply: ``uploader.mqtt_session``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.common import printable
from uploader.mqtt_outbox import Outbox
from uploader.mqtt_session import Connection, OutboxSession, pump

log = logging.getLogger("evidock")

#: Waits after a connection that failed quickly (the broker not there, refusing the
#: connection, or dropping it): capped at 10 s, so a broker back from an outage of any
#: length is reached at most 12 s (10 s + 20 % jitter) after it listens again.
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
#: Waits after the broker refused the station's account or the station refused the
#: broker's certificate: trying again soon would not help, and a fleet of stations doing
#: so would hammer the broker's authentication; a person has to change something first.
AUTH_RETRY_DELAYS: tuple[float, ...] = (10.0, 30.0, 60.0)
JITTER = 0.2  # each wait is its delay times 1 +/- this: a fleet does not reconnect at once
CONNACK_SECONDS = 10.0
POLL_SECONDS = 0.5  # look at the outbox this often even when nobody called notify()
DRAIN_SECONDS = 3.0
#: CONNACK reason codes that say "this account may not connect": bad user name or
#: password, not authorized, banned, bad authentication method (MQTT 5 numbering, which
#: paho also gives an MQTT 3.1.1 refusal: 4 becomes 134, 5 becomes 135).
REFUSED_ACCOUNT = frozenset({134, 135, 138, 140})

#: What the publisher hands a received message to: (topic, payload). It runs on the
#: publisher's thread: it must be quick (queue the work, do it elsewhere).
MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how the station connects; the password is already read (never logged)."""

    host: str
    port: int
    client_id: str
    will_topic: str
    will_payload: bytes
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    keepalive: int = 60
    max_in_flight: int = 20
    subscribe: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        scheme = "mqtts" if self.tls or self.ca_file else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


@dataclass
class PublisherState:
    """What status reports: connected or not, and the last problem in one line."""

    connected: bool = False
    problem: str | None = None
    attempts: int = 0
    connections: int = 0
    subscribed: tuple[str, ...] = ()  # what the broker granted on this connection
    acks_waiting: int = 0  # rows acknowledged and not deleted yet (uploader.mqtt_session)


class Publisher:
    """Publishes a station's outbox to one broker from a thread of its own.

    ``connect_db`` opens the thread's own connection to the station database.
    ``on_message`` receives what arrives on the ``subscribe`` topics (QoS 1).
    ``retry_delays`` are the waits after a connection that failed quickly,
    ``auth_retry_delays`` those after a refused account (see ``RETRY_DELAYS``); the last
    one repeats. ``wait(seconds)`` is how the thread waits between attempts (by default
    on its stop, so a stop ends the wait); a test hands one that only records.
    """

    def __init__(
        self,
        connect_db: Callable[[], sqlite3.Connection],
        settings: BrokerSettings,
        *,
        on_message: MessageHandler | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        auth_retry_delays: Sequence[float] = AUTH_RETRY_DELAYS,
        drain_seconds: float = DRAIN_SECONDS,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        self.connect_db = connect_db
        self.settings = settings
        self.on_message = on_message
        self.retry_delays = tuple(retry_delays)
        self.auth_retry_delays = tuple(auth_retry_delays)
        self.drain_seconds = drain_seconds
        self.state = PublisherState()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wait = wait
        self._thread: threading.Thread | None = None
        self._failures = 0  # failed attempts in a row, of the kind below
        self._refused_account = False  # the last failure: the account or the certificate
        self._logged_problem: str | None = None

    # --- the public side ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="evidock-mqtt", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        # A full pipe already wakes it; a closed one means it stopped.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def stop(self) -> None:
        """Stop: what is in flight (and what waits, while time is left) is sent and
        acknowledged for up to ``drain_seconds``, then the connection is closed; if the
        drain did not finish, it is dropped without DISCONNECT so that the broker
        publishes the last will."""
        self._stop.set()
        self.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._wake_r.close()
        self._wake_w.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        conn = self.connect_db()
        # This connection only reads the outbox and deletes what the broker acknowledged:
        # a delete lost to a power cut sends a message once more, as QoS 1 allows, so its
        # commits need not wait for the disk (WAL: never a corrupt database either way).
        conn.execute("PRAGMA synchronous = NORMAL")
        outbox = Outbox(conn)
        try:
            while not self._stop.is_set():
                connection = self._connect()
                if connection is not None:
                    self._failures, self._refused_account = 0, False
                    self._session(connection, outbox)
                    self._close(connection)
                if not self._stop.is_set():
                    delay = self._delay()
                    if self._wait is not None:
                        self._wait(delay)
                    else:
                        self._stop.wait(delay)
        except Exception as exc:  # a bug here must not pass silently, nor kill the daemon
            log.error("MQTT publisher stopped: %s: %s", type(exc).__name__, exc, exc_info=exc)
            self.state.problem = f"publisher stopped: {type(exc).__name__}: {exc}"
        finally:
            self.state.connected = False
            conn.close()

    def _delay(self) -> float:
        """The wait before the next attempt: the next step of the schedule the last
        failure's kind calls for (a connection that ended counts as a quick failure)."""
        delays = (self.auth_retry_delays if self._refused_account else self.retry_delays) or (1.0,)
        base = delays[min(max(self._failures - 1, 0), len(delays) - 1)]
        return base * random.uniform(1.0 - JITTER, 1.0 + JITTER)

    def _problem(self, text: str, *, account: bool = False) -> None:
        """One clear line per problem: repeated the same way, it is not logged again.
        ``account``: the broker refused the station's account (or its certificate was
        not trusted), which waits longer before the next attempt."""
        if account != self._refused_account:
            self._failures = 0  # another kind of failure starts its own schedule
        self._refused_account = account
        self._failures += 1
        self.state.problem = text
        self.state.connected = False
        if text != self._logged_problem:
            log.error("MQTT: %s; events are kept in the outbox and sent once it connects", text)
            self._logged_problem = text

    def _new_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(s.max_in_flight)
        client.will_set(s.will_topic, s.will_payload, qos=1, retain=True)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls or s.ca_file:
            client.tls_set(ca_certs=s.ca_file)
        return client

    def _connect(self) -> Connection | None:
        s = self.settings
        self.state.attempts += 1
        client = self._new_client()
        connection = Connection(client)
        self._wire(connection)
        try:
            client.connect(s.host, s.port, keepalive=s.keepalive)
        except ssl.SSLCertVerificationError as exc:
            self._problem(
                f"the broker {s.where} has a certificate this station does not trust "
                f"({exc.verify_message}); set [mqtt] ca_file to the CA that signed it",
                account=True,
            )
            return None
        except (OSError, ValueError) as exc:
            self._problem(f"cannot reach the broker {s.where}: {exc}")
            return None
        deadline = time.monotonic() + CONNACK_SECONDS
        while connection.connack is None and connection.lost is None:
            if self._stop.is_set() or time.monotonic() > deadline:
                self._close(connection)
                if not self._stop.is_set():
                    self._problem(f"the broker {s.where} did not answer the connection")
                return None
            self._pump(connection, 0.2)
        rc = connection.connack
        if rc is None or rc.is_failure:
            self._close(connection)
            if rc is not None and rc.value in REFUSED_ACCOUNT:
                self._problem(
                    f"the broker {s.where} refused the station's account ({rc}): check "
                    "[mqtt] username and the password in password_file",
                    account=True,
                )
            else:
                self._problem(
                    f"the broker {s.where} refused the connection: {rc or connection.lost}"
                )
            return None
        self.state.subscribed = ()
        if s.subscribe:
            client.subscribe([(topic, 1) for topic in s.subscribe])
        self.state.connected = True
        self.state.problem = None
        self.state.connections += 1
        if self._logged_problem is not None:
            log.info("MQTT: connected to %s again", s.where)
        else:
            log.info("MQTT: connected to %s", s.where)
        self._logged_problem = None
        return connection

    def _wire(self, connection: Connection) -> None:
        client = connection.client

        def on_connect(_c: Any, _u: Any, _flags: Any, rc: ReasonCode, _p: Any) -> None:
            connection.connack = rc

        def on_disconnect(_c: Any, _u: Any, _flags: Any, rc: ReasonCode, _p: Any) -> None:
            connection.lost = str(rc)

        def on_publish(_c: Any, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:
            connection.acked.append(mid)

        def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
            wanted = self.settings.subscribe
            granted = tuple(t for t, rc in zip(wanted, codes, strict=False) if not rc.is_failure)
            self.state.subscribed = granted
            for topic in wanted:
                if topic not in granted:
                    log.error(
                        "MQTT: the broker %s refused the station's subscription to %s: "
                        "its ACL must let the station's account read it (docs/mqtt.md)",
                        self.settings.where,
                        printable(topic),
                    )

        def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
            handler = self.on_message
            if handler is None:
                return
            try:
                handler(message.topic, bytes(message.payload))
            except Exception as exc:
                log.error(
                    "MQTT: message on %s not handled: %s: %s",
                    printable(message.topic),
                    type(exc).__name__,
                    exc,
                )

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        client.on_message = on_message

    def _pump(self, connection: Connection, timeout: float) -> bool:
        return pump(connection, self._wake_r, timeout)

    def _session(self, connection: Connection, outbox: Outbox) -> None:
        """Publish until the connection ends or a stop's drain is over."""
        session = OutboxSession(connection, outbox, self.settings.max_in_flight, POLL_SECONDS)
        try:
            self._publish(session)
        finally:
            session.flush()  # what the broker acknowledged is sent, whatever ended it
            self.state.acks_waiting = 0
        if connection.lost is not None and not self._stop.is_set():
            self._problem(f"connection to {self.settings.where} lost ({connection.lost})")

    def _publish(self, session: OutboxSession) -> None:
        connection = session.connection
        drain_until: float | None = None
        while True:
            now = time.monotonic()
            if self._stop.is_set() and drain_until is None:
                drain_until = now + self.drain_seconds
            session.step(now)
            self.state.acks_waiting = len(session.acked)
            if drain_until is not None:
                if session.all_sent():
                    connection.client.disconnect()  # clean: the broker drops the will
                    self._pump(connection, 0.0)
                    return
                if now >= drain_until:
                    session.flush()
                    log.warning(
                        "MQTT: stopped with %d messages unacknowledged; they stay in the outbox",
                        session.outbox.depth(),
                    )
                    return  # dropped without DISCONNECT: the broker publishes the will
            if connection.lost is not None:
                return
            if not self._pump(connection, 0.0 if session.busy else POLL_SECONDS):
                return

    def _close(self, connection: Connection) -> None:
        """Drop the client without DISCONNECT (a clean one was sent already if meant)."""
        sock = connection.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self.state.connected = False
        self.state.subscribed = ()
