"""Dataclasses from plain data (YAML, JSON), with every field's type checked.

One reader for the configuration (``params.yaml``) and for the result files, so that a dataclass
is the only declaration of what a file holds: a field with a default may be left out, an unknown
key is refused, and any problem is one :class:`SchemaError` line naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from repro.errors import ReproError

T = TypeVar("T")


class SchemaError(ReproError):
    """A value that does not fit its declared type (one line naming the key)."""


def from_mapping(cls: type[T], values: Any, *, where: str = "") -> T:
    """Build dataclass ``cls`` from nested mappings, checking every field against its type hint.

    Args:
        cls: A dataclass whose fields are built-in scalars, ``Literal``, ``list``, ``tuple``,
            ``dict``, unions (``X | None``) or nested dataclasses.
        values: The plain data.
        where: The key path of ``values``, for messages.

    Raises:
        SchemaError: A missing or unknown key, a value of the wrong type or a non-finite number,
            or ``cls`` refusing the values (its message is kept, prefixed with the key).
    """
    if not isinstance(values, Mapping):
        raise SchemaError(f"'{where or 'top level'}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SchemaError(f"unknown key '{_join(where, unknown[0])}' (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, declared in fields.items():
        key = _join(where, name)
        if name in values:
            kwargs[name] = convert(hints[name], values[name], key=key)
        elif _required(declared):
            raise SchemaError(f"missing key '{key}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, ReproError) as error:  # __post_init__ refusing the values
        raise SchemaError(f"'{where or cls.__name__}': {error}") from None


def to_plain(instance: Any) -> dict[str, Any]:
    """The dataclass as JSON-ready data (tuples become lists)."""
    return dataclasses.asdict(instance)


def field_defaults(cls: type) -> dict[str, Any]:
    """The default of every field of dataclass ``cls`` that has one."""
    defaults = {}
    for declared in dataclasses.fields(cls):
        if declared.default is not dataclasses.MISSING:
            defaults[declared.name] = declared.default
        elif declared.default_factory is not dataclasses.MISSING:
            defaults[declared.name] = declared.default_factory()
    return defaults


def convert(hint: Any, value: Any, *, key: str) -> Any:
    """``value`` checked against (and, for dataclasses and numbers, converted to) ``hint``."""
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where=key)
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _convert_union(arguments, value, key=key)
    if origin is Literal:
        if value in arguments and not isinstance(value, bool):
            return value
        raise SchemaError(
            f"'{key}' must be one of {', '.join(map(repr, arguments))}, got {value!r}"
        )
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise SchemaError(f"'{key}' must be a list, got {value!r}")
        item = arguments[0]
        items = [convert(item, v, key=f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping) or hint is Any:
        if hint is not Any and not isinstance(value, Mapping):
            raise SchemaError(f"'{key}' must be a mapping, got {value!r}")
        return value
    return _convert_scalar(hint, value, key=key)


def _convert_union(options: tuple[Any, ...], value: Any, *, key: str) -> Any:
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is not type(None):
            try:
                return convert(option, value, key=key)
            except SchemaError:
                continue
    names = " or ".join(_name(option) for option in options)
    raise SchemaError(f"'{key}' must be {names}, got {value!r}")


def _convert_scalar(hint: Any, value: Any, *, key: str) -> Any:
    # bool is an int in Python, but never a valid count or number in a setting or a result.
    if hint in (int, float) and isinstance(value, bool):
        raise SchemaError(f"'{key}' must be {_name(hint)}, got {value!r}")
    if hint is float and isinstance(value, int | float):
        if not math.isfinite(value):
            raise SchemaError(f"'{key}' must be a finite number, got {value!r}")
        return float(value)
    if isinstance(value, hint):
        return value
    raise SchemaError(f"'{key}' must be {_name(hint)}, got {value!r}")


def _required(declared: dataclasses.Field) -> bool:
    return (
        declared.default is dataclasses.MISSING and declared.default_factory is dataclasses.MISSING
    )


def _name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
