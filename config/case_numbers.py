"""Case numbers: one normal form for comparison, and the agency's rule for new numbers.

People type a case number as they see it on the case's documents, with whatever brackets
and digits their input method gives: ``朝执罚[2026]12号``, ``朝执罚（2026）12号`` and
``朝执罚〔２０２６〕12号`` are one case. :func:`fold_case_number` gives the one form every
comparison and lookup uses (the ledger room's too, hence here in ``config``):

- compatibility characters folded as NFKC does: full-width digits and letters become
  ASCII, full-width brackets and the ideographic space their ASCII forms;
- spaces (ASCII, U+3000 and every other space separator) removed, ends trimmed;
- a year in any bracket pair (``[2026]``, ``（2026）``, ``【2026】``...) is written
  ``〔2026〕``, as on documents (GB/T 9704); every other bracket pair, such as the
  document type's ``（刑）``, becomes ``(刑)``.

:func:`normalise_case_number` adds the checks of a number someone enters (not empty, at
most :data:`MAX_CASE_NUMBER` characters, no control or format characters);
:class:`CaseNumberRule` adds the agency's pattern (``[cases] number_pattern``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

MAX_CASE_NUMBER: Final = 128

#: What a case record holds beside its number (the ``case.opened`` leaf; ``case.changed``
#: names some of them), for the ledger's rules and the agent's commands alike.
CASE_FIELDS: Final = (
    "subject",
    "category",
    "unit",
    "whole_process",
    "starts",
    "ends",
    "sensitivity",
    "retention",
)
SENSITIVITIES: Final = ("normal", "privacy", "secret")

_CJK: Final = "\u3400-\u4dbf\u4e00-\u9fff"
#: The default parts of the default pattern: Chinese administrative and criminal numbers
#: such as 朝执罚〔2026〕12号 or 京公(刑)立字〔2026〕123号 (after folding).
DEFAULT_PARTS: Final[Mapping[str, str]] = {
    "agency": f"[{_CJK}]{{1,12}}",
    "doctype": f"(?:[{_CJK}]|[(][{_CJK}]{{1,4}}[)]){{1,16}}",
    "year": "[0-9]{4}",
    "seq": "[0-9]{1,6}",
}
DEFAULT_PATTERN: Final = "{agency}{doctype}〔{year}〕{seq}号"
DEFAULT_EXAMPLE: Final = "朝执罚〔2026〕12号"

_OPEN: Final = "([〔【〖〘｟⦅"
_CLOSE: Final = ")]〕】〗〙｠⦆"
_BRACKETS = re.compile(
    f"[{re.escape(_OPEN)}]([0-9]{{4}})[{re.escape(_CLOSE)}]"
    f"|(?P<open>[{re.escape(_OPEN)}])|[{re.escape(_CLOSE)}]"
)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PART_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CaseNumberError(ValueError):
    """A case number that cannot be used; the message says what to type."""


def _bracket(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"〔{match.group(1)}〕"
    return "(" if match.group("open") is not None else ")"


def fold_case_number(text: str) -> str:
    """The normal form of a case number, for comparison and lookup; never raises.

    Numbers already in the ledger are folded on read, so a leaf written before folding
    existed finds its case by any variant.
    """
    folded = unicodedata.normalize("NFKC", text)
    folded = "".join(ch for ch in folded.strip() if unicodedata.category(ch) != "Zs")
    return _BRACKETS.sub(_bracket, folded)


def normalise_case_number(typed: str) -> str:
    """The normal form of a number someone entered; CaseNumberError if it is unusable."""
    number = fold_case_number(typed)
    if not number:
        raise CaseNumberError("the case number is empty: give it as on the case's documents")
    if len(number) > MAX_CASE_NUMBER:
        raise CaseNumberError(f"the case number is longer than {MAX_CASE_NUMBER} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in number):
        raise CaseNumberError("the case number holds control characters: type it again")
    return number


def compile_pattern(pattern: str, parts: Mapping[str, str]) -> re.Pattern[str]:
    """The regular expression of ``number_pattern`` with its ``{part}`` placeholders.

    Raises ValueError with a sentence for the config's reader (check-config shows it).
    """
    pieces: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        literal = pattern[position : match.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(
                f"number_pattern {pattern!r} has an unpaired brace; name each part as "
                "{agency}, {doctype}, {year}, {seq} (or a part of [cases.number_parts])"
            )
        pieces.append(re.escape(literal))
        name = match.group(1)
        if name not in parts:
            known = ", ".join("{" + n + "}" for n in sorted(parts))
            raise ValueError(
                f"number_pattern names {{{name}}}, which [cases.number_parts] does not "
                f"define; use {known} or add it there"
            )
        pieces.append(f"(?P<{name}>{parts[name]})")
        position = match.end()
    tail = pattern[position:]
    if "{" in tail or "}" in tail:
        raise ValueError(
            f"number_pattern {pattern!r} has an unpaired brace; name each part as "
            "{agency}, {doctype}, {year}, {seq} (or a part of [cases.number_parts])"
        )
    if not pieces:
        # One fixed text is no numbering rule: it would take one number only.
        raise ValueError(
            f"number_pattern {pattern!r} names no part; write the agency's form with its "
            f"parts, such as {DEFAULT_PATTERN!r}, or \"\" to take any number"
        )
    pieces.append(re.escape(tail))
    try:
        return re.compile("".join(pieces))
    except re.error as exc:
        raise ValueError(
            f"number_pattern {pattern!r} cannot be used: {exc} (a part names itself twice?)"
        ) from None


def check_parts(parts: Mapping[str, str]) -> None:
    """Every part has a usable name and a regular expression that compiles."""
    for name, regex in parts.items():
        if not _PART_NAME.fullmatch(name):
            raise ValueError(
                f"part name {name!r} cannot be used; write letters, digits and '_' "
                "(starting with a letter), such as agency or doctype"
            )
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise ValueError(
                f"{name} = {regex!r} is not a regular expression ({exc}); write one such "
                f"as {DEFAULT_PARTS.get(name, '[0-9]{1,6}')!r}"
            ) from None
        if compiled.groupindex:
            raise ValueError(
                f"{name} = {regex!r} has a named group; use (?:...) for grouping inside a part"
            )


@dataclass(frozen=True)
class CaseNumberRule:
    """The agency's rule for case numbers: ``pattern`` ("" accepts any usable number)."""

    pattern: str = DEFAULT_PATTERN
    parts: Mapping[str, str] | None = None
    example: str = DEFAULT_EXAMPLE

    def regex(self) -> re.Pattern[str] | None:
        if not self.pattern:
            return None
        return compile_pattern(self.pattern, dict(self.parts or DEFAULT_PARTS))

    def check(self, typed: str) -> str:
        """The normal form of ``typed``; CaseNumberError unless it follows the rule."""
        number = normalise_case_number(typed)
        regex = self.regex()
        if regex is not None and regex.fullmatch(number) is None:
            shown = number if number == typed.strip() else f"{typed.strip()} (read as {number})"
            raise CaseNumberError(
                f"case number {shown} does not follow this station's rule "
                f"{self.pattern} ([cases] number_pattern); type it as on the case's "
                f"documents, e.g. {self.example}"
            )
        return number
