"""Typed station configuration.

Every field is validated and documented; unknown keys are errors (``extra="forbid"``)
so that a typo in a station's config is reported instead of silently ignored.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.api import ApiSection
from config.case_numbers import (
    DEFAULT_EXAMPLE,
    DEFAULT_PARTS,
    DEFAULT_PATTERN,
    CaseNumberError,
    CaseNumberRule,
    check_parts,
    compile_pattern,
)
from config.delivery import BandwidthWindow, check_bandwidth
from config.phrasing import close_matches, either, quoted_list, toml_value
from config.policy import RetentionSection, SensitivitySection
from config.timestamping import TimestampingSection

Algorithm = Literal["sha256", "blake3", "sm3"]

_STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UTC_OFFSET = re.compile(r"^\s*(UTC|GMT|Z)?\s*[+-]\s*\d", re.IGNORECASE)
DEFAULT_TIME_ZONE = "Asia/Shanghai"


def _plain_path(value: object) -> object:
    # Path("") would silently mean the folder evidock was started from.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("an empty path is not allowed; write the folder's full path")
        if "\0" in value:
            raise ValueError(
                "the path contains a NUL character, which no path can hold; "
                "write the folder's full path"
            )
    return value


FolderPath = Annotated[Path, BeforeValidator(_plain_path)]


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    """IANA time zone names this system knows (the tz database, or the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


class Section(BaseModel):
    # NaN and infinity are never a sensible number of seconds, MiB or attempts.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StationSection(Section):
    id: str = Field(
        default="station-01",
        description="Stable identifier of this collection station; written into every "
        "ledger leaf and checkpoint origin. Letters, digits, '.', '_' and '-', at most 64.",
    )
    name: str = Field(default="evidock collection station", description="Human-readable name.")
    place: str = Field(
        default="",
        description="Where the station stands (e.g. the unit's address); used as the capture "
        "place of a clip whose recorder gave no location.",
    )
    language: Literal["zh-CN", "en"] = Field(
        default="zh-CN", description="Language of messages shown to officers and in reports."
    )
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        description="IANA time zone where the station stands (e.g. 'Asia/Shanghai', which "
        "all of mainland China uses): the zone of its recorders' local clocks and of local "
        "times shown to people. Ledger times stay UTC.",
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        # fullmatch: "$" would let a trailing newline into every leaf's station field.
        if not _STATION_ID.fullmatch(value):
            raise ValueError(
                f"{toml_value(value)} is not a usable station id; use 1-64 letters, digits, "
                '".", "_" or "-", starting with a letter or digit, such as "bj-cy-02"'
            )
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        known = known_time_zones()
        if value in known:
            return value
        if not known:
            raise ValueError(
                "this system has no time zone database; install it (apt install tzdata, "
                "or pip install tzdata into evidock's environment)"
            )
        example = f'"{DEFAULT_TIME_ZONE}" (all of mainland China)'
        if _UTC_OFFSET.match(value):
            hint = (
                "an offset is not a time zone (it cannot follow a place's rules over the "
                f"years); write the IANA name of the station's place, such as {example}"
            )
        else:
            near = close_matches(value, known, limit=1)
            hint = f"did you mean {either(near)}? Otherwise write" if near else "write"
            hint += f" an IANA time zone name, such as {example}"
        raise ValueError(f"{toml_value(value)} is not a known time zone; {hint}")


class PathsSection(Section):
    data_dir: FolderPath = Field(
        default=Path("/var/lib/evidock"),
        description="Folder holding the station database, the evidence store and keys.",
    )


class HashingSection(Section):
    algorithms: tuple[Algorithm, ...] = Field(
        default=("sha256", "blake3"),
        description="Digests computed in the single read of each file. sha256 and blake3 "
        "are always computed; add sm3 for GB/T 32905.",
    )
    read_size_kib: int = Field(
        default=1024,
        strict=True,
        ge=4,
        le=65536,
        description="Size of one read from the recorder, in KiB.",
    )
    window_mib: int = Field(
        default=8,
        strict=True,
        ge=1,
        le=1024,
        description="Size of a chunk-hash window in MiB: a SHA-256 is kept per window to "
        "locate later corruption and to resume an interrupted copy.",
    )
    verify: Literal["reread", "none"] = Field(
        default="reread",
        description="'reread' re-reads each committed copy from disk (not the page cache) "
        "and compares digests; 'none' trusts the write.",
    )
    buffer_budget_mib: int = Field(
        default=64,
        strict=True,
        ge=4,
        le=4096,
        description="Memory shared by all concurrent copies for read buffers, in MiB.",
    )

    staging_max_age_hours: float = Field(
        default=168.0,
        strict=True,
        gt=0,
        le=24 * 365,
        description="Partial copies kept for resume are swept at start-up once older than "
        "this; the recorder still holds the file, so docking it again copies it anew.",
    )

    @field_validator("algorithms")
    @classmethod
    def _required_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        missing = [name for name in ("sha256", "blake3") if name not in value]
        if missing:
            raise ValueError(
                f"{quoted_list(missing)} must be in the list: sha256 and blake3 are always "
                'computed; write ["sha256", "blake3"], adding "sm3" if your agency needs it'
            )
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"{quoted_list(twice)} is listed twice; write each algorithm once")
        return value

    @model_validator(mode="after")
    def _budget_holds_a_read(self) -> HashingSection:
        # The copy engine's buffers are cut from the budget, one read each.
        if self.buffer_budget_mib * 1024 < self.read_size_kib:
            raise ValueError(
                f"buffer_budget_mib = {self.buffer_budget_mib} cannot hold one read of "
                f"read_size_kib = {self.read_size_kib}; raise buffer_budget_mib to at least "
                f"{-(-self.read_size_kib // 1024)} or lower read_size_kib"
            )
        return self


class DockingSection(Section):
    mount_root: FolderPath = Field(
        default=Path("/media/evidock"),
        description="Folder under which recorder volumes appear when docked (it must "
        "exist); each subfolder holding a recorder layout is ingested.",
    )
    settle_seconds: float = Field(
        default=1.0,
        strict=True,
        ge=0,
        le=60,
        description="Quiet time after a volume appears before its files are read.",
    )
    rescan_seconds: float = Field(
        default=10.0,
        strict=True,
        gt=0,
        le=3600,
        description="Interval of full rescans of the mount root, in addition to file events.",
    )
    recorder_profile: str = Field(
        default="generic",
        description="Recorder profile from config/recorders.toml used when a volume does "
        "not identify its model.",
    )
    detector: Literal["mount_root", "usb"] = Field(
        default="mount_root",
        description="How docked recorders are found: 'usb' watches the USB bus (udev, or "
        "sysfs polling where no udev runs) and mounts each recorder read-only under "
        "mount_root itself; 'mount_root' ingests folders something else mounts there.",
    )
    usb_poll_seconds: float = Field(
        default=1.0,
        strict=True,
        gt=0,
        le=60,
        description="Interval of the USB bus enumeration where no udev daemon sends events "
        "(and the safety net where one does).",
    )
    usb_sysfs_root: FolderPath = Field(
        default=Path("/sys"),
        description="Where the USB detector reads the kernel's sysfs: /sys on a station; "
        "another folder only for a simulated bus (tests, training).",
    )
    usb_dev_root: FolderPath = Field(
        default=Path("/dev"),
        description="Where the USB detector finds device nodes: /dev on a station; another "
        "folder only for a simulated bus.",
    )
    usb_example_ids: bool = Field(
        default=False,
        description="Accept the placeholder USB ids of the shipped example profiles as "
        "recorders: for a simulated bus only, never on a station.",
    )
    unknown_devices: Literal["ignore", "ingest"] = Field(
        default="ignore",
        description="A USB mass-storage device no recorder profile knows (a USB stick, a "
        "phone): 'ignore' logs it and lists it for IT; 'ingest' copies it like a recorder.",
    )
    slots: dict[str, int | str] = Field(
        default_factory=dict,
        description='USB port path to slot number or label, e.g. "1-1.3" = 3, so every '
        "status can say which slot a recorder sits in.",
    )
    recheck: Literal["metadata", "content"] = Field(
        default="metadata",
        description="A recorder still docked from a finished session (e.g. charging across a "
        "restart): 'metadata' trusts files whose path, size and modification time match "
        "what was copied and reads only the rest; 'content' reads every file again.",
    )
    wipe: Literal["never", "after_verified", "after_central_confirmed"] = Field(
        default="after_central_confirmed",
        description="When files may be removed from a recorder: never; once their copies "
        "are verified and in the ledger; or once central storage confirmed them too. A "
        "recorder profile may be stricter.",
    )


class LedgerSection(Section):
    checkpoint_minutes: int = Field(
        default=15,
        strict=True,
        ge=1,
        le=1440,
        description="A signed checkpoint is made after every docking session and at least "
        "this often while leaves are added.",
    )


class DeliverySection(Section):
    # Target kinds this evidock delivers to, and those named but not built yet.
    TARGETS: ClassVar[tuple[str, ...]] = ("folder", "s3")
    PLANNED_TARGETS: ClassVar[dict[str, str]] = {}

    target: str = Field(
        default="folder",
        description="Where clips go after ingest: the name of a delivery target. 'folder' "
        "copies them into central_dir (a mounted share; the embedded default); 's3' uploads "
        "them to s3_bucket at s3_endpoint.",
    )
    central_dir: FolderPath = Field(
        default=Path("/var/lib/evidock/central"),
        description="Central storage folder for the 'folder' target: a mounted share off "
        "this station's disk (check-config warns when it is on the station's own disk).",
    )
    anchor_dir: FolderPath | None = Field(
        default=None,
        description="Folder where signed checkpoints are handed over as anchors; defaults "
        "to central_dir/anchors.",
    )
    max_attempts: int = Field(
        default=20,
        strict=True,
        ge=1,
        le=10000,
        description="Attempts before an upload job is parked.",
    )
    workers: int = Field(
        default=2,
        strict=True,
        ge=1,
        le=16,
        description="Uploads the daemon sends at once, each its own job and claim; they "
        "share the bandwidth limit (docs/queue.md).",
    )
    bandwidth: str = Field(
        default="unlimited",
        description='Upload rate limit outside bandwidth_schedule: e.g. "20Mbit", "2.5MB", '
        '"512KiB" (per second) or "unlimited" (docs/queue.md).',
    )
    bandwidth_schedule: tuple[BandwidthWindow, ...] = Field(
        default=(),
        description="Windows of another rate in the station's time zone, e.g. [{from = "
        '"20:00", to = "07:00", rate = "unlimited"}]; a window may cross midnight; the first '
        "holding a moment wins.",
    )
    # The 's3' target (S3-compatible object storage: Ceph RGW, MinIO, cloud).
    s3_endpoint: str = Field(
        default="",
        description="URL of the S3 service for target 's3', e.g. 'https://s3.example:7480'.",
    )
    s3_bucket: str = Field(default="", description="Bucket receiving clips and anchors (s3).")
    s3_region: str = Field(default="us-east-1", description="Region named in S3 signatures.")
    s3_addressing_style: Literal["path", "virtual"] = Field(
        default="path",
        description="'path' (http://host/bucket/key, what RGW and MinIO expect) or 'virtual' "
        "(http://bucket.host/key).",
    )
    s3_part_size_mib: int = Field(
        default=16,
        strict=True,
        ge=5,
        le=5120,
        description="Multipart part size; a smaller clip goes in one PUT. 5 is S3's smallest.",
    )
    s3_checksums: Literal["when_required", "when_supported"] = Field(
        default="when_required",
        description="boto3's flexible checksums: 'when_required' (Content-MD5 on every put "
        "and part, checked by Ceph RGW 16) or 'when_supported' (CRC32 as well; RGW 16 "
        "refuses it over HTTPS).",
    )
    s3_ca_file: FolderPath | None = Field(
        default=None, description="CA bundle (PEM) trusted for an HTTPS endpoint (default: system)."
    )
    s3_credentials: str = Field(
        default="evidock-s3",
        description="Where the S3 access key is read at start, never the key itself: a bare "
        "name is a systemd credential ($CREDENTIALS_DIRECTORY/NAME, LoadCredential=), a full "
        "path a file only its owner may read (mode 0600 or 0400); it holds the lines "
        "aws_access_key_id=... and aws_secret_access_key=... (docs/delivery-s3.md).",
    )
    require_object_lock: bool = Field(
        default=True,
        description="Refuse to upload evidence into an S3 bucket without Object Lock.",
    )
    lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = Field(
        default="COMPLIANCE", description="Object Lock mode set on each uploaded clip's version."
    )
    lock_days: int = Field(
        default=730,
        strict=True,
        ge=1,
        le=36600,
        description="Days an uploaded clip's version is locked when its retention (agent "
        "retention) has no date yet: an open case, or permanent; else until its keep-until.",
    )
    anchor_lock_days: int = Field(
        default=3650,
        strict=True,
        ge=1,
        le=36600,
        description="Days each anchor (signed checkpoint) stays locked, in COMPLIANCE mode.",
    )
    legal_hold_sensitivities: tuple[Literal["normal", "privacy", "secret"], ...] = Field(
        default=("secret",),
        description="A clip of one of these sensitivities (its own mark or a case's) gets a "
        "legal hold on its uploaded version (lifted only by a person, outside evidock).",
    )

    @field_validator("bandwidth")
    @classmethod
    def _bandwidth(cls, value: str) -> str:
        return check_bandwidth(value)

    @field_validator("s3_credentials")
    @classmethod
    def _s3_credential(cls, value: str) -> str:
        if value.startswith("/") and "\0" not in value:
            return value
        if not _CREDENTIAL_NAME.fullmatch(value):
            raise ValueError(
                f"{toml_value(value)} is neither a credential name nor a full path; write a "
                'systemd credential name such as "evidock-s3" or a full path'
            )
        return value

    @model_validator(mode="after")
    def _s3_named(self) -> DeliverySection:
        if self.target == "s3":
            missing = [k for k in ("s3_endpoint", "s3_bucket") if not getattr(self, k).strip()]
            if missing:
                raise ValueError(
                    f'target = "s3" needs {" and ".join(missing)}; set them in [delivery]'
                )
        return self

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value in cls.TARGETS:
            return value
        choices = either(cls.TARGETS)
        if value in cls.PLANNED_TARGETS:
            raise ValueError(
                f"{toml_value(value)} ({cls.PLANNED_TARGETS[value]}) is not built into this "
                f"evidock yet; write {choices} and set central_dir to the mounted central storage"
            )
        raise ValueError(f"{toml_value(value)} is not allowed; write {choices}")


class CasesSection(Section):
    number_parts: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PARTS),
        description="The named parts of number_pattern, each a regular expression "
        "(Python syntax) matched against the normalised number; parts given here replace "
        "the default of the same name, the others keep theirs (agency, doctype, year, seq).",
    )
    number_pattern: str = Field(
        default=DEFAULT_PATTERN,
        validate_default=True,
        description="The agency's case-number rule, checked wherever a number is entered "
        "(case create, link, unlink, ingest --case), after normalising (year in 〔〕, "
        "other brackets as (), full-width digits as ASCII, no spaces): {part} placeholders "
        'and literal text. "" accepts any non-empty number.',
    )
    number_example: str = Field(
        default=DEFAULT_EXAMPLE,
        validate_default=True,
        description="A number that follows number_pattern, shown when a number is refused.",
    )

    @field_validator("number_parts", mode="before")
    @classmethod
    def _merge_parts(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**DEFAULT_PARTS, **value}
        return value

    @field_validator("number_parts")
    @classmethod
    def _check_parts(cls, value: dict[str, str]) -> dict[str, str]:
        check_parts(value)
        return value

    @field_validator("number_pattern")
    @classmethod
    def _check_pattern(cls, value: str, info: ValidationInfo) -> str:
        parts = info.data.get("number_parts")
        if value and parts is not None:  # bad parts are reported on their own key
            compile_pattern(value, parts)
        return value

    @field_validator("number_example")
    @classmethod
    def _check_example(cls, value: str, info: ValidationInfo) -> str:
        pattern, parts = info.data.get("number_pattern"), info.data.get("number_parts")
        if not pattern or parts is None:
            return value
        try:
            CaseNumberRule(pattern, parts, value).check(value)
        except CaseNumberError:
            raise ValueError(
                f"{toml_value(value)} does not follow number_pattern {toml_value(pattern)}; "
                "write a number of the agency's that does, or fix the pattern"
            ) from None
        return value

    def rule(self) -> CaseNumberRule:
        """The rule new case numbers are checked against."""
        return CaseNumberRule(self.number_pattern, self.number_parts, self.number_example)


class MqttSection(Section):
    host: str = Field(
        default="",
        description="Host name or address of the agency's MQTT broker; empty: the station "
        "publishes nothing over MQTT (docs/mqtt.md).",
    )
    port: int = Field(
        default=1883,
        strict=True,
        ge=1,
        le=65535,
        description="The broker's port (1883 plain, 8883 is the usual TLS port).",
    )
    tls: bool = Field(
        default=False,
        description="Connect over TLS, trusting the system's CAs (or ca_file when given).",
    )
    ca_file: FolderPath | None = Field(
        default=None,
        description="CA certificate (PEM) the broker's certificate must chain to; "
        "setting it turns TLS on.",
    )
    username: str = Field(
        default="",
        description="The station's account on the broker. Commands from IT are taken only "
        "over a connection authenticated with it (and the broker's ACL, docs/mqtt.md).",
    )
    password_file: str = Field(
        default="",
        description="Where the password is read at start, never the password itself: a "
        "bare name is a systemd credential ($CREDENTIALS_DIRECTORY/NAME, LoadCredential=), "
        "a full path a file only its owner may read (mode 0600 or 0400).",
    )
    topic_prefix: str = Field(
        default="",
        description="Topics are PREFIX/status, /events, /checkpoints, /commands and "
        "/replies/<request id>; empty: evidock/<station id>.",
    )
    keepalive_seconds: int = Field(
        default=60,
        strict=True,
        ge=5,
        le=3600,
        description="MQTT keepalive: the broker publishes the station's last will "
        "(status offline) about 1.5 times this after the station went silent.",
    )
    max_in_flight: int = Field(
        default=20,
        strict=True,
        ge=1,
        le=1000,
        description="Messages published and not yet acknowledged by the broker, at most.",
    )
    status_seconds: int = Field(
        default=60,
        strict=True,
        ge=5,
        le=3600,
        description="The retained status is published on every change and at least this often.",
    )
    incidents_topic: str = Field(
        default="",
        description="An agency-wide incident feed topic the station also takes incidents "
        "from, besides PREFIX/incidents (an exact topic, no + or # wildcard); empty: none.",
    )

    @field_validator("incidents_topic")
    @classmethod
    def _exact_topic(cls, value: str) -> str:
        if any(ch in value for ch in "+#\0") or value != value.strip():
            raise ValueError(
                f"{toml_value(value)} is not one exact topic; write it without + or # "
                'wildcards or spaces, such as "agency/dispatch/incidents"'
            )
        return value

    @field_validator("host", "username")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if value != value.strip() or "\0" in value:
            raise ValueError(f"{toml_value(value)} has spaces around it; write it without")
        return value

    @field_validator("password_file")
    @classmethod
    def _credential(cls, value: str) -> str:
        if not value:
            return value
        if "/" in value:
            if not value.startswith("/") or "\0" in value:
                raise ValueError(
                    f"{toml_value(value)} is neither a credential name nor a full path; write "
                    'a systemd credential name such as "mqtt-password" or a full path'
                )
            return value
        if not _CREDENTIAL_NAME.fullmatch(value):
            raise ValueError(
                f"{toml_value(value)} is not a usable credential name; use letters, digits, "
                '".", "_" or "-", such as "mqtt-password" (LoadCredential=mqtt-password:...)'
            )
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value:
            return value
        levels = value.split("/")
        if any(c in value for c in "+#\0") or value.startswith("$") or "" in levels:
            raise ValueError(
                f"{toml_value(value)} is not a usable topic prefix; write topic levels "
                'joined by "/" without "+", "#", empty levels or a leading "$", such as '
                '"evidock/bj-cy-02"'
            )
        return value

    @model_validator(mode="after")
    def _account(self) -> MqttSection:
        if bool(self.username) != bool(self.password_file):
            missing = "password_file" if self.username else "username"
            raise ValueError(
                f"username and password_file go together; set {missing} too, or neither "
                "(an anonymous broker: commands from IT are then not taken)"
            )
        return self

    def prefix(self, station_id: str) -> str:
        """The topic prefix: the configured one, else evidock/<station id>."""
        return self.topic_prefix or f"evidock/{station_id}"


class StationConfig(Section):
    station: StationSection = Field(default_factory=StationSection, description="Identity.")
    paths: PathsSection = Field(default_factory=PathsSection, description="Local storage.")
    hashing: HashingSection = Field(default_factory=HashingSection, description="Copy+hash.")
    docking: DockingSection = Field(default_factory=DockingSection, description="Detection.")
    ledger: LedgerSection = Field(default_factory=LedgerSection, description="Ledger.")
    delivery: DeliverySection = Field(default_factory=DeliverySection, description="Upload.")
    cases: CasesSection = Field(default_factory=CasesSection, description="Case numbers.")
    sensitivity: SensitivitySection = Field(
        default_factory=SensitivitySection, description="Who may see privacy and secret footage."
    )
    retention: RetentionSection = Field(
        default_factory=RetentionSection, description="How long footage is kept."
    )
    mqtt: MqttSection = Field(
        default_factory=MqttSection, description="Status, events and commands over MQTT."
    )
    timestamping: TimestampingSection = Field(
        default_factory=TimestampingSection, description="RFC 3161 trusted timestamps."
    )
    api: ApiSection = Field(default_factory=ApiSection, description="The management API.")
