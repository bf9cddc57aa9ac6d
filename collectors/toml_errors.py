"""From a pydantic ValidationError to a message a person can act on, for every TOML file Waymark
reads (the config, the promotion policies, the migration plan): the error's line in the file, its
field, and words chosen by the error's `type` (never by its text).

Imports nothing of the project, so the collectors, the gates and the checklist can all use it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_INLINE_KEY = re.compile(r"""(?:[{,]\s*)([A-Za-z0-9_\-]+)\s*=""")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def toml_lines(text: str) -> dict[Loc, int]:
    """Key path → the first line (1-based) that defines it, in pydantic's `loc` form: the n-th
    `[[table]]` entry is (…, "table", n) with n from 0. Good enough for error messages."""
    index: dict[Loc, int] = {}
    table: list[str | int] = []
    entries: dict[tuple[str, ...], int] = {}   # array of tables → entries seen so far
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_key(header.group(2))
            table = [*_resolve(names, entries)]
            if header.group(1) == "[[":
                key = tuple(names)
                entries[key] = entries.get(key, -1) + 1
                table.append(entries[key])
            index.setdefault(tuple(table), number)
            continue
        key = _KEY.match(line)
        if key:
            path = [*table, *_split_key(key.group(1))]
            index.setdefault(tuple(path), number)
            for inner in _INLINE_KEY.finditer(line[key.end():]):
                index.setdefault((*path, inner.group(1)), number)
    return index


def _resolve(names: list[str], entries: dict[tuple[str, ...], int]) -> list[str | int]:
    """A header's path with the current entry of every enclosing array of tables
    (`[[a]]` then `[a.b]` is a table inside the last `a` entry)."""
    path: list[str | int] = []
    for i, name in enumerate(names):
        path.append(name)
        current = entries.get(tuple(names[:i + 1]))
        if current is not None and i < len(names) - 1:
            path.append(current)
    return path


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, else of the nearest enclosing key or table that is written in the file."""
    parts = list(loc)
    while parts:
        found = lines.get(tuple(parts))
        if found:
            return found
        parts.pop()
    return None


def file_lines(path: Path | None) -> dict[Loc, int]:
    """`toml_lines` of the file, or nothing when there is no readable file (a dict parsed in memory)."""
    try:
        return toml_lines(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, UnicodeDecodeError):
        return {}


def choices(error: ErrorDetails) -> list[str]:
    """The values a `literal_error` allowed, from its context (pydantic writes them as reprs)."""
    return re.findall(r"'((?:[^'\\]|\\.)*)'", str((error.get("ctx") or {}).get("expected", "")))


def words(error: ErrorDetails) -> str:
    """What is wrong, chosen by the error's type. A project error (PydanticCustomError) words itself;
    the value is repeated only where it cannot be a secret (a wrong type, a number out of range)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("string_type", "string_too_short"):
        return f"must be a non-empty string, got {value!r}"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind in ("int_type", "int_parsing"):
        return f"must be int, got {type(value).__name__} {value!r}"
    if kind in ("float_type", "finite_number"):
        return f"must be a finite number, got {value!r}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {value!r}"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    if kind == "literal_error":
        return f"must be one of {', '.join(choices(error))}, got {value!r}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"must be {bounds[kind]} {limit:g}, got {value!r}" if isinstance(limit, float) else \
            f"must be {bounds[kind]} {limit}, got {value!r}"
    return error["msg"]   # a PydanticCustomError: the project's own words (never a secret)


def first_error(e: ValidationError, urgent: Callable[[ErrorDetails], bool] = lambda error: False) -> ErrorDetails:
    """The one error to report: the first `urgent` one (e.g. a secret written in the file), else the first."""
    errors = e.errors(include_url=False)
    return next((x for x in errors if urgent(x)), errors[0])


def _non_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_string", "must be a non-empty string")
    return value


# A string with something visible in it (stored as written).
NonBlank = Annotated[str, AfterValidator(_non_blank)]


def fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The fields of the table that holds `loc`'s last key (for "expected …"), found by walking the
    models' annotations; [] when `loc` leaves the models."""
    annotation: Any = model
    for part in loc[:-1]:
        annotation = _inner(annotation, part)
        if annotation is None:
            return []
    found = _model_in(annotation)
    return list(found.model_fields) if found else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) not in (Annotated, Union, UnionType):   # not into a list's or a dict's items
        return None
    for arg in get_args(annotation):   # Annotated[…], X | None, a union of tables
        found = _model_in(arg)
        if found:
            return found
    return None


def _inner(annotation: Any, part: str | int) -> Any:
    found = _model_in(annotation)
    if found and isinstance(part, str) and part in found.model_fields:
        return found.model_fields[part].annotation
    while get_origin(annotation) is Annotated or (get_origin(annotation) in (Union, UnionType)
                                                  and not found):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) in (list, tuple) and isinstance(part, int):
        return get_args(annotation)[0]
    if get_origin(annotation) is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None
