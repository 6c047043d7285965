"""MQTT: the station's topics, its broker account and the settings its publisher uses.

The durable side is ``uploader.mqtt_outbox`` (the ``mqtt_outbox`` table); the sending side
``uploader.mqtt_publisher`` (one thread, QoS 1, PUBACK-counted). What goes into the outbox
is the agent's business (``agent.telemetry``). Topics and payloads: docs/mqtt.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from config.models import MqttSection
from config.problems import ConfigError, ConfigProblem
from uploader.mqtt_outbox import SCHEMA_VERSION
from uploader.mqtt_publisher import BrokerSettings

CREDENTIALS_VARIABLE: Final = "CREDENTIALS_DIRECTORY"
REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True)
class Topics:
    """The station's topics under its prefix (``evidock/<station id>`` by default)."""

    prefix: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def checkpoints(self) -> str:
        return f"{self.prefix}/checkpoints"

    @property
    def commands(self) -> str:
        return f"{self.prefix}/commands"

    @property
    def incidents(self) -> str:
        """The station's own incident feed (the agency may add a topic of its own)."""
        return f"{self.prefix}/incidents"

    def reply(self, request_id: str) -> str:
        """Where the answer to one command goes; the id is checked (no "/", "+", "#")."""
        if not REQUEST_ID.fullmatch(request_id):
            raise ValueError(f"{request_id!r} is not a usable request id")
        return f"{self.prefix}/replies/{request_id}"


def will_payload(station_id: str) -> bytes:
    """The last will: the retained status the broker publishes if the station dies."""
    body = {"schema": SCHEMA_VERSION, "state": "offline", "station": station_id, "clean": False}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_password(
    section: MqttSection, environ: Mapping[str, str] | None = None, *, source: str = "<config>"
) -> str | None:
    """The broker password, read where ``[mqtt] password_file`` says; None without one.

    A bare name is a systemd credential (``$CREDENTIALS_DIRECTORY/NAME``); a full path must
    be a regular file only its owner can read or write (mode 0600 or 0400). Anything else
    is a ConfigError naming ``mqtt.password_file``, so a station never starts with a
    secret others can read or with a password it cannot find."""
    spec = section.password_file
    if not spec:
        return None
    env = os.environ if environ is None else environ

    def refuse(reason: str) -> ConfigError:
        return ConfigError(source, [ConfigProblem("mqtt.password_file", reason)])

    if "/" in spec:
        path = Path(spec)
        try:
            info = path.stat()
        except OSError as exc:
            raise refuse(f"cannot read {spec}: {exc.strerror}; write the password there") from None
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"{spec} is not a file; point it at the file holding the password")
        if info.st_mode & 0o077:
            raise refuse(
                f"{spec} can be read by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run chmod 600 {spec}"
            )
    else:
        folder = env.get(CREDENTIALS_VARIABLE)
        if not folder:
            raise refuse(
                f"{spec!r} names a systemd credential, but ${CREDENTIALS_VARIABLE} is not set; "
                f"add LoadCredential={spec}:/etc/evidock/{spec} to the service, or give a "
                "full path to a file of mode 0600"
            )
        path = Path(folder) / spec
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"cannot read the password from {path}: {exc}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise refuse(f"{path} is empty; write the station's broker password in it")
    return password


def incident_topics(section: MqttSection, station_id: str) -> tuple[str, ...]:
    """Where incident feeds come from: ``<prefix>/incidents``, and the agency-wide topic
    of ``[mqtt] incidents_topic`` when the config has one (an exact topic, no wildcard)."""
    own = Topics(section.prefix(station_id)).incidents
    agency = str(getattr(section, "incidents_topic", "") or "")
    return (own,) if agency in ("", own) else (own, agency)


def broker_settings(section: MqttSection, station_id: str, password: str | None) -> BrokerSettings:
    """What the publisher needs, from ``[mqtt]``. Commands and incident feeds are
    subscribed to only over an authenticated connection (a username): on an anonymous
    broker anyone could send them."""
    topics = Topics(section.prefix(station_id))
    authenticated = bool(section.username)
    return BrokerSettings(
        host=section.host,
        port=section.port,
        client_id=f"evidock-{station_id}",
        will_topic=topics.status,
        will_payload=will_payload(station_id),
        username=section.username or None,
        password=password,
        tls=section.tls or section.ca_file is not None,
        ca_file=str(section.ca_file) if section.ca_file is not None else None,
        keepalive=section.keepalive_seconds,
        max_in_flight=section.max_in_flight,
        subscribe=(topics.commands, *incident_topics(section, station_id)) if authenticated else (),
    )
