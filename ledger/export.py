"""Evidence export: one case's clips with everything needed to check them offline.

::

    OUT/clips/<clip_id>_<original name>   the evidence files
    OUT/leaves/<index>.json              each relevant leaf's exact bytes
    OUT/proofs/<index>.tlog-proof        its inclusion proof in checkpoint.txt
    OUT/checkpoint.txt                   the signed checkpoint (covers the export itself)
    OUT/checkpoint.anchor                the same, with the consistency proof from the
                                         station's previous checkpoint (an anchor's format)
    OUT/station.pub.pem, station.vkey    the station key, PEM and signed-note verifier key
    OUT/manifest.json, custody.html      what is in it (each clip's sensitivity too); the
                                         chain-of-custody report, in the station's language
                                         (``ledger.custody``), each clip's sensitivity marked
    OUT/custody.pdf                      the same report printed by headless Chromium, when
                                         asked for and Chromium is there (``ledger.custody_pdf``)
    OUT/SHA256SUMS, OUT/B3SUMS           `sha256sum -c` / `b3sum -c` lists of every file

The case's clips come from the one replay of case membership (``ledger.membership``).
As ``fetch`` does, the access is recorded before a byte of evidence is copied: a
``clip.accessed`` leaf (action "export") per clip and a ``case.exported`` leaf naming
every clip the case holds are committed, then a checkpoint covering them is signed, and
only then are the clips copied (each checked against its SHA-256 and BLAKE3). If anything
fails after OUT was prepared, what was written there is removed: OUT is either a whole
package or absent, and the attempt stays on record.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from blake3 import blake3

from config import DEFAULT_TIME_ZONE
from config.case_numbers import SENSITIVITIES
from ledger.anchor import Anchor
from ledger.audit import EvidenceFiles, NotRegularFileError, Progress, open_regular
from ledger.checkpoint import SignedNote
from ledger.custody_model import ExportFacts, ReportStation
from ledger.custody_package import write_report
from ledger.errors import PackageError
from ledger.keyring import Keyring
from ledger.keys import VerifierKey, key_fingerprint
from ledger.layout import (
    ANCHOR_FILE,
    MANIFEST_FORMAT,
    prepare_out,
    remove_written,
    safe_name,
    write_sums,
)
from ledger.leaf import (
    CASE_EXPORTED,
    CASE_LINKED,
    CASE_UNLINKED,
    CLIP_ACCESSED,
    CLIP_INGESTED,
    CLIP_REDOCKED,
    DOCKING_CLOSED,
    DOCKING_OPENED,
    Leaf,
)
from ledger.log import Ledger, format_at, writing
from ledger.membership import case_key, case_members, same_case
from ledger.receipt import TlogProof, verify_proof
from ledger.timestamp_package import write_timestamps

_COPY = 1 << 20


class ExportIntegrityError(PackageError):
    """A stored clip does not match its ledger hashes: nothing was handed out."""

    exit_code = 1


@dataclass(frozen=True)
class ExportResult:
    out: Path
    case_number: str
    clips: tuple[str, ...]
    leaves: int
    checkpoint_size: int
    # "custody.pdf" when the PDF was printed into the package; else why not (one line)
    pdf: str | None = None
    pdf_note: str | None = None


def case_clips(ledger: Ledger, case_number: str) -> dict[str, Leaf]:
    """Clip id -> the case.linked leaf that put it in the case (``case_members``)."""
    return case_members(ledger, case_number)


def _custody_leaves(ledger: Ledger, clip_id: str, case_number: str, size: int) -> list[Leaf]:
    """Every leaf naming the clip, and the dockings (and session links to this case) of
    every session it was seen in; links to other cases are not this case's business."""
    own = ledger.find(clip_id=clip_id)
    leaves = {leaf.index: leaf for leaf in own}
    links = (CASE_LINKED, CASE_UNLINKED)
    sessions = {
        str(leaf.body["session_id"]) for leaf in own if leaf.kind in (CLIP_INGESTED, CLIP_REDOCKED)
    }
    for session in sorted(sessions):
        for leaf in ledger.find(session_id=session):
            if leaf.kind in (DOCKING_OPENED, DOCKING_CLOSED) or (
                leaf.kind in links and not leaf.body.get("clip_id")
            ):
                leaves[leaf.index] = leaf
    return [
        leaf
        for index, leaf in sorted(leaves.items())
        if index < size
        and (leaf.kind not in links or same_case(leaf.body.get("case_number"), case_number))
    ]


def _copy_checked(
    source: Path, target: Path, ingested: Leaf, advance: Callable[[int], None]
) -> None:
    sha, b3 = hashlib.sha256(), blake3()
    clip = f"clip {ingested.body['clip_id']} (leaf {ingested.index})"
    try:
        # Only a regular file is read: a FIFO or a link in the store neither hangs the
        # export nor leads it out of the store.
        with open_regular(source) as src, target.open("xb") as dst:
            while chunk := src.read(_COPY):
                sha.update(chunk)
                b3.update(chunk)
                dst.write(chunk)
                advance(len(chunk))
            dst.flush()
            os.fsync(dst.fileno())
    except NotRegularFileError as exc:
        raise ExportIntegrityError(
            f"{clip}: {exc}; nothing was exported; the attempt is recorded; run "
            "`evidock verify` and restore it from central storage"
        ) from None
    except FileNotFoundError:
        raise ExportIntegrityError(
            f"{clip}: missing from the store ({source}); nothing was exported; the attempt "
            "is recorded; run `evidock verify` and restore it from central storage"
        ) from None
    except OSError as exc:
        raise PackageError(
            f"{clip}: cannot copy {source} to {target}: {exc.strerror}; nothing was exported "
            "(the attempt is recorded); fix that and export again"
        ) from None
    if sha.hexdigest() != ingested.body["sha256"] or b3.hexdigest() != ingested.body["blake3"]:
        raise ExportIntegrityError(
            f"{clip}: the stored file {source} does not match its ledger hashes; nothing was "
            "exported (the attempt is recorded); run `evidock verify` and restore the clip "
            "from central storage"
        )


def export_case(
    ledger: Ledger,
    store: EvidenceFiles,
    keyring: Keyring,
    case_number: str,
    out: Path,
    *,
    who: str,
    purpose: str,
    via: str = "cli",
    progress: Progress | None = None,
    station_name: str = "",
    station_place: str = "",
    time_zone: str = DEFAULT_TIME_ZONE,
    language: str = "zh-CN",
    pdf: bool = False,
    sensitivity: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write the evidence package of ``case_number`` to ``out`` (a new or empty folder).

    The custody report names the station (``station_name``, ``station_place``), shows
    times in ``time_zone`` and is written in ``language`` ("zh-CN" or "en"), as the
    station's config says (``station.*``). With ``pdf``, the report is
    also printed to custody.pdf by headless Chromium, inside the package's sums; if
    Chromium is missing or fails, the package is whole without it and ``pdf_note`` says
    why and how to get it.

    Refuses (PackageError, nothing recorded) an empty ``who`` or ``purpose``, a case with
    no clip, and an ``out`` that is not a new or empty folder we can write. Raises
    ExportIntegrityError if a stored clip does not match its leaf (the access stays on
    record, OUT is removed).

    ``sensitivity``: clip id -> ``normal``/``privacy``/``secret``, as the station decided
    who may export them (``agent.sensitivity``); written per clip into the manifest and
    marked in the report. A clip the case holds without an entry refuses the export (the
    case changed since that decision).
    """
    if not who.strip() or not purpose.strip():
        raise PackageError("say who exports (--who) and why (--purpose): access is logged")
    number = case_key(case_number)
    links = case_members(ledger, number)
    if not links:
        raise PackageError(f"no clip is linked to case {number!r}: check the case number")
    ingested: dict[str, Leaf] = {}
    for clip_id in links:
        found = [leaf for leaf in ledger.find(clip_id=clip_id) if leaf.kind == CLIP_INGESTED]
        if not found:
            raise PackageError(f"case {number} names clip {clip_id} that was never ingested")
        ingested[clip_id] = found[0]
    levels = {c: "normal" for c in links} if sensitivity is None else dict(sensitivity)
    if links.keys() - levels.keys():
        raise PackageError(
            f"case {number} gained clips while its sensitivity was checked: export again"
        )
    keyring.open(ledger)  # a station that cannot sign refuses before recording anything
    created = prepare_out(out)
    try:
        return _export(
            ledger,
            store,
            keyring,
            number,
            out,
            links,
            ingested,
            (who, purpose, via),
            progress,
            (
                ReportStation(ledger.station_id, station_name, station_place, time_zone, language),
                pdf,
            ),
            levels,
        )
    except BaseException:
        remove_written(out, created)
        raise


def _export(
    ledger: Ledger,
    store: EvidenceFiles,
    keyring: Keyring,
    case_number: str,
    out: Path,
    links: dict[str, Leaf],
    ingested: dict[str, Leaf],
    access: tuple[str, str, str],
    progress: Progress | None,
    report: tuple[ReportStation, bool],
    levels: dict[str, str],
) -> ExportResult:
    who, purpose, via = access
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
    anchor = keyring.sign(ledger)
    checkpoint = anchor.checkpoint
    key = keyring.verifier()
    files = _copy_clips(store, out, links, ingested, progress)
    events: dict[str, list[Leaf]] = {}
    relevant: dict[int, Leaf] = {exported.index: exported}
    for clip_id in links:
        events[clip_id] = [
            *_custody_leaves(ledger, clip_id, case_number, checkpoint.size),
            exported,
        ]
        relevant.update((leaf.index, leaf) for leaf in events[clip_id])
    relevant.update((leaf.index, leaf) for leaf in accessed)
    (out / "leaves").mkdir()
    (out / "proofs").mkdir()
    for index, leaf in sorted(relevant.items()):
        proof = TlogProof(index, tuple(ledger.inclusion_proof(index, checkpoint.size)), anchor.note)
        verify_proof(proof.text(), [key], leaf.data)
        (out / "leaves" / f"{index:012d}.json").write_bytes(leaf.data)
        (out / "proofs" / f"{index:012d}.tlog-proof").write_text(proof.text(), "utf-8")
    (out / "checkpoint.txt").write_text(anchor.note, "utf-8")
    (out / ANCHOR_FILE).write_text(anchor.text(), "utf-8")
    write_timestamps(ledger, out, checkpoint.size)
    (out / "station.pub.pem").write_bytes(key.pem())
    (out / "station.vkey").write_text(key.text() + "\n", "utf-8")
    at = format_at(ledger.clock())
    facts = ExportFacts(at, who, purpose, checkpoint.size, key.text(), key_fingerprint(key.public))
    pdf, pdf_note = write_report(
        out, report, facts, case_number, links, ingested, files, events, exported, levels
    )
    manifest = _manifest(
        case_number,
        ledger.station_id,
        at,
        who,
        purpose,
        anchor,
        key,
        links,
        ingested,
        files,
        sorted(relevant),
        exported.index,
        levels,
    )
    (out / "manifest.json").write_text(manifest, "utf-8")
    write_sums(out)
    return ExportResult(
        out, case_number, tuple(links), len(relevant), checkpoint.size, pdf, pdf_note
    )


def _size(ingested: Leaf) -> int:
    size = ingested.body.get("size")
    return size if type(size) is int else 0


def _copy_clips(
    store: EvidenceFiles,
    out: Path,
    links: dict[str, Leaf],
    ingested: dict[str, Leaf],
    progress: Progress | None,
) -> dict[str, str]:
    total = sum(_size(ingested[c]) for c in links)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("export", done, total)

    (out / "clips").mkdir()
    files: dict[str, str] = {}
    for clip_id in links:
        leaf = ingested[clip_id]
        original = PurePosixPath(str(leaf.body.get("source_path") or "clip")).name
        files[clip_id] = f"{safe_name(clip_id)}_{safe_name(original)}"
        source = store.path_for(str(leaf.body["sha256"]))
        _copy_checked(source, out / "clips" / files[clip_id], leaf, advance)
    return files


def _manifest(
    case_number: str,
    station: str,
    at: str,
    who: str,
    purpose: str,
    anchor: Anchor,
    key: VerifierKey,
    links: dict[str, Leaf],
    ingested: dict[str, Leaf],
    files: dict[str, str],
    leaves: list[int],
    exported_index: int,
    levels: dict[str, str],
) -> str:
    checkpoint_body = SignedNote.parse(anchor.note).body
    data: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "case_number": case_number,
        "station": station,
        "exported_at": at,
        "who": who,
        "purpose": purpose,
        "checkpoint": {
            "file": "checkpoint.txt",
            "anchor": ANCHOR_FILE,
            "previous_size": anchor.previous_size,
            "body": checkpoint_body,
        },
        "key": {
            "pem": "station.pub.pem",
            "vkey": key.text(),
            "fingerprint": key_fingerprint(key.public),
        },
        "case_exported_leaf": exported_index,
        # The strictest sensitivity of the package's clips: how the package is handled.
        "sensitivity": max(levels.values(), key=SENSITIVITIES.index, default="normal"),
        "clips": [
            {
                "clip_id": c,
                "file": f"clips/{files[c]}",
                "sha256": ingested[c].body["sha256"],
                "blake3": ingested[c].body["blake3"],
                "size": ingested[c].body["size"],
                "ingested_leaf": ingested[c].index,
                "linked_by_leaf": links[c].index,
                "sensitivity": levels[c],
            }
            for c in links
        ],
        "leaves": [
            {"index": i, "leaf": f"leaves/{i:012d}.json", "proof": f"proofs/{i:012d}.tlog-proof"}
            for i in leaves
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
