"""The verifier's report: one line per problem, counts, what is signed and what anchored.

Its status is the command's exit status: 0 every leaf is intact and signed by a
checkpoint of a trusted key (and, when anchors are required, covered by a given anchor);
1 an integrity problem; 3 intact, but some leaves are not signed (or not anchored), so
for them there is only the station's word.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ledger.audit import AuditResult

_PER_CATEGORY = 20

STATUS_OK: Final = 0
STATUS_PROBLEMS: Final = 1
STATUS_UNSIGNED: Final = 3

NOT_ANCHORED: Final = (
    "not anchored: this proves consistency with the station's own key, "
    "not that history was not rewritten"
)


def leaves_are(first: int, last: int) -> str:
    return f"leaf {first} is" if first == last else f"leaves {first}..{last} are"


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    leaves: int = 0
    checkpoints: int = 0
    anchors: int = 0
    #: Leaves 0..signed_size-1 are covered by a good checkpoint of a trusted key; -1: none.
    signed_size: int = -1
    #: Leaves 0..anchored_size-1 are covered by a good anchor (0: none is).
    anchored_size: int = 0
    anchors_good: int = 0
    require_anchor: bool = False
    key_source: str = "given"
    key: str = ""
    key_fingerprint: str = ""
    audit: AuditResult | None = None
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        """No integrity problem was found (the leaves may still be unsigned)."""
        return not self.problems

    @property
    def status(self) -> int:
        if self.problems:
            return STATUS_PROBLEMS
        if self.shortfall() is not None:
            return STATUS_UNSIGNED
        return STATUS_OK

    @property
    def ok(self) -> bool:
        """Exit 0: intact and signed (and anchored, if required)."""
        return self.status == STATUS_OK

    def shortfall(self) -> str | None:
        """The line saying which intact leaves lack a signature (or an anchor), or None."""
        if self.signed_size < 0:
            if self.leaves == 0:
                return "the ledger is empty and no checkpoint is signed: there is nothing to verify"
            return (
                f"{leaves_are(0, self.leaves - 1)} intact but not signed by a trusted "
                "checkpoint: no checkpoint signed by the trusted key covers them; have the "
                "station sign one (any evidock command that writes does) and verify again"
            )
        if self.signed_size < self.leaves:
            return (
                f"{leaves_are(self.signed_size, self.leaves - 1)} intact but not signed by "
                "a trusted checkpoint: they may have been written or rewritten after the last "
                "signature; have the station sign a checkpoint and verify again"
            )
        if self.require_anchor and (self.anchors_good == 0 or self.anchored_size < self.leaves):
            first = self.anchored_size if self.anchors_good else 0
            if self.leaves == 0:
                return "the ledger is empty and no anchor covers it"
            return (
                f"{leaves_are(first, self.leaves - 1)} intact but not covered by a given "
                "anchor (--require-anchor): give a newer anchor from central storage"
            )
        return None

    def coverage(self) -> str:
        if self.leaves == 0:
            return "the ledger is empty"
        if self.anchors_good == 0 or self.anchored_size == 0:
            return (
                f"no anchor covers this ledger: leaves 0..{self.leaves - 1} only the station's word"
            )
        tail = (
            f"; leaves {self.anchored_size}..{self.leaves - 1} only the station's word"
            if self.leaves > self.anchored_size
            else ""
        )
        return f"covered by an anchor: leaves 0..{self.anchored_size - 1}{tail}"

    def verdict(self) -> str:
        if self.problems:
            return f"FAILED: {len(self.problems)} problem(s)"
        short = self.shortfall()
        if short is not None:
            return f"NOT PROVEN: {short}"
        if self.leaves == 0:
            return "OK: the ledger is empty and its empty tree is signed"
        if self.anchors_good and self.anchored_size >= self.leaves:
            return "OK: every leaf is signed by the trusted key and covered by an anchor"
        if self.anchors_good and self.anchored_size > 0:
            return f"OK, but leaves {self.anchored_size}..{self.leaves - 1} are {NOT_ANCHORED}"
        return f"OK, {NOT_ANCHORED}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["status"] = self.status
        data["intact"] = self.intact
        data["shortfall"] = self.shortfall()
        data["coverage"] = self.coverage()
        data["verdict"] = self.verdict()
        return data


class Problems:
    """Collects one line per problem; caps each category so one cut does not flood."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        self.counts: dict[str, int] = {}

    def add(self, category: str, line: str) -> None:
        seen = self.counts.get(category, 0) + 1
        self.counts[category] = seen
        if seen <= _PER_CATEGORY:
            self.report.problems.append(line)
        else:
            self.report.suppressed[category] = seen - _PER_CATEGORY

    @property
    def total(self) -> int:
        """Problems found so far, counting those beyond the cap."""
        return sum(self.counts.values())

    def finish(self) -> None:
        for category, more in self.report.suppressed.items():
            self.report.problems.append(f"... and {more} more problems of kind '{category}'")


def report_text(report: VerifyReport) -> str:
    lines = list(report.problems)
    audit = report.audit
    counts = f"{report.leaves} leaves, {report.checkpoints} checkpoints, {report.anchors} anchors"
    if audit is not None:
        counts += (
            f"; store: {audit.matched} matched, {audit.modified} modified, {audit.missing} "
            f"missing, {audit.extra} extra, {audit.moved} moved"
        )
    lines.append(counts)
    key = f"public key: {report.key_source}"
    if report.key_fingerprint:
        key += f"; fingerprint {report.key_fingerprint}"
    lines.append(key)
    if report.signed_size >= 0 and report.leaves:
        lines.append(
            f"signed: leaves 0..{min(report.signed_size, report.leaves) - 1} by a checkpoint "
            "of the trusted key"
            if report.signed_size
            else "signed: only the empty tree"
        )
    lines.append(report.coverage())
    lines.append(report.verdict())
    return "\n".join(lines)


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=2)
