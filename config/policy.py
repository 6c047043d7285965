"""Who may see footage of each sensitivity, and how long footage is kept: the
``[sensitivity]`` and ``[retention]`` sections of a station config.

Sensitivity levels are ordered ``normal`` < ``privacy`` < ``secret``; a person listed
for a level may also see every level below it. The CLI has no login yet: a person is
the name given with ``--who`` / ``--by``, compared after folding (NFKC, case, spaces
at the ends), so ``０２３１`` and ``0231`` are one person.

A retention period is ``N`` days, weeks or years (``"90d"``, ``"6w"``, ``"2y"``) or
``"permanent"``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.case_numbers import SENSITIVITIES
from config.phrasing import close_matches, either, toml_value

ROLE_PREFIX: Final = "role:"
PERMANENT: Final = "permanent"
MAX_NAME: Final = 128
_PERIOD = re.compile(r"([0-9]{1,5})\s*([dwy])")
_UNITS: Final = {"d": "days", "w": "weeks", "y": "years"}
_MAX: Final = {"d": 36600, "w": 5230, "y": 100}


def rank(level: str) -> int:
    """Where a sensitivity stands: 0 normal, 1 privacy, 2 secret."""
    return SENSITIVITIES.index(level)


def person_key(name: str) -> str:
    """The form two names of a person are compared in."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def _check_name(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError(f"{what} is empty; write a person id as given to --who, or role:NAME")
    if len(text) > MAX_NAME:
        raise ValueError(f"{what} {toml_value(value)} is longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise ValueError(f"{what} {toml_value(value)} holds control characters; type it again")
    return text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SensitivitySection(_Section):
    privacy: tuple[str, ...] = Field(
        default=(),
        description="Who may view or export privacy-restricted footage (and normal): person "
        'ids as given to --who, or "role:NAME" for everyone [sensitivity.roles] NAME lists. '
        "Everyone on secret may too. Empty: nobody but those on secret.",
    )
    secret: tuple[str, ...] = Field(
        default=(),
        description="Who may view or export secret footage (and privacy, and normal); same "
        "forms as privacy. Empty: nobody.",
    )
    roles: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Role name to the person ids that hold it, e.g. supervisor = "
        '["0231", "0457"]; privacy and secret may name a role as "role:supervisor".',
    )

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for role, people in value.items():
            _check_name(role, "a role name")
            for person in people:
                _check_name(person, f"a person of role {toml_value(role)}")
                if person.strip().startswith(ROLE_PREFIX):
                    raise ValueError(
                        f"role {toml_value(role)} lists {toml_value(person)}: a role lists "
                        "person ids, not other roles"
                    )
        return value

    @model_validator(mode="after")
    def _check_lists(self) -> SensitivitySection:
        for level in ("privacy", "secret"):
            for entry in getattr(self, level):
                name = _check_name(entry, f"an entry of {level}")
                if not name.startswith(ROLE_PREFIX):
                    continue
                role = name[len(ROLE_PREFIX) :].strip()
                if role not in self.roles:
                    near = close_matches(role, self.roles, limit=1)
                    hint = (
                        f"did you mean {either([ROLE_PREFIX + n for n in near])}? " if near else ""
                    )
                    raise ValueError(
                        f"{level} names {toml_value(name)}, but [sensitivity.roles] has no role "
                        f"{toml_value(role)}; {hint}add it there with its person ids"
                    )
        return self

    def people(self, level: str) -> frozenset[str]:
        """The folded ids of everyone who may see footage of ``level`` (``normal``:
        everyone, shown as an empty set; see :meth:`allows`)."""
        if rank(level) == 0:
            return frozenset()
        entries = list(self.secret) + (list(self.privacy) if level == "privacy" else [])
        found: set[str] = set()
        for entry in entries:
            name = entry.strip()
            if name.startswith(ROLE_PREFIX):
                role = name[len(ROLE_PREFIX) :].strip()
                found.update(person_key(p) for p in self.roles.get(role, ()))
            else:
                found.add(person_key(name))
        return frozenset(found)

    def allows(self, who: str, level: str) -> bool:
        """Whether ``who`` may view or export footage of ``level``."""
        return rank(level) == 0 or person_key(who) in self.people(level)


def check_period(value: str) -> str:
    """A retention period as written, if usable; ValueError saying what to write."""
    text = value.strip().lower()
    if text == PERMANENT:
        return PERMANENT
    found = _PERIOD.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{toml_value(value)} is not a retention period; write a number of days, weeks "
            'or years such as "90d", "6w" or "2y", or "permanent"'
        )
    count, unit = int(found.group(1)), found.group(2)
    if not 1 <= count <= _MAX[unit]:
        raise ValueError(
            f'{toml_value(value)}: write 1 to {_MAX[unit]} {_UNITS[unit]}, or "permanent"'
        )
    return f"{count}{unit}"


def keep_until(start: datetime, period: str) -> datetime | None:
    """The end of ``period`` counted from ``start``; None for ``permanent``. A year from
    29 February ends on 1 March (never earlier than a full year)."""
    if period == PERMANENT:
        return None
    count, unit = int(period[:-1]), period[-1]
    if unit == "d":
        return start + timedelta(days=count)
    if unit == "w":
        return start + timedelta(weeks=count)
    try:
        return start.replace(year=start.year + count)
    except ValueError:
        return start.replace(year=start.year + count, month=3, day=1)


class RetentionSection(_Section):
    unlinked: str = Field(
        default="90d",
        description="How long footage linked to no case is kept, counted from its ingest: "
        '"90d", "6w", "2y" or "permanent".',
    )
    uncategorised: str = Field(
        default=PERMANENT,
        description="How long footage of a case is kept when the case's retention category "
        "(its retention, else its category) is not in categories, or the number has no "
        "case record: kept until someone says otherwise.",
    )
    categories: dict[str, str] = Field(
        default_factory=lambda: {
            "administrative_penalty": "2y",
            "criminal": PERMANENT,
            "行政处罚": "2y",
            "刑事": PERMANENT,
        },
        description="Retention category (a case's retention, else its category, as the "
        "case holds it) to how long its footage is kept once the case is closed.",
    )

    @field_validator("unlinked", "uncategorised")
    @classmethod
    def _check_period(cls, value: str) -> str:
        return check_period(value)

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for name, period in value.items():
            if not name.strip():
                raise ValueError("a category name is empty; write it as cases hold it")
            try:
                checked[name.strip()] = check_period(period)
            except ValueError as exc:
                raise ValueError(f"category {toml_value(name)}: {exc}") from None
        return checked

    def period_of(self, category: str | None) -> tuple[str, str]:
        """(the category that applies, its period): ``category`` if the table has it,
        else ``uncategorised``."""
        name = (category or "").strip()
        if name in self.categories:
            return name, self.categories[name]
        return "uncategorised", self.uncategorised
