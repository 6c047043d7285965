"""Verifying a station's data dir: the ledger, its checkpoints, given anchors and the
evidence store. The one entry point for ``evidock verify`` and the demo's last step;
also the reading of what an auditor hands the verifiers (public keys, anchors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from agent.anchoring import KEYS_DIR
from agent.database import DB_NAME, open_readonly
from hashing import EvidenceStore
from ledger import (
    PUBLIC_NAME,
    Anchor,
    LedgerError,
    PublicKeyFile,
    VerifyReport,
    read_public_key,
    report_text,
    verify_station,
)


class VerificationInputError(Exception):
    """A public key or anchor file given to the verifier cannot be used."""


@dataclass(frozen=True)
class Verification:
    report: VerifyReport

    @property
    def ok(self) -> bool:
        """Exit 0: intact, and every leaf signed by the trusted key (see VerifyReport)."""
        return self.report.ok

    @property
    def status(self) -> int:
        return self.report.status

    @property
    def lines(self) -> list[str]:
        return report_text(self.report).splitlines()


def read_key(path: Path) -> PublicKeyFile:
    """A public key file (PEM or signed-note verifier key); VerificationInputError if not."""
    try:
        return read_public_key(path)
    except LedgerError as exc:
        raise VerificationInputError(str(exc)) from None
    except UnsupportedAlgorithm:
        raise VerificationInputError(f"{path} is not an Ed25519 public key") from None


def anchor_paths(paths: Sequence[Path]) -> list[Path]:
    """Anchor files as given; a folder stands for the ``*.anchor`` files in it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.anchor"))
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


def verify_data_dir(
    data_dir: Path,
    *,
    pubkey: Path | None = None,
    anchors: Sequence[Path] = (),
    require_anchor: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Verification:
    """Verify ``data_dir`` read-only; trusts only ``pubkey`` (or says the key came from
    the station itself) and the ``anchors`` given."""
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
    parsed = read_anchors(anchors)
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
    finally:
        conn.close()
    return Verification(report)
