"""Evidence export: one case's clips with everything needed to check them offline.

::

    OUT/clips/<clip_id>_<original name>   the evidence files
    OUT/leaves/<index>.json              each relevant leaf's exact bytes
    OUT/proofs/<index>.tlog-proof        its inclusion proof in checkpoint.txt
    OUT/checkpoint.txt                   the signed checkpoint (covers the export itself)
    OUT/station.pub.pem, station.vkey    the station key, PEM and signed-note verifier key
    OUT/manifest.json, custody.html      what is in it; the bilingual chain-of-custody report
    OUT/SHA256SUMS, OUT/B3SUMS           `sha256sum -c` / `b3sum -c` lists of every file

The export appends a ``clip.accessed`` leaf (action "export") per clip and a
``case.exported`` leaf, then signs a checkpoint covering them, so the package proves its
own export event.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from blake3 import blake3

from ledger.anchor import make_checkpoint
from ledger.audit import EvidenceFiles
from ledger.checkpoint import SignedNote
from ledger.custody import ClipCustody, render_custody
from ledger.errors import PackageError
from ledger.keys import StationKey
from ledger.leaf import (
    CASE_EXPORTED,
    CASE_LINKED,
    CASE_UNLINKED,
    CLIP_ACCESSED,
    CLIP_INGESTED,
    DOCKING_CLOSED,
    DOCKING_OPENED,
    Leaf,
)
from ledger.log import Ledger, format_at, writing
from ledger.receipt import TlogProof, verify_proof

MANIFEST_FORMAT: Final = "evidock.export@v1"
_UNSAFE = re.compile(r"[^\w.\-]+")
_COPY = 1 << 20


@dataclass(frozen=True)
class ExportResult:
    out: Path
    case_number: str
    clips: tuple[str, ...]
    leaves: int
    checkpoint_size: int


def safe_name(name: str) -> str:
    """A file name safe in a sums file and on any file system (letters, digits, . _ -)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "clip"
    return cleaned[:120]


def case_clips(ledger: Ledger, case_number: str) -> dict[str, Leaf]:
    """Clip id -> the case.linked leaf that put it in the case, as the links now stand."""
    linked: dict[str, Leaf] = {}
    for leaf in ledger.find(case_number=case_number):
        if leaf.kind not in (CASE_LINKED, CASE_UNLINKED):
            continue
        if leaf.body.get("clip_id"):
            targets = [str(leaf.body["clip_id"])]
        elif leaf.body.get("session_id"):
            targets = [
                str(s.body["clip_id"])
                for s in ledger.find(session_id=str(leaf.body["session_id"]))
                if s.kind == CLIP_INGESTED
            ]
        else:
            targets = []
        for clip_id in targets:
            if leaf.kind == CASE_LINKED:
                linked.setdefault(clip_id, leaf)
            else:
                linked.pop(clip_id, None)
    return linked


def _custody_leaves(ledger: Ledger, clip_id: str, case_number: str, session: str) -> list[Leaf]:
    leaves = {leaf.index: leaf for leaf in ledger.find(clip_id=clip_id)}
    for leaf in ledger.find(session_id=session):
        if leaf.kind in (DOCKING_OPENED, DOCKING_CLOSED) or (
            leaf.kind in (CASE_LINKED, CASE_UNLINKED) and not leaf.body.get("clip_id")
        ):
            leaves[leaf.index] = leaf
    # Links of the clip to other cases are not this case's business.
    return [
        leaf
        for _, leaf in sorted(leaves.items())
        if leaf.kind not in (CASE_LINKED, CASE_UNLINKED)
        or leaf.body.get("case_number") == case_number
    ]


def _copy_checked(source: Path, target: Path, ingested: Leaf) -> None:
    sha, b3 = hashlib.sha256(), blake3()
    try:
        with source.open("rb") as src, target.open("xb") as dst:
            while chunk := src.read(_COPY):
                sha.update(chunk)
                b3.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as exc:
        raise PackageError(
            f"clip {ingested.body['clip_id']} (leaf {ingested.index}): cannot copy {source}: "
            f"{exc.strerror}; run `evidock verify` to audit the store"
        ) from None
    if sha.hexdigest() != ingested.body["sha256"] or b3.hexdigest() != ingested.body["blake3"]:
        raise PackageError(
            f"clip {ingested.body['clip_id']} (leaf {ingested.index}): the stored file {source} "
            "does not match its ledger hashes; nothing was exported; run `evidock verify`"
        )


def export_case(
    ledger: Ledger,
    store: EvidenceFiles,
    key: StationKey,
    case_number: str,
    out: Path,
    *,
    who: str,
    purpose: str,
    via: str = "cli",
    last_signed_file: Path | None = None,
) -> ExportResult:
    """Write the evidence package of ``case_number`` to ``out`` (new or empty folder)."""
    links = case_clips(ledger, case_number)
    if not links:
        raise PackageError(f"no clip is linked to case {case_number!r}: check the case number")
    if out.exists() and any(out.iterdir()):
        raise PackageError(f"{out} is not empty: give a new folder for the package")
    for sub in ("clips", "leaves", "proofs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ingested: dict[str, Leaf] = {}
    files: dict[str, str] = {}
    for clip_id in links:
        found = [leaf for leaf in ledger.find(clip_id=clip_id) if leaf.kind == CLIP_INGESTED]
        if not found:
            raise PackageError(f"case {case_number} names clip {clip_id} that was never ingested")
        leaf = ingested[clip_id] = found[0]
        original = PurePosixPath(str(leaf.body.get("source_path") or "clip")).name
        files[clip_id] = f"{safe_name(clip_id)}_{safe_name(original)}"
        _copy_checked(
            store.path_for(str(leaf.body["sha256"])), out / "clips" / files[clip_id], leaf
        )
    with writing(ledger.conn, "ledger_export"):
        accessed = ledger.append_many(
            (
                CLIP_ACCESSED,
                {"clip_id": c, "who": who, "purpose": purpose, "action": "export", "via": via},
            )
            for c in links
        )
        exported = ledger.append(
            CASE_EXPORTED,
            {
                "case_number": case_number,
                "clips": list(links),
                "out": str(out),
                "who": who,
                "purpose": purpose,
            },
        )
        anchor = make_checkpoint(ledger, [key], last_signed_file=last_signed_file)
    checkpoint = anchor.checkpoint
    events: dict[str, list[Leaf]] = {}
    relevant: dict[int, Leaf] = {exported.index: exported}
    for clip_id in links:
        session = str(ingested[clip_id].body.get("session_id"))
        events[clip_id] = [*_custody_leaves(ledger, clip_id, case_number, session), exported]
        relevant.update((leaf.index, leaf) for leaf in events[clip_id])
    relevant.update((leaf.index, leaf) for leaf in accessed)
    for index, leaf in sorted(relevant.items()):
        proof = TlogProof(index, tuple(ledger.inclusion_proof(index, checkpoint.size)), anchor.note)
        verify_proof(proof.text(), [key.verifier], leaf.data)
        (out / "leaves" / f"{index:012d}.json").write_bytes(leaf.data)
        (out / "proofs" / f"{index:012d}.tlog-proof").write_text(proof.text(), "utf-8")
    (out / "checkpoint.txt").write_text(anchor.note, "utf-8")
    (out / "station.pub.pem").write_bytes(key.verifier.pem())
    (out / "station.vkey").write_text(key.verifier.text() + "\n", "utf-8")
    verified = (
        f"SHA-256、BLAKE3 一致，包含于签名检查点 {checkpoint.size} / SHA-256 and BLAKE3 match; "
    )
    verified += f"included in signed checkpoint {checkpoint.size}"
    custody = [
        ClipCustody(
            c,
            files[c],
            case_number,
            ingested[c],
            links[c],
            _docking(events[c]),
            events[c],
            verified,
        )
        for c in links
    ]
    at = format_at(ledger.clock())
    (out / "custody.html").write_text(
        render_custody(
            case_number,
            ledger.station_id,
            at,
            who,
            purpose,
            checkpoint.size,
            key.verifier.text(),
            custody,
        ),
        "utf-8",
    )
    manifest = _manifest(
        case_number,
        ledger.station_id,
        at,
        who,
        purpose,
        anchor.note,
        key,
        links,
        ingested,
        files,
        sorted(relevant),
        exported.index,
    )
    (out / "manifest.json").write_text(manifest, "utf-8")
    _write_sums(out)
    return ExportResult(out, case_number, tuple(links), len(relevant), checkpoint.size)


def _docking(leaves: list[Leaf]) -> Leaf | None:
    return next((leaf for leaf in leaves if leaf.kind == DOCKING_OPENED), None)


def _manifest(
    case_number: str,
    station: str,
    at: str,
    who: str,
    purpose: str,
    note: str,
    key: StationKey,
    links: dict[str, Leaf],
    ingested: dict[str, Leaf],
    files: dict[str, str],
    leaves: list[int],
    exported_index: int,
) -> str:
    checkpoint_body = SignedNote.parse(note).body
    data: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "case_number": case_number,
        "station": station,
        "exported_at": at,
        "who": who,
        "purpose": purpose,
        "checkpoint": {"file": "checkpoint.txt", "body": checkpoint_body},
        "key": {"pem": "station.pub.pem", "vkey": key.verifier.text()},
        "case_exported_leaf": exported_index,
        "clips": [
            {
                "clip_id": c,
                "file": f"clips/{files[c]}",
                "sha256": ingested[c].body["sha256"],
                "blake3": ingested[c].body["blake3"],
                "size": ingested[c].body["size"],
                "ingested_leaf": ingested[c].index,
                "linked_by_leaf": links[c].index,
            }
            for c in links
        ],
        "leaves": [
            {"index": i, "leaf": f"leaves/{i:012d}.json", "proof": f"proofs/{i:012d}.tlog-proof"}
            for i in leaves
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def package_files(out: Path) -> list[str]:
    """Every file of the package but the sums files, as sorted POSIX relative paths."""
    names = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in ("SHA256SUMS", "B3SUMS"):
            names.append(rel)
    return sorted(names)


def _write_sums(out: Path) -> None:
    sha_lines, b3_lines = [], []
    for rel in package_files(out):
        sha, b3 = hashlib.sha256(), blake3()
        with (out / rel).open("rb") as f:
            while chunk := f.read(_COPY):
                sha.update(chunk)
                b3.update(chunk)
        sha_lines.append(f"{sha.hexdigest()}  {rel}\n")
        b3_lines.append(f"{b3.hexdigest()}  {rel}\n")
    (out / "SHA256SUMS").write_text("".join(sha_lines), "utf-8")
    (out / "B3SUMS").write_text("".join(b3_lines), "utf-8")


def remove_package(out: Path) -> None:
    shutil.rmtree(out)
