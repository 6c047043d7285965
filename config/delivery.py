"""How fast delivery may send, and when: ``[delivery] bandwidth`` and ``bandwidth_schedule``.

A rate is a number and a unit per second, or ``"unlimited"``:

- bits: ``"20Mbit"``, ``"512kbit"``, ``"1Gbit"``, also written ``"20Mbps"`` or ``"20 Mbit/s"``;
- bytes: ``"2MB"``, ``"500kB"`` (powers of 1000) or ``"2MiB"``, ``"512KiB"`` (powers of 1024).

A schedule is a list of windows ``{from = "20:00", to = "07:00", rate = "unlimited"}`` in
the station's own time zone (``[station] time_zone``); a window whose ``to`` is not after
its ``from`` runs across midnight. The first window holding a moment gives its rate;
outside every window ``bandwidth`` applies. Every delivery worker shares the one limit.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.phrasing import toml_value

UNLIMITED: Final = "unlimited"
# Below this a clip of a few hundred MB would take days: surely a typo (kbit for Mbit).
MIN_RATE: Final = 8_000  # bytes per second (64 kbit/s)

_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*(?:/\s*s)?")
_BITS: Final = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_BPS: Final = {"bps": 1, "kbps": 10**3, "mbps": 10**6, "gbps": 10**9}
_BYTES: Final = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_EXAMPLES: Final = '"20Mbit", "2.5MB", "512KiB" or "unlimited"'


def parse_rate(text: str) -> int | None:
    """Bytes per second of a rate (None: unlimited); ValueError saying what to write."""
    value = text.strip()
    if value.casefold() == UNLIMITED:
        return None
    found = _RATE.fullmatch(value)
    if found is None:
        raise ValueError(f"{toml_value(text)} is not a rate; write {_EXAMPLES}")
    number, unit = float(found.group(1)), found.group(2)
    if unit.casefold() in _BITS:
        per_second = number * _BITS[unit.casefold()] / 8
    elif unit.casefold() in _BPS:
        per_second = number * _BPS[unit.casefold()] / 8
    elif unit in _BYTES:
        per_second = number * _BYTES[unit]
    else:
        raise ValueError(
            f"{toml_value(text)}: unknown unit {unit!r}; write bits as kbit, Mbit, Gbit or "
            "bytes as kB, MB, GB, KiB, MiB, GiB (B is bytes, bit is bits), e.g. "
            f"{_EXAMPLES}"
        )
    if per_second < MIN_RATE:
        raise ValueError(
            f"{toml_value(text)} is below 64 kbit/s, too slow to deliver footage; write a "
            f'faster rate (did you mean {found.group(1)}Mbit?) or "unlimited"'
        )
    return int(per_second)


def parse_clock(text: str) -> time:
    found = _CLOCK.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f'{toml_value(text)} is not a time of day; write 24-hour "HH:MM", such as "07:00"'
        )
    return time(int(found.group(1)), int(found.group(2)))


class BandwidthWindow(BaseModel):
    """One window of ``bandwidth_schedule``, in the station's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    starts: str = Field(
        alias="from", description='Start of the window, 24-hour "HH:MM" local time.'
    )
    ends: str = Field(
        alias="to",
        description='End of the window (not included), "HH:MM"; not after "from": the '
        "window runs across midnight.",
    )
    rate: str = Field(description=f"Rate within the window: {_EXAMPLES}.")

    @field_validator("starts", "ends")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> BandwidthWindow:
        if parse_clock(self.starts) == parse_clock(self.ends):
            raise ValueError(
                f'from and to are both "{self.starts}": a window must have a length; '
                "leave the schedule out to use bandwidth all day"
            )
        return self

    def holds(self, local: time) -> bool:
        starts, ends = parse_clock(self.starts), parse_clock(self.ends)
        if starts < ends:
            return starts <= local < ends
        return local >= starts or local < ends  # across midnight


def rate_at(
    bandwidth: str, schedule: tuple[BandwidthWindow, ...], time_zone: str, moment: datetime
) -> int | None:
    """Bytes per second allowed at ``moment`` (an aware datetime); None: unlimited."""
    local = moment.astimezone(ZoneInfo(time_zone)).time().replace(tzinfo=None)
    for window in schedule:
        if window.holds(local):
            return parse_rate(window.rate)
    return parse_rate(bandwidth)


def check_bandwidth(value: str) -> str:
    """The ``bandwidth`` key's validator."""
    parse_rate(value)
    return value
