"""Dataclasses from plain data (YAML, JSON), with every field's type checked.

One reader for the configuration (``params.yaml``) and for the result files, so that a dataclass
is the only declaration of what a file holds: a field with a default may be left out, an unknown
key is refused, a number outside the range its hint declares (``Annotated[int, Interval(low=1)]``,
see :mod:`mrcnf.bounds`) is refused, and any problem is one :class:`SchemaError` line naming the
key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, Union

from mrcnf.bounds import interval_of
from repro.errors import ReproError

T = TypeVar("T")


class SchemaError(ReproError):
    """A value that does not fit its declared type (one line naming the key)."""


class _OutOfRange(SchemaError):
    """A number of the declared type, but outside its declared range or not finite: a union
    reports this rather than trying its other options."""


def from_mapping(cls: type[T], values: Any, *, where: str = "", finite: bool = True) -> T:
    """Build dataclass ``cls`` from nested mappings, checking every field against its type hint.

    Args:
        cls: A dataclass whose fields are built-in scalars, ``Literal``, ``list``, ``tuple``,
            ``dict``, unions (``X | None``), nested dataclasses, or any of these ``Annotated``
            with an :class:`~mrcnf.bounds.Interval`.
        values: The plain data.
        where: The key path of ``values``, for messages.
        finite: Refuse NaN and infinity (settings); off, they are kept where a float is declared
            (a result file, whose impossible values its reader marks rather than refuses).

    Raises:
        SchemaError: A missing or unknown key, a value of the wrong type, a non-finite number or
            one outside its declared range, or ``cls`` refusing the values (its message is kept,
            prefixed with the key).
    """
    if not isinstance(values, Mapping):
        raise SchemaError(f"'{where or 'top level'}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SchemaError(f"unknown key '{_join(where, unknown[0])}' (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for name, declared in fields.items():
        key = _join(where, name)
        if name in values:
            kwargs[name] = convert(hints[name], values[name], key=key, finite=finite)
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


def convert(hint: Any, value: Any, *, key: str, finite: bool = True) -> Any:
    """``value`` checked against (and, for dataclasses and numbers, converted to) ``hint``.

    Args:
        hint: The declared type.
        value: The plain data.
        key: The dotted key path of ``value``, for messages.
        finite: Refuse NaN and infinity (see :func:`from_mapping`).

    Returns:
        The value, dataclasses built and ints given to floats made floats.

    Raises:
        SchemaError: The value does not fit ``hint``, or is a number outside its range.
    """
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where=key, finite=finite)
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _convert_annotated(hint, value, key=key, finite=finite)
    if origin in (Union, types.UnionType):
        return _convert_union(arguments, value, key=key, finite=finite)
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
        items = [convert(item, v, key=f"{key}[{i}]", finite=finite) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping) or hint is Any:
        if hint is not Any and not isinstance(value, Mapping):
            raise SchemaError(f"'{key}' must be a mapping, got {value!r}")
        return value
    return _convert_scalar(hint, value, key=key, finite=finite)


def _convert_annotated(hint: Any, value: Any, *, key: str, finite: bool) -> Any:
    converted = convert(typing.get_args(hint)[0], value, key=key, finite=finite)
    interval = interval_of(hint)
    numeric = isinstance(converted, int | float) and not isinstance(converted, bool)
    problem = interval.problem(converted) if interval is not None and numeric else None
    if problem is not None:
        raise _OutOfRange(f"'{key}' {problem}, got {value!r}")
    return converted


def _convert_union(options: tuple[Any, ...], value: Any, *, key: str, finite: bool) -> Any:
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is not type(None):
            try:
                return convert(option, value, key=key, finite=finite)
            except _OutOfRange:
                raise
            except SchemaError:
                continue
    names = " or ".join(_name(option) for option in options)
    raise SchemaError(f"'{key}' must be {names}, got {value!r}")


def _convert_scalar(hint: Any, value: Any, *, key: str, finite: bool) -> Any:
    # bool is an int in Python, but never a valid count or number in a setting or a result.
    if hint in (int, float) and isinstance(value, bool):
        raise SchemaError(f"'{key}' must be {_name(hint)}, got {value!r}")
    if hint is float and isinstance(value, int | float):
        if finite and not math.isfinite(value):
            raise _OutOfRange(f"'{key}' must be a finite number, got {value!r}")
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
    if typing.get_origin(hint) is Annotated:
        interval = interval_of(hint)
        base = _name(typing.get_args(hint)[0])
        return base if interval is None else f"{base} {interval.describe()}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
