"""Checking an evidence package offline, trusting no key found inside it.

A package carries its station's key; anyone forging a package can carry their own. So the
key must be pinned from outside: with the published public key (``pubkey``), or with an
anchor the auditor got from central storage, validly signed by the package's key with the
package's station as its origin. Where the sizes allow, the anchor's tree is compared with
the package checkpoint's (equal sizes: equal roots; otherwise the consistency proof the
package carries, or the anchor's own). Without a pin the package is at best internally
consistent: the report says so and its status is 3.

Every leaf passes the same rules as in the station's own verify (``ledger.rules``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from blake3 import blake3

from ledger.anchor import Anchor, origin_for
from ledger.audit import Progress
from ledger.checkpoint import Checkpoint, SignedNote
from ledger.errors import (
    CheckpointError,
    LeafFormatError,
    LedgerError,
    PackageError,
    ProofError,
)
from ledger.keys import PublicKeyFile, VerifierKey, key_fingerprint, read_public_key
from ledger.layout import ANCHOR_FILE, MANIFEST_FORMAT, package_files
from ledger.leaf import (
    CASE_EXPORTED,
    CASE_LINKED,
    CLIP_ACCESSED,
    CLIP_INGESTED,
    CLIP_REDOCKED,
    Leaf,
)
from ledger.membership import same_case
from ledger.pinning import pin_key
from ledger.receipt import verify_proof
from ledger.report import STATUS_OK, STATUS_PROBLEMS, STATUS_UNSIGNED
from ledger.rules import LeafRules, station_of_origin
from ledger.timestamp_package import check_timestamps

_READ = 1 << 20

BUNDLED: Final = "bundled in the package (not pinned)"
UNPINNED: Final = (
    "internally consistent only: the key came from inside the package; "
    "pin it with --pubkey or --anchor"
)


@dataclass
class PackageReport:
    folder: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clips: int = 0
    leaves: int = 0
    checkpoint_size: int = 0
    station: str = ""
    key: str = ""
    key_fingerprint: str = ""
    key_source: str = BUNDLED
    pinned: bool = False

    @property
    def status(self) -> int:
        if self.problems:
            return STATUS_PROBLEMS
        return STATUS_OK if self.pinned else STATUS_UNSIGNED

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def verdict(self) -> str:
        if self.problems:
            return f"FAILED: {len(self.problems)} problem(s)"
        if not self.pinned:
            return f"NOT PROVEN: {UNPINNED}"
        return (
            "OK: every file matches its signed leaf, every leaf is in the checkpoint, "
            f"signed by the station key {self.key_source}"
        )

    def text(self) -> str:
        lines = [*self.problems, *(f"note: {n}" for n in self.notes)]
        lines.append(
            f"{self.clips} clips, {self.leaves} leaves, checkpoint size {self.checkpoint_size}, "
            f"station {self.station or 'unknown'}"
        )
        lines.append(f"station key: {self.key or 'unknown'}")
        if self.key_fingerprint:
            lines.append(f"key fingerprint: {self.key_fingerprint} (compare with the published)")
        lines.append(f"key source: {self.key_source}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "status": self.status,
            "verdict": self.verdict(),
            "problems": self.problems,
            "notes": self.notes,
            "clips": self.clips,
            "leaves": self.leaves,
            "checkpoint_size": self.checkpoint_size,
            "station": self.station,
            "key": self.key,
            "key_fingerprint": self.key_fingerprint,
            "key_source": self.key_source,
            "pinned": self.pinned,
        }


def read_manifest(folder: Path) -> dict[str, Any]:
    """The package's manifest; PackageError if ``folder`` is not a package we can read."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise PackageError(
            f"{folder} is not an evidence package (no manifest.json): "
            "give the folder `evidock export` wrote"
        )
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackageError(
            f"{path} is not readable JSON ({exc}): the package is damaged; ask for a new export"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise PackageError(
            f"{path} is not an {MANIFEST_FORMAT} manifest: give the folder `evidock export` "
            "wrote, or upgrade evidock"
        )
    return manifest


def _digests(path: Path, done: int, total: int, progress: Progress | None) -> tuple[str, str]:
    sha, b3 = hashlib.sha256(), blake3()
    with path.open("rb") as f:
        while chunk := f.read(_READ):
            sha.update(chunk)
            b3.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress("package", done, total)
    return sha.hexdigest(), b3.hexdigest()


def _check_sums(
    folder: Path, report: PackageReport, progress: Progress | None
) -> dict[str, tuple[str, str]]:
    listed: dict[str, list[str]] = {}
    for sums, slot in (("SHA256SUMS", 0), ("B3SUMS", 1)):
        try:
            lines = (folder / sums).read_bytes().decode("utf-8", "replace").splitlines()
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
    sizes = {name: (folder / name).stat().st_size for name in files}
    total, done = sum(sizes.values()), 0
    digests: dict[str, tuple[str, str]] = {}
    for name in files:
        try:
            digests[name] = _digests(folder / name, done, total, progress)
        except OSError as exc:
            report.problems.append(f"{name}: cannot be read: {exc.strerror}")
        done += sizes[name]
    for name in sorted(set(files) - listed.keys()):
        report.problems.append(f"{name}: not listed in SHA256SUMS/B3SUMS (added to the package)")
    for name, (sha, b3) in sorted(listed.items()):
        if name not in files:
            report.problems.append(f"{name}: listed in the sums but missing from the package")
        elif name in digests and digests[name] != (sha, b3):
            report.problems.append(f"{name}: content differs from SHA256SUMS/B3SUMS")
    return digests


def _bundled_key(folder: Path, report: PackageReport) -> VerifierKey | None:
    try:
        vkey = VerifierKey.from_text((folder / "station.vkey").read_bytes().decode("utf-8"))
        pem = read_public_key(folder / "station.pub.pem")
    except (OSError, UnicodeDecodeError, LedgerError) as exc:
        report.problems.append(f"cannot read the package's key: {exc}")
        return None
    if pem.public != vkey.public:
        report.problems.append("station.pub.pem and station.vkey are different keys")
    report.key = vkey.text()
    report.key_fingerprint = key_fingerprint(vkey.public)
    return vkey


def _package_checkpoint(
    folder: Path, key: VerifierKey, report: PackageReport
) -> tuple[Checkpoint, Anchor | None] | None:
    try:
        note = (folder / "checkpoint.txt").read_bytes().decode("utf-8")
        signed = SignedNote.parse(note)
        checkpoint = Checkpoint.parse_body(signed.body)
    except (OSError, UnicodeDecodeError, CheckpointError) as exc:
        report.problems.append(f"cannot read the package's checkpoint: {exc}")
        return None
    if not signed.verified_by([key]):
        report.problems.append(
            f"checkpoint {checkpoint.size}: no valid signature by the package's key "
            f"{key.text()}: the checkpoint or the key was changed"
        )
        return None
    own = None
    if (folder / ANCHOR_FILE).is_file():
        try:
            own = Anchor.parse((folder / ANCHOR_FILE).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, CheckpointError) as exc:
            report.problems.append(f"{ANCHOR_FILE}: cannot be read: {exc}")
        else:
            if own.note != note:
                report.problems.append(
                    f"{ANCHOR_FILE} holds another checkpoint than checkpoint.txt"
                )
    return checkpoint, own


def verify_package(
    folder: Path,
    pubkey: PublicKeyFile | None = None,
    anchors: Sequence[tuple[str, Anchor]] = (),
    *,
    progress: Progress | None = None,
) -> PackageReport:
    """Check sums, leaf bytes against proofs, proofs against the checkpoint and a pinned
    key, every leaf against the rules, and every clip file against its clip.ingested leaf.

    ``anchors`` are (label, anchor) pairs. Raises PackageError when ``folder`` is not a
    package at all (no manifest, or a manifest that cannot be read).
    """
    manifest = read_manifest(folder)
    report = PackageReport(str(folder))
    key = _bundled_key(folder, report)
    found = None if key is None else _package_checkpoint(folder, key, report)
    if key is None or found is None:
        return report
    checkpoint, own = found
    report.checkpoint_size = checkpoint.size
    station = station_of_origin(checkpoint.origin)
    if station is None:
        report.problems.append(f"checkpoint origin {checkpoint.origin!r} names no evidock station")
        return report
    report.station = station
    if key.name != origin_for(station):
        report.problems.append(
            f"the package's key is named {key.name!r}, not {checkpoint.origin!r}"
        )
    if manifest.get("station") != station:
        report.problems.append(
            f"manifest.json names station {manifest.get('station')!r}, the signed checkpoint "
            f"{station!r}"
        )
    pin = pin_key(key, checkpoint, own, pubkey, anchors)
    report.problems += pin.problems
    report.notes += pin.notes
    if pin.source is not None:
        report.pinned, report.key_source = True, pin.source
    digests = _check_sums(folder, report, progress)
    rules = LeafRules(
        lambda _category, line: report.problems.append(line),
        station,
        f"the station of the checkpoint's origin {checkpoint.origin}",
    )
    leaves = _check_leaves(folder, manifest, key, checkpoint, rules, set(digests), report)
    report.leaves = len(leaves)
    _check_clips(manifest, leaves, digests, report)
    check_timestamps(folder, key, checkpoint, report.problems, report.notes)
    return report


def _check_leaves(
    folder: Path,
    manifest: dict[str, Any],
    key: VerifierKey,
    checkpoint: Checkpoint,
    rules: LeafRules,
    files: set[str],
    report: PackageReport,
) -> dict[int, Leaf]:
    leaves: dict[int, Leaf] = {}
    entries = manifest.get("leaves")
    if not isinstance(entries, list):
        report.problems.append("manifest.json lists no leaves")
        return leaves
    for entry in entries:
        index = entry.get("index") if isinstance(entry, dict) else None
        if type(index) is not int or not isinstance(entry, dict):
            report.problems.append(f"manifest.json: a leaf entry without an index: {entry!r:.80}")
            continue
        leaf_file, proof_file = str(entry.get("leaf")), str(entry.get("proof"))
        if leaf_file not in files or proof_file not in files:
            report.problems.append(f"leaf {index}: its leaf or proof file is missing")
            continue
        data = (folder / leaf_file).read_bytes()
        obj, sound = rules.check(index, data)
        if obj is None:
            continue
        try:
            text = (folder / proof_file).read_bytes().decode("utf-8")
            leaf, proved = verify_proof(text, [key], data)
        except (UnicodeDecodeError, LeafFormatError, ProofError, CheckpointError) as exc:
            report.problems.append(f"leaf {index}: {exc}")
            continue
        if (proved.size, proved.root) != (checkpoint.size, checkpoint.root):
            report.problems.append(f"leaf {index}: proved against another checkpoint")
        elif sound:
            leaves[leaf.index] = leaf
    return leaves


def _index(value: Any) -> int:
    """A leaf index from the (unsigned) manifest; -1 when it is not one."""
    return value if type(value) is int else -1


def _check_clips(
    manifest: dict[str, Any],
    leaves: dict[int, Leaf],
    digests: dict[str, tuple[str, str]],
    report: PackageReport,
) -> None:
    case_number = manifest.get("case_number")
    exported = leaves.get(_index(manifest.get("case_exported_leaf")))
    exported_clips: set[str] = set()
    if exported is None or exported.kind != CASE_EXPORTED:
        report.problems.append("the case.exported leaf of this package is missing")
    elif exported.body["case_number"] != case_number:
        report.problems.append("the case.exported leaf names another case")
    else:
        exported_clips = set(exported.body["clips"])
    accessed = {
        leaf.body["clip_id"]
        for leaf in leaves.values()
        if leaf.kind == CLIP_ACCESSED and leaf.body["action"] == "export"
    }
    clips = manifest.get("clips")
    clips = [c for c in clips if isinstance(c, dict)] if isinstance(clips, list) else []
    for clip in clips:
        if not isinstance(clip.get("clip_id"), str):
            report.problems.append(f"manifest.json: a clip entry without a clip id: {clip!r:.80}")
    clips = [c for c in clips if isinstance(c.get("clip_id"), str)]
    listed = {clip["clip_id"] for clip in clips}
    for clip_id in sorted(exported_clips - listed):
        report.problems.append(
            f"clip {clip_id}: named by the case.exported leaf but missing from the package"
        )
    for clip in clips:
        clip_id = clip.get("clip_id")
        report.clips += 1
        leaf = leaves.get(_index(clip.get("ingested_leaf")))
        if leaf is None or leaf.kind != CLIP_INGESTED or leaf.body["clip_id"] != clip_id:
            report.problems.append(f"clip {clip_id}: its proven clip.ingested leaf is missing")
            continue
        got = digests.get(str(clip.get("file", "")))
        if got is None:
            report.problems.append(f"clip {clip_id}: file {clip.get('file')} is missing")
        elif got != (leaf.body["sha256"], leaf.body["blake3"]):
            report.problems.append(
                f"clip {clip_id}: {clip.get('file')} does not match leaf {leaf.index}'s "
                "SHA-256/BLAKE3: the evidence was altered"
            )
        if clip_id not in exported_clips:
            report.problems.append(f"clip {clip_id}: not named by the case.exported leaf")
        if clip_id not in accessed:
            report.problems.append(f"clip {clip_id}: no clip.accessed (export) leaf")
        _check_link(clip, str(clip_id), case_number, leaves, report)


def _check_link(
    clip: dict[str, Any],
    clip_id: str,
    case_number: Any,
    leaves: dict[int, Leaf],
    report: PackageReport,
) -> None:
    """The leaf that put the clip in the case links it (or a session it was seen in)."""
    link = leaves.get(_index(clip.get("linked_by_leaf")))
    if (
        link is None
        or link.kind != CASE_LINKED
        or not isinstance(case_number, str)
        or not same_case(link.body["case_number"], case_number)
    ):
        report.problems.append(
            f"clip {clip_id}: the case.linked leaf that put it in the case is missing"
        )
        return
    sessions = {
        leaf.body["session_id"]
        for leaf in leaves.values()
        if leaf.kind in (CLIP_INGESTED, CLIP_REDOCKED) and leaf.body["clip_id"] == clip_id
    }
    if link.body["clip_id"] != clip_id and link.body["session_id"] not in sessions:
        report.problems.append(
            f"clip {clip_id}: leaf {link.index} links neither this clip nor a session "
            "it was seen in"
        )
