"""Checking an evidence package offline, with nothing but what is in the folder.

The package's key is only as good as the auditor's copy of the station key: the report
names the key so it can be compared with the one published for the station, and a
``pubkey`` can be given to pin it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from ledger.checkpoint import open_checkpoint
from ledger.errors import (
    CheckpointError,
    LeafFormatError,
    LedgerError,
    PackageError,
    ProofError,
)
from ledger.export import MANIFEST_FORMAT, package_files
from ledger.keys import PublicKeyFile, VerifierKey, read_public_key
from ledger.leaf import CASE_EXPORTED, CLIP_ACCESSED, CLIP_INGESTED, Leaf
from ledger.receipt import verify_proof

_READ = 1 << 20


@dataclass
class PackageReport:
    folder: str
    problems: list[str] = field(default_factory=list)
    clips: int = 0
    leaves: int = 0
    checkpoint_size: int = 0
    key: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [*self.problems]
        lines.append(
            f"{self.clips} clips, {self.leaves} leaves, checkpoint size {self.checkpoint_size}, "
            f"station key {self.key or 'unknown'}"
        )
        lines.append("OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "problems": self.problems,
            "clips": self.clips,
            "leaves": self.leaves,
            "checkpoint_size": self.checkpoint_size,
            "key": self.key,
        }


def _digests(path: Path) -> tuple[str, str]:
    sha, b3 = hashlib.sha256(), blake3()
    with path.open("rb") as f:
        while chunk := f.read(_READ):
            sha.update(chunk)
            b3.update(chunk)
    return sha.hexdigest(), b3.hexdigest()


def _package_key(folder: Path, pubkey: PublicKeyFile | None, report: PackageReport) -> VerifierKey:
    vkey = VerifierKey.from_text((folder / "station.vkey").read_text("utf-8"))
    pem = read_public_key(folder / "station.pub.pem")
    if pem.public != vkey.public:
        report.problems.append("station.pub.pem and station.vkey are different keys")
    if pubkey is not None and pubkey.public != vkey.public:
        report.problems.append(
            f"the package is signed by {vkey.text()}, not by the public key you gave"
        )
    report.key = vkey.text()
    return vkey


def _check_sums(folder: Path, report: PackageReport) -> dict[str, tuple[str, str]]:
    listed: dict[str, list[str]] = {}
    for sums, slot in (("SHA256SUMS", 0), ("B3SUMS", 1)):
        try:
            lines = (folder / sums).read_text("utf-8").splitlines()
        except OSError:
            report.problems.append(f"{sums} is missing")
            continue
        for line in lines:
            digest, sep, name = line.partition("  ")
            if not sep:
                report.problems.append(f"{sums}: malformed line {line[:80]!r}")
                continue
            listed.setdefault(name, ["", ""])[slot] = digest
    files = package_files(folder)
    digests = {name: _digests(folder / name) for name in files}
    for name in sorted(set(files) - listed.keys()):
        report.problems.append(f"{name}: not listed in SHA256SUMS/B3SUMS (added to the package)")
    for name, (sha, b3) in sorted(listed.items()):
        if name not in digests:
            report.problems.append(f"{name}: listed in the sums but missing from the package")
        elif digests[name] != (sha, b3):
            report.problems.append(f"{name}: content differs from SHA256SUMS/B3SUMS")
    return digests


def verify_package(folder: Path, pubkey: PublicKeyFile | None = None) -> PackageReport:
    """Check sums, leaf bytes against proofs, proofs against the checkpoint and the key,
    and every clip file against its clip.ingested leaf."""
    report = PackageReport(str(folder))
    try:
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise PackageError(f"manifest.json is not {MANIFEST_FORMAT}")
        key = _package_key(folder, pubkey, report)
        checkpoint, _ = open_checkpoint((folder / "checkpoint.txt").read_text("utf-8"), [key])
    except (OSError, ValueError, LedgerError) as exc:
        report.problems.append(f"cannot read the package: {exc}")
        return report
    report.checkpoint_size = checkpoint.size
    digests = _check_sums(folder, report)
    leaves: dict[int, Leaf] = {}
    for entry in manifest.get("leaves", []):
        index = entry.get("index")
        try:
            data = (folder / entry["leaf"]).read_bytes()
            text = (folder / entry["proof"]).read_text("utf-8")
            leaf, proved = verify_proof(text, [key], data)
        except (OSError, KeyError, LeafFormatError, ProofError, CheckpointError) as exc:
            report.problems.append(f"leaf {index}: {exc}")
            continue
        if leaf.index != index:
            report.problems.append(f"leaf {index}: the file holds leaf {leaf.index}")
        if (proved.size, proved.root) != (checkpoint.size, checkpoint.root):
            report.problems.append(f"leaf {index}: proved against another checkpoint")
        leaves[leaf.index] = leaf
    report.leaves = len(leaves)
    _check_clips(manifest, leaves, digests, report)
    return report


def _check_clips(
    manifest: dict[str, Any],
    leaves: dict[int, Leaf],
    digests: dict[str, tuple[str, str]],
    report: PackageReport,
) -> None:
    exported = leaves.get(manifest.get("case_exported_leaf", -1))
    if exported is None or exported.kind != CASE_EXPORTED:
        report.problems.append("the case.exported leaf of this package is missing")
    elif exported.body.get("case_number") != manifest.get("case_number"):
        report.problems.append("the case.exported leaf names another case")
    exported_clips = set(exported.body.get("clips", [])) if exported is not None else set()
    accessed = {
        leaf.body.get("clip_id")
        for leaf in leaves.values()
        if leaf.kind == CLIP_ACCESSED and leaf.body.get("action") == "export"
    }
    listed = {clip.get("clip_id") for clip in manifest.get("clips", [])}
    for clip_id in sorted(exported_clips - listed):
        report.problems.append(
            f"clip {clip_id}: named by the case.exported leaf but missing from the package"
        )
    for clip in manifest.get("clips", []):
        clip_id = clip.get("clip_id")
        report.clips += 1
        leaf = leaves.get(clip.get("ingested_leaf", -1))
        if leaf is None or leaf.kind != CLIP_INGESTED or leaf.body.get("clip_id") != clip_id:
            report.problems.append(f"clip {clip_id}: its proven clip.ingested leaf is missing")
            continue
        got = digests.get(clip.get("file", ""))
        if got is None:
            report.problems.append(f"clip {clip_id}: file {clip.get('file')} is missing")
        elif got != (leaf.body.get("sha256"), leaf.body.get("blake3")):
            report.problems.append(
                f"clip {clip_id}: {clip.get('file')} does not match leaf {leaf.index}'s "
                "SHA-256/BLAKE3: the evidence was altered"
            )
        if clip_id not in exported_clips:
            report.problems.append(f"clip {clip_id}: not named by the case.exported leaf")
        if clip_id not in accessed:
            report.problems.append(f"clip {clip_id}: no clip.accessed (export) leaf")
