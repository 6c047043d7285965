"""The station's one clock: UTC, with the offset always written out.

Defined once in :mod:`config.common`; the agent's modules import it from here.
"""

from __future__ import annotations

from config.common import iso_utc as iso
from config.common import utc_now

__all__ = ["iso", "utc_now"]
