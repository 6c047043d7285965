"""One connection's share of the publisher's work: the outbox rows it sends and the
acknowledgements it turns into deletes, at a cost near that of bare paho.

The rows are read ahead, ``READ_AHEAD`` at a time in seq order, and published from
memory as the in-flight window frees; the outbox is read again only when that is used
up, when the publisher was told of new rows (``notify``) or at the poll. Rows the broker
acknowledged are deleted together, in one statement, once ``ACKS_PER_DELETE`` of them
are waiting, nothing is in flight any more, or ``ACK_DELAY_SECONDS`` passed since the
oldest of them came: deleting each group of acknowledgements in a transaction of its
own cost more than publishing. An acknowledged row not deleted yet is never published
again on this connection; a crash before its delete sends it once more at the next
start, which QoS 1 allows (the consumer drops the seq it saw).

``pump`` is one turn of paho's external loop (select on the socket and the publisher's
wake pipe, then loop_read / loop_write / loop_misc).
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections import deque
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from uploader.mqtt_outbox import Outbox, OutboxMessage

READ_AHEAD: Final = 500
ACKS_PER_DELETE: Final = 200
ACK_DELAY_SECONDS: Final = 0.2


class Connection:
    """One paho client's life: what its callbacks saw, for the thread to act on."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.connack: ReasonCode | None = None
        self.lost: str | None = None
        self.acked: list[int] = []
        self.inflight: dict[int, int] = {}  # mid -> seq
        self.woken = False  # notify() was called: new rows may be in the outbox


class OutboxSession:
    """Publishes a connection's share of the outbox; the publisher's thread drives it."""

    def __init__(
        self, connection: Connection, outbox: Outbox, window: int, poll_seconds: float
    ) -> None:
        self.connection = connection
        self.outbox = outbox
        self.window = window
        self.poll_seconds = poll_seconds
        self.ahead: deque[OutboxMessage] = deque()
        self.read_up_to = 0  # the highest seq read on this connection
        self.more = True  # the last read was full: read again without waiting
        self.next_poll = 0.0
        self.acked: list[int] = []  # acknowledged, not deleted yet
        self.first_ack = 0.0

    @property
    def room(self) -> int:
        return self.window - len(self.connection.inflight)

    @property
    def busy(self) -> bool:
        """Work can be done now (do not wait on the socket)."""
        return bool(self.connection.acked) or (self.room > 0 and (bool(self.ahead) or self.more))

    def step(self, now: float) -> None:
        """Take the acknowledgements that came, delete when due, publish what fits."""
        c = self.connection
        if c.acked:
            if not self.acked:
                self.first_ack = now
            self.acked += [c.inflight.pop(mid) for mid in c.acked if mid in c.inflight]
            c.acked.clear()
        if self.acked and (
            len(self.acked) >= ACKS_PER_DELETE
            or not c.inflight
            or now - self.first_ack >= ACK_DELAY_SECONDS
        ):
            self.flush()
        if self.room > 0 and not self.ahead and (self.more or c.woken or now >= self.next_poll):
            self._read(now)
        self._publish()

    def _read(self, now: float) -> None:
        self.connection.woken = False
        batch = self.outbox.pending(after=self.read_up_to, limit=READ_AHEAD)
        self.more = len(batch) == READ_AHEAD
        self.next_poll = now + self.poll_seconds
        if batch:
            self.ahead.extend(batch)
            self.read_up_to = batch[-1].seq

    def _publish(self) -> None:
        c = self.connection
        for _ in range(min(self.room, len(self.ahead))):
            message = self.ahead.popleft()
            info = c.client.publish(message.topic, message.payload, qos=1, retain=message.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                c.lost = mqtt.error_string(info.rc)
                return
            c.inflight[info.mid] = message.seq

    def flush(self) -> None:
        """Delete the acknowledged rows now (one statement)."""
        if self.acked:
            self.outbox.acknowledged(self.acked)
            self.acked = []

    def all_sent(self) -> bool:
        """Nothing in flight, nothing read ahead, nothing new in the outbox."""
        return (
            not self.connection.inflight
            and not self.ahead
            and not self.outbox.pending(after=self.read_up_to, limit=1)
        )


def pump(connection: Connection, wake: socket.socket, timeout: float) -> bool:
    """One turn of paho's external loop on the publisher's thread, waiting up to
    ``timeout`` on the socket and the wake pipe; False once the connection is gone."""
    client = connection.client
    sock = client.socket()
    if sock is None:
        connection.lost = connection.lost or "connection closed"
        return False
    pending = getattr(sock, "pending", None)
    if callable(pending) and pending() > 0:
        timeout = 0.0  # TLS bytes already read: select would not see them
    writing = [sock] if client.want_write() else []
    try:
        readable, writable, _ = select.select([sock, wake], writing, [], timeout)
    except (OSError, ValueError) as exc:
        connection.lost = connection.lost or f"connection lost: {exc}"
        return False
    if wake in readable:
        connection.woken = True
        with contextlib.suppress(OSError):
            while wake.recv(4096):
                pass
    rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    if sock in readable or (callable(pending) and timeout == 0.0):
        rc = client.loop_read()
    if (
        rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        and client.socket() is not None
        and (sock in writable or client.want_write())
    ):
        rc = client.loop_write()
    if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
        rc = client.loop_misc()
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
        connection.lost = connection.lost or mqtt.error_string(rc)
        return False
    return True
