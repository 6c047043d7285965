"""The publisher's waits between connection attempts, recorded instead of slept (no
timed asserts): a broker that is not there or drops the connection is tried again within
10 s (+20 % jitter) however long it stays away; a broker that refuses the station's
account is tried again only after longer waits; each kind of failure starts its own
schedule, and a connection made starts it over."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from services import Mosquitto
from test_uploader_mqtt import add_events, connector, depth, settings, wait_for

from agent.database import open_station_db
from uploader import Publisher, Topics
from uploader.mqtt_publisher import AUTH_RETRY_DELAYS, JITTER, RETRY_DELAYS

QUICK_CAP = max(RETRY_DELAYS) * (1 + JITTER)


class Waits:
    """Stands in for the publisher's wait: records each delay with the problem that
    caused it, and holds the thread once it has seen as many as the test allowed."""

    def __init__(self, publisher: Callable[[], Publisher]) -> None:
        self.publisher = publisher
        self.seen: list[tuple[float, str]] = []
        self.allowed = 0  # the thread holds in the wait that makes seen this long
        self.returned = 0  # waits take() handed to the test
        self.cond = threading.Condition()

    def __call__(self, seconds: float) -> None:
        with self.cond:
            self.seen.append((seconds, self.publisher().state.problem or ""))
            self.cond.notify_all()
            self.cond.wait_for(lambda: len(self.seen) < self.allowed)

    def take(self, count: int) -> list[tuple[float, str]]:
        """The next ``count`` waits (the thread goes on as far as that, and holds in
        the last of them)."""
        with self.cond:
            first = self.returned
            self.returned = self.allowed = first + count
            self.cond.notify_all()
        wait_for(lambda: len(self.seen) >= first + count, f"{count} more attempts")
        return self.seen[first : first + count]

    def allow(self, count: int) -> None:
        """Let the thread go on past the wait it holds in, without waiting for it."""
        with self.cond:
            self.allowed = self.returned + count
            self.cond.notify_all()

    def release(self) -> None:
        with self.cond:
            self.allowed = 10**9
            self.cond.notify_all()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "station.db"
    open_station_db(path).close()
    yield path


@contextmanager
def recorded(make: Callable[[Waits], Publisher]) -> Iterator[tuple[Publisher, Waits]]:
    holder: list[Publisher] = []
    waits = Waits(lambda: holder[0])
    publisher = make(waits)
    holder.append(publisher)
    publisher.start()
    try:
        yield publisher, waits
    finally:
        waits.release()
        publisher.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now: connections are refused at once


def _bounds(base: float) -> tuple[float, float]:
    return base * (1 - JITTER), base * (1 + JITTER)


def test_a_broker_that_is_not_there_is_tried_again_within_ten_seconds_however_long(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto()
    down = settings(broker, f"evidock/{uuid.uuid4().hex[:8]}", port=_closed_port())
    with recorded(lambda w: Publisher(connector(db), down, wait=w)) as (publisher, waits):
        seen = waits.take(12)  # an outage of any length: the waits stop growing at 10 s
    delays = [d for d, _ in seen]
    for delay, base in zip(delays, RETRY_DELAYS, strict=False):
        low, high = _bounds(base)
        assert low <= delay <= high
    assert all(_bounds(10.0)[0] <= d <= QUICK_CAP for d in delays[len(RETRY_DELAYS) - 1 :])
    assert all("cannot reach the broker" in problem for _, problem in seen)
    assert publisher.state.connections == 0
    assert QUICK_CAP == 12.0  # what docs/mqtt.md promises


def test_a_refused_account_waits_longer_and_a_broker_gone_starts_the_quick_schedule(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto(username="station", password="s3cret")
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    add_events(db, Topics(prefix).events, 0, 3)
    wrong = settings(broker, prefix, username="station", password="wrong")
    with recorded(lambda w: Publisher(connector(db), wrong, wait=w)) as (_publisher, waits):
        refused = waits.take(5)
        broker.stop()  # now nothing listens: a quick failure
        gone = waits.take(3)
    assert all("refused the station's account" in problem for _, problem in refused)
    for (delay, _), base in zip(refused, [*AUTH_RETRY_DELAYS, 60.0, 60.0], strict=True):
        low, high = _bounds(base)
        assert low <= delay <= high
    # The broker went away while the thread waited: the next attempt or two may still
    # meet it refusing the account; from the first quick failure the schedule is 1, 2, ...
    quick = [d for d, problem in gone if "cannot reach" in problem]
    assert quick and _bounds(1.0)[0] <= quick[0] <= _bounds(1.0)[1]
    assert all(d <= QUICK_CAP for d in quick)
    assert depth(db) == 3  # nothing was sent, nothing lost


def test_a_connection_made_starts_the_schedule_over(
    make_mosquitto: Callable[..., Mosquitto], db: Path
) -> None:
    broker = make_mosquitto()
    prefix = f"evidock/{uuid.uuid4().hex[:8]}"
    with recorded(lambda w: Publisher(connector(db), settings(broker, prefix), wait=w)) as (
        publisher,
        waits,
    ):
        wait_for(lambda: publisher.state.connected, "connected")
        broker.stop()  # the connection ends: a quick failure, then the broker is not there
        first = waits.take(4)
        broker.start()
        waits.allow(1)  # the attempt after the fourth wait finds the broker again
        wait_for(lambda: publisher.state.connected, "connected again")
        broker.stop()
        again = waits.take(1)
    assert [round(d) for d, _ in first][:1] == [1], first
    assert _bounds(10.0)[0] <= first[3][0] <= QUICK_CAP
    assert _bounds(1.0)[0] <= again[0][0] <= _bounds(1.0)[1]
    assert publisher.state.connections == 2
