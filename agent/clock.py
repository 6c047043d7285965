"""The station's one clock: UTC, with the offset always written out."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2026-11-22T08:30:15.123456Z``: the form every stored station time takes."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
