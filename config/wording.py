"""pydantic's validation errors as sentences a station's IT person can act on.

Each error becomes one :class:`ConfigProblem`: the key path first (``hashing.verify``),
then what is wrong with the value as it was written and what to write instead. The
wording is chosen by the error's ``type`` and ``ctx`` and the field's own annotation and
default, never by reading pydantic's English message.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from config.models import StationConfig
from config.phrasing import close_matches, either, quoted_list, toml_value
from config.problems import ConfigProblem

ROOT_KEY = "(root)"

# Error types whose value is of the wrong kind, by what the field wants.
_WHOLE_NUMBER = frozenset({"int_type", "int_parsing", "int_from_float"})
_NUMBER = frozenset({"float_type", "float_parsing"})
_TEXT = frozenset({"string_type", "string_unicode"})
_LIST = frozenset({"tuple_type", "list_type", "set_type", "frozen_set_type", "iterable_type"})
_SECTION = frozenset({"model_type", "model_attributes_type", "dict_type"})
_BOOLEAN = frozenset({"bool_type", "bool_parsing"})
_OWN_SENTENCE = frozenset({"value_error", "assertion_error"})
_BOUNDS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
_LENGTH = frozenset({"too_short", "too_long", "string_too_short", "string_too_long"})

#: Every error type given its own wording; any other falls back to a generic sentence.
WORDED_TYPES = (
    _WHOLE_NUMBER
    | _NUMBER
    | _TEXT
    | _LIST
    | _SECTION
    | _BOOLEAN
    | _OWN_SENTENCE
    | _BOUNDS
    | _LENGTH
    | {
        "missing",
        "extra_forbidden",
        "literal_error",
        "finite_number",
        "int_parsing_size",
        "path_type",
        "string_pattern_mismatch",
    }
)


def plain_problems(exc: ValidationError) -> list[ConfigProblem]:
    """One plain-sentence problem per error of a :class:`StationConfig` validation."""
    return [plain_problem(err) for err in exc.errors(include_url=False)]


def plain_problem(err: ErrorDetails) -> ConfigProblem:
    place = _locate(err["loc"])
    return ConfigProblem(place.key, _reason(err, place))


@dataclass(frozen=True)
class _Place:
    """Where an error points: the key path, the field there (if any) and its holder."""

    names: tuple[str, ...]
    item: int | None
    field: FieldInfo | None
    holder: type[BaseModel] | None

    @property
    def key(self) -> str:
        return ".".join(self.names) or ROOT_KEY

    @property
    def section(self) -> str:
        return ".".join(self.names[:-1])


def _locate(loc: tuple[int | str, ...]) -> _Place:
    names: list[str] = []
    item: int | None = None
    field: FieldInfo | None = None
    holder: type[BaseModel] | None = None
    model: type[BaseModel] | None = StationConfig
    for part in loc:
        if isinstance(part, int):
            item = part
            continue
        names.append(part)
        holder, field = model, None
        if model is not None:
            field = model.model_fields.get(part)
        sub = field.annotation if field is not None else None
        model = sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None
    return _Place(tuple(names), item, field, holder)


def _reason(err: ErrorDetails, place: _Place) -> str:
    kind = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    value = toml_value(err["input"])
    if place.item is not None:
        value = f"{value} (item {place.item + 1} of the list)"
    example = _example(place.field)
    if kind == "extra_forbidden":
        return _unknown_key(place, err["input"])
    if kind == "missing":
        return f"is missing; add it{example}"
    if kind == "literal_error":
        choices = _literal_choices(place.field)
        allowed = (
            (
                f"write {quoted_list(choices)}"
                if len(choices) == 1
                else f"write one of {quoted_list(choices)}"
            )
            if choices
            else f"write {ctx.get('expected', 'one of the documented values')}"
        )
        return f"{value} is not allowed; {allowed}"
    if kind in _BOUNDS:
        return _out_of_bounds(kind, value, ctx)
    if kind in _LENGTH:
        return _bad_length(kind, value, ctx)
    if kind in _OWN_SENTENCE:
        # Our validators write whole sentences (see config.models).
        return str(ctx.get("error", err["msg"]))
    if kind == "finite_number":
        wanted = "a whole number" if _wants(place.field, int) else "a number"
        return f"{value} cannot be used here; write {wanted} without quotes{example}"
    if kind == "int_parsing_size":
        return f"{value} is far too large; write a whole number{example}"
    if kind in _WHOLE_NUMBER:
        return f"{value} is not a whole number; write a whole number without quotes{example}"
    if kind in _NUMBER:
        return f"{value} is not a number; write a number without quotes{example}"
    if kind in _TEXT:
        return f"{value} is not text; write it in double quotes{example}"
    if kind in _BOOLEAN:
        return f"{value} is not true or false; write true or false without quotes"
    if kind in _LIST:
        return f"{value} is not a list; write a list in square brackets{example}"
    if kind == "path_type":
        return f"{value} is not a path; write the folder's full path in double quotes{example}"
    if kind == "string_pattern_mismatch":
        return f"{value} does not have the expected form ({ctx.get('pattern', '')})"
    if kind in _SECTION:
        return _not_a_section(place, value)
    return f"{value} cannot be used here ({err['msg']})"


def _unknown_key(place: _Place, value: object) -> str:
    name = place.names[-1]
    sections = list(StationConfig.model_fields)
    if place.holder is StationConfig or place.holder is None:
        owners = [s for s in sections if name in _keys_of(s)]
        if owners and not isinstance(value, Mapping):
            return (
                f'unknown section; "{name}" is a key of the [{owners[0]}] section: write it '
                f"below the [{owners[0]}] line"
            )
        near = close_matches(name, sections)
        hint = f"did you mean {either(near)}? The" if near else "the"
        return f"unknown section; {hint} known sections are: {', '.join(sections)}"
    here = list(place.holder.model_fields)
    near = [f"{place.section}.{key}" for key in close_matches(name, here)]
    if near:
        return f"unknown key; did you mean {either(near)}?"
    others = [section for section in sections if section != place.section]
    elsewhere = [f"{section}.{name}" for section in others if name in _keys_of(section)] or [
        f"{section}.{key}"
        for section in others
        for key in close_matches(name, _keys_of(section), limit=1)
    ]
    if elsewhere:
        return (
            f"unknown key in [{place.section}]; did you mean {either(elsewhere)}? "
            "Move it below that section's line"
        )
    return f"unknown key; the keys of [{place.section}] are: {', '.join(here)}"


def _not_a_section(place: _Place, value: str) -> str:
    if not place.names:
        return "the file must hold [section] tables of keys"
    return (
        f"{value} is a single value, not a section; write [{place.key}] on a line of its "
        "own with its keys below it"
    )


def _out_of_bounds(kind: str, value: str, ctx: Mapping[str, Any]) -> str:
    if kind == "greater_than_equal":
        return f"{value} is too small; the smallest allowed is {_number(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"{value} is too small; write a number greater than {_number(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"{value} is too large; the largest allowed is {_number(ctx.get('le'))}"
    return f"{value} is too large; write a number less than {_number(ctx.get('lt'))}"


def _bad_length(kind: str, value: str, ctx: Mapping[str, Any]) -> str:
    what = "characters" if kind.startswith("string") else "items"
    if kind.endswith("too_short"):
        return f"{value} is too short; write at least {ctx.get('min_length')} {what}"
    return f"{value} is too long; write at most {ctx.get('max_length')} {what}"


def _keys_of(section: str) -> list[str]:
    sub = StationConfig.model_fields[section].annotation
    assert isinstance(sub, type) and issubclass(sub, BaseModel)
    return list(sub.model_fields)


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _wants(field: FieldInfo | None, kind: type) -> bool:
    return field is not None and field.annotation is kind


def _literal_choices(field: FieldInfo | None) -> list[str]:
    """The allowed values of a Literal field (or of a list of Literals), in order."""
    if field is None:
        return []
    found: list[str] = []
    pending: list[Any] = [field.annotation]
    while pending:
        hint = pending.pop(0)
        if typing.get_origin(hint) is typing.Literal:
            found.extend(str(arg) for arg in typing.get_args(hint))
        else:
            pending.extend(arg for arg in typing.get_args(hint) if arg is not Ellipsis)
    return found


def _example(field: FieldInfo | None) -> str:
    """``, such as 8``: the field's default as it is written in TOML, when it has one."""
    if field is None:
        return ""
    default = field.default
    if default is PydanticUndefined or default is None or default == "":
        return ""
    if isinstance(default, BaseModel):
        return ""
    if isinstance(default, Path | str | int | float | tuple):
        return f", such as {toml_value(default)}"
    return ""
