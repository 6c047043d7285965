"""What the engine computes and how it reads: the typed knobs of one copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.models import HashingSection

KIB = 1024
MIB = 1024 * KIB

Verify = Literal["reread", "none"]


@dataclass(frozen=True)
class HashOptions:
    """Settings of the copy+hash pipeline (see :class:`config.models.HashingSection`)."""

    read_size: int = 1 * MIB
    window_size: int = 8 * MIB
    sm3: bool = False
    verify: Verify = "reread"
    buffer_budget_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        if self.read_size < 1:
            raise ValueError(f"read_size must be at least 1 byte, got {self.read_size}")
        if self.window_size < 1:
            raise ValueError(f"window_size must be at least 1 byte, got {self.window_size}")
        if self.verify not in ("reread", "none"):
            raise ValueError(f"verify must be 'reread' or 'none', got {self.verify!r}")
        if self.buffer_budget_bytes < self.read_size:
            raise ValueError(
                f"buffer_budget_bytes ({self.buffer_budget_bytes}) must hold at least one "
                f"read of read_size ({self.read_size}) bytes"
            )

    @classmethod
    def from_config(cls, section: HashingSection) -> HashOptions:
        return cls(
            read_size=section.read_size_kib * KIB,
            window_size=section.window_mib * MIB,
            sm3="sm3" in section.algorithms,
            verify=section.verify,
            buffer_budget_bytes=section.buffer_budget_mib * MIB,
        )
