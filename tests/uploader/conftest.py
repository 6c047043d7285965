"""Real servers for the uploader's tests: a Mosquitto broker and a Ceph RGW.

`rgw` and `mosquitto_broker` live for the whole session (RGW's cold start is ~12 s);
tests share them by using names of their own (buckets, topics, client ids). A test that
stops, kills or pauses a broker makes its own with `make_mosquitto`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from services import Mosquitto, Rgw
from services import mosquitto as mosquitto_service
from services import rgw as rgw_service

INSTALL = "install the test servers first: sh scripts/services.sh (Debian packages)"


@pytest.fixture(scope="session")
def rgw() -> Iterator[Rgw]:
    """A single-node Ceph cluster with radosgw, plain HTTP and HTTPS, one S3 user."""
    if not rgw_service.installed():
        pytest.fail(f"Ceph RGW is not installed: {INSTALL}", pytrace=False)
    gateway = Rgw(tls=True)
    try:
        yield gateway.start()
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """An anonymous broker on a plain loopback port, shared by the session: do not stop it."""
    if not mosquitto_service.installed():
        pytest.fail(f"Mosquitto is not installed: {INSTALL}", pytrace=False)
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """A factory of brokers for one test (options as `Mosquitto`'s), all stopped after it."""
    if not mosquitto_service.installed():
        pytest.fail(f"Mosquitto is not installed: {INSTALL}", pytrace=False)
    made: list[Mosquitto] = []
    numbers = itertools.count()

    def make(**options: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker-{next(numbers)}", **options)
        made.append(broker)
        return broker.start()

    try:
        yield make
    finally:
        for broker in made:
            broker.stop()
