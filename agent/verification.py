"""Verifying a station's data dir: the ledger, its checkpoints, given anchors and the
evidence store. The one entry point for ``evidock verify`` and the demo's last step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.anchoring import KEYS_DIR
from agent.database import DB_NAME, open_readonly
from hashing import EvidenceStore
from ledger import Anchor, LedgerError, read_public_key, verify_station
from ledger.keys import PUBLIC_NAME
from ledger.report import VerifyReport, report_text


class VerificationInputError(Exception):
    """A public key or anchor file given to the verifier cannot be used."""


@dataclass(frozen=True)
class Verification:
    report: VerifyReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def lines(self) -> list[str]:
        return report_text(self.report).splitlines()


def anchor_paths(paths: Sequence[Path]) -> list[Path]:
    """Anchor files as given; a folder stands for the ``*.anchor`` files in it."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.anchor")) if path.is_dir() else [path])
    return files


def read_anchors(paths: Sequence[Path]) -> list[Anchor]:
    anchors = []
    for path in anchor_paths(paths):
        try:
            anchors.append(Anchor.parse(path.read_text("utf-8")))
        except OSError as exc:
            raise VerificationInputError(f"cannot read anchor {path}: {exc.strerror}") from None
        except LedgerError as exc:
            raise VerificationInputError(f"{path} is not an anchor: {exc}") from None
    return anchors


def verify_data_dir(
    data_dir: Path,
    *,
    pubkey: Path | None = None,
    anchors: Sequence[Path] = (),
    progress: Callable[[str, int, int], None] | None = None,
) -> Verification:
    """Verify ``data_dir`` read-only; trusts only ``pubkey`` (or says the key came from
    the station itself) and the ``anchors`` given."""
    if pubkey is not None:
        key, source = read_public_key(pubkey), "given"
    else:
        station_pub = data_dir / KEYS_DIR / PUBLIC_NAME
        if not station_pub.exists():
            raise VerificationInputError(
                f"no public key at {station_pub}: the station has not signed a checkpoint "
                "yet; give the published key with --pubkey"
            )
        key = read_public_key(station_pub)
        source = f"taken from the station itself ({station_pub}): compare it with the published key"
    parsed = read_anchors(anchors)
    conn = open_readonly(data_dir / DB_NAME)
    try:
        report = verify_station(
            conn,
            key,
            parsed,
            EvidenceStore(data_dir / "store"),
            key_source=source,
            progress=progress,
        )
    finally:
        conn.close()
    return Verification(report)
