"""Pieces of the sentences that tell a person what to write in a config file.

Values are shown the way they are written in TOML (strings in double quotes, ``true``,
``nan``, ``[...]``) so that the message and the file look alike.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath

_LONGEST_SHOWN = 60


def close_matches(word: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """The choices closest to ``word``, best first; case, '-' and '_' do not count."""

    def folded(text: str) -> str:
        return text.casefold().replace("-", "_")

    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(folded(choice), choice)
    if folded(word) in by_folded:
        return [by_folded[folded(word)]]
    found = difflib.get_close_matches(folded(word), list(by_folded), n=limit, cutoff=0.6)
    return [by_folded[f] for f in found]


def quoted_list(names: Iterable[str]) -> str:
    """``"a", "b", "c"``: the form a person copies into a TOML file."""
    return ", ".join(toml_value(name) for name in names)


def either(names: Sequence[str]) -> str:
    """``"a"``, ``"a" or "b"``, ``"a", "b" or "c"``."""
    quoted = [toml_value(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def toml_value(value: object) -> str:
    """``value`` as it would be written in a TOML file, cut short when long."""
    text = _toml(value)
    if len(text) > _LONGEST_SHOWN:
        text = text[: _LONGEST_SHOWN - 3] + "..."
    return text


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | PurePath):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if value is None:
        return "nothing"
    return repr(value)
