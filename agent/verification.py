"""Verifying a station's data dir: the ledger, its checkpoints, given anchors and the
evidence store. The one entry point for ``evidock verify`` and the demo's last step;
also the reading of what an auditor hands the verifiers (public keys, anchors).

Anchors come as files, as folders, or from central storage itself (``central``: the
station's delivery target, read back; ``s3``: the same, which must be S3). Many stations
share one bucket or folder, so a folder or the target is read for the station's own
anchors only: those of ``anchors/<station id>/<key hash>/`` and, of the older ones named
by size alone, those whose checkpoint names this station as its origin. Another station's
anchors say nothing about this ledger and are left out (counted in a note); an anchor
file named on its own is always taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from agent.anchoring import KEYS_DIR
from agent.database import DB_NAME, open_readonly
from agent.delivery import delivery_target
from agent.identity import ledger_station
from agent.station import Station
from agent.timestamping import timestamp_lines, trust
from config import StationConfig
from config.timestamping import TimestampingSection
from hashing import BufferBudget, EvidenceStore, HashOptions
from ledger import (
    PUBLIC_NAME,
    Anchor,
    LedgerError,
    PublicKeyFile,
    TimestampError,
    VerifyReport,
    check_token,
    origin_for,
    read_public_key,
    report_text,
    verify_station,
)
from uploader import Target

# --anchor words that read the anchors back from the station's delivery target.
CENTRAL = "central"
S3 = "s3"


class VerificationInputError(Exception):
    """A public key or anchor file given to the verifier cannot be used."""


@dataclass(frozen=True)
class Verification:
    report: VerifyReport
    # What the checkpoints' trusted timestamps say (agent.timestamping): a line each, and
    # whether any token is INVALID (the station then fails its verification: exit 1).
    timestamps: tuple[str, ...] = ()
    timestamp_invalid: bool = False

    @property
    def ok(self) -> bool:
        """Exit 0: intact, every leaf signed by the trusted key (see VerifyReport), and no
        trusted timestamp found invalid."""
        return self.report.ok and not self.timestamp_invalid

    @property
    def status(self) -> int:
        return 1 if self.timestamp_invalid else self.report.status

    @property
    def lines(self) -> list[str]:
        return report_text(self.report).splitlines() + list(self.timestamps)


def read_key(path: Path) -> PublicKeyFile:
    """A public key file (PEM or signed-note verifier key); VerificationInputError if not."""
    try:
        return read_public_key(path)
    except LedgerError as exc:
        raise VerificationInputError(str(exc)) from None
    except UnsupportedAlgorithm:
        raise VerificationInputError(f"{path} is not an Ed25519 public key") from None


def anchor_paths(paths: Sequence[Path]) -> list[Path]:
    """Anchor files as given; a folder stands for the ``*.anchor`` files in it and below
    it (``anchors/<station id>/<key hash>/``)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("**/*.anchor") if p.is_file())
            if not found:
                raise VerificationInputError(
                    f"no *.anchor files in {path}: give the folder of anchors from central "
                    "storage, or anchor files"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def read_labeled_anchors(paths: Sequence[Path]) -> list[tuple[str, Anchor]]:
    """(file name, anchor) for every anchor file given (folders expanded)."""
    anchors = []
    for path in anchor_paths(paths):
        try:
            anchors.append((path.name, Anchor.parse(path.read_bytes().decode("utf-8"))))
        except OSError as exc:
            raise VerificationInputError(f"cannot read anchor {path}: {exc.strerror}") from None
        except (LedgerError, ValueError) as exc:
            raise VerificationInputError(f"{path} is not an anchor: {exc}") from None
    return anchors


def read_anchors(paths: Sequence[Path]) -> list[Anchor]:
    return [anchor for _, anchor in read_labeled_anchors(paths)]


@dataclass(frozen=True)
class CentralAnchor(Anchor):
    """An anchor read back from central storage, with where it is held and the
    trusted-timestamp token kept beside it (S3), checked by ``verify_data_dir``."""

    location: str = ""
    published: str = ""  # the text as held: the token covers exactly these bytes
    token: bytes | None = None


@dataclass
class StationAnchors:
    """The anchors found for one station, and what was left out."""

    station_id: str
    anchors: list[Anchor]
    notes: list[str]


def station_anchors(
    data_dir: Path, given: Sequence[str], config: Callable[[], StationConfig]
) -> StationAnchors:
    """The anchors each ``--anchor`` value names for the station of ``data_dir``: a file
    as it is; a folder, or central storage (``central``/``s3``, through the station's
    ``config``, asked only then), for this station's anchors."""
    if not given:
        return StationAnchors("", [], [])
    station_id = ledger_station(data_dir / DB_NAME)
    if station_id is None:
        raise VerificationInputError(
            f"the ledger in {data_dir} names no station: there is nothing to anchor yet"
        )
    found = StationAnchors(station_id, [], [])
    for value in given:
        if value in (CENTRAL, S3):
            _from_central(found, value, config(), data_dir)
        elif Path(value).is_dir():
            labeled = read_labeled_anchors([Path(value)])
            _keep_own(found, [(f"{value}/{name}", a) for name, a in labeled], value)
        else:
            found.anchors.extend(read_anchors([Path(value)]))
    return found


def _keep_own(found: StationAnchors, labeled: list[tuple[str, Anchor]], where: str) -> None:
    origin = origin_for(found.station_id)
    own = [a for _, a in labeled if _origin(a) == origin]
    if not own:
        raise VerificationInputError(
            f"{where} holds no anchor of station {found.station_id} ({len(labeled)} of other "
            "stations): give the folder or bucket its anchors were published to"
        )
    if len(own) < len(labeled):
        found.notes.append(
            f"{where}: {len(labeled) - len(own)} anchor(s) of other stations left out"
        )
    known = {a.text() for a in found.anchors}
    found.anchors.extend(a for a in own if a.text() not in known)


def _origin(anchor: Anchor) -> str | None:
    try:
        return anchor.checkpoint.origin
    except LedgerError:
        return None


def _from_central(found: StationAnchors, word: str, config: StationConfig, data_dir: Path) -> None:
    if word == S3 and config.delivery.target != S3:
        raise VerificationInputError(
            f"station {found.station_id} delivers to its {config.delivery.target} target, not "
            "S3: give --anchor central (its anchors are read back from there)"
        )
    target = central_target(config, data_dir)
    labeled: list[tuple[str, Anchor]] = []
    for held in target.anchors(found.station_id):
        try:
            base = Anchor.parse(held.text)
            anchor = CentralAnchor(
                base.note, base.previous_size, base.proof, held.location, held.text, held.token
            )
            labeled.append((held.location, anchor))
        except (LedgerError, ValueError) as exc:
            raise VerificationInputError(
                f"{held.location} is not an anchor ({exc}): central storage holds something "
                "else under this station's anchors — investigate it"
            ) from None
    _keep_own(found, labeled, f"{word} ({target.name})")


def central_target(config: StationConfig, data_dir: Path) -> Target:
    """The station's delivery target, built from its config without opening the station
    for writing (a verifier writes nothing)."""
    options = HashOptions.from_config(config.hashing)
    conn = open_readonly(data_dir / DB_NAME)
    try:
        station = Station(
            config,
            data_dir,
            EvidenceStore(data_dir / "store"),
            BufferBudget(options.read_size, options.read_size),
            options,
            conn,
        )
        return delivery_target(station)
    finally:
        conn.close()


def verify_data_dir(
    data_dir: Path,
    *,
    pubkey: Path | None = None,
    anchors: Sequence[Path] = (),
    read: Sequence[Anchor] = (),
    require_anchor: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    timestamping: TimestampingSection | None = None,
) -> Verification:
    """Verify ``data_dir`` read-only; trusts only ``pubkey`` (or says the key came from
    the station itself) and the anchors given (``anchors`` files, ``read`` already read).
    With ``timestamping`` (the station's TSA settings) the checkpoints' trusted
    timestamps are checked too."""
    if pubkey is not None:
        key, source = read_key(pubkey), f"given with --pubkey ({pubkey})"
    else:
        station_pub = data_dir / KEYS_DIR / PUBLIC_NAME
        if not station_pub.exists():
            raise VerificationInputError(
                f"no public key at {station_pub}: the station has not signed a checkpoint "
                "yet; give the published key with --pubkey"
            )
        key = read_key(station_pub)
        source = (
            f"taken from the station itself ({station_pub}), not pinned: compare its "
            "fingerprint with the published key, or give it with --pubkey"
        )
    parsed = [*read_anchors(anchors), *read]
    conn = open_readonly(data_dir / DB_NAME)
    try:
        report = verify_station(
            conn,
            key,
            parsed,
            EvidenceStore(data_dir / "store"),
            key_source=source,
            require_anchor=require_anchor,
            progress=progress,
        )
        stamps: list[str] = []
        invalid = False
        if timestamping is not None:
            stamps, invalid = timestamp_lines(
                conn, timestamping, data_dir=data_dir, anchors=anchor_paths(anchors)
            )
            held, held_invalid = _central_token_lines(read, timestamping)
            stamps, invalid = stamps + held, invalid or held_invalid
    finally:
        conn.close()
    return Verification(report, tuple(stamps), invalid)


def _central_token_lines(
    read: Sequence[Anchor], settings: TimestampingSection
) -> tuple[list[str], bool]:
    """A line per anchor read back from central storage with a token beside it
    (timestamped at genTime by the TSA, or INVALID), as ``timestamp_lines`` says of
    anchor files; and whether any is INVALID."""
    tokened = [a for a in read if isinstance(a, CentralAnchor) and a.token is not None]
    if not tokened:
        return [], False
    try:
        roots, tsa_cert = trust(settings)
    except TimestampError as exc:
        return [f"trusted timestamps of central anchors not checked: {exc}"], False
    lines, invalid = [], False
    for anchor in tokened:
        assert anchor.token is not None
        try:
            check = check_token(
                anchor.token,
                anchor.published.encode("utf-8"),
                roots,
                tsa_cert=tsa_cert,
                policy=settings.policy_oid or None,
            )
        except TimestampError as exc:
            invalid = True
            lines.append(f"anchor {anchor.location}: trusted timestamp INVALID: {exc}")
            continue
        lines.append(
            f"anchor {anchor.location}: timestamped at {check.gen_time_text()} by {check.tsa}"
        )
    return lines, invalid
