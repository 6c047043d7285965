"""The verifier's report: one line per problem, counts, and what the anchors cover."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.audit import AuditResult

_PER_CATEGORY = 20


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    leaves: int = 0
    checkpoints: int = 0
    anchors: int = 0
    anchored_size: int = 0
    key_source: str = "given"
    audit: AuditResult | None = None
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def coverage(self) -> str:
        if self.leaves == 0:
            return "the ledger is empty"
        if self.anchored_size == 0:
            return (
                f"no anchor covers this ledger: leaves 0..{self.leaves - 1} only the station's word"
            )
        tail = (
            f"; leaves {self.anchored_size}..{self.leaves - 1} only the station's word"
            if self.leaves > self.anchored_size
            else ""
        )
        return f"covered by an anchor: leaves 0..{self.anchored_size - 1}{tail}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["coverage"] = self.coverage()
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
    if report.key_source != "given":
        lines.append(f"public key: {report.key_source}")
    lines.append(report.coverage())
    lines.append("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return "\n".join(lines)


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=2)
