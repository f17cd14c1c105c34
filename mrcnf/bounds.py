"""Ranges of numeric settings, declared on the settings' own type hints.

A field's range is metadata of its type, ``Annotated[int, Interval(low=1)]``: the dataclass that
holds the setting is the one declaration of it. :func:`check_ranges` checks a dataclass instance
against its declarations (the library's settings call it when constructed), and the harness's
configuration reader checks the same declarations when it reads a file. Free of torch.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any, Union


class MRCNFSettingError(ValueError):
    """An invalid model or solver setting (one line naming the setting)."""


@dataclass(frozen=True)
class Interval:
    """The values a number may take: between ``low`` and ``high`` (``None``: unbounded).

    Attributes:
        low: The lower bound, or ``None``.
        high: The upper bound, or ``None``.
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number inside the interval (NaN and ±inf never are)."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The interval as a phrase to follow "must be": ``≥ 1``, ``> 0`` or ``in (0, 2]``."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_number(self.high)}"
        return "a finite number"

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` ("must be …"), or ``None`` if it lies in the interval."""
        if self.contains(value):
            return None
        if math.isfinite(value):
            return f"must be {self.describe()}"
        bounded = self.low is not None or self.high is not None
        return f"must be a finite number {self.describe()}" if bounded else "must be finite"


PositiveInt = Annotated[int, Interval(low=1)]
NonNegativeInt = Annotated[int, Interval(low=0)]
PositiveFloat = Annotated[float, Interval(low=0, low_open=True)]
NonNegativeFloat = Annotated[float, Interval(low=0)]


def interval_of(hint: Any) -> Interval | None:
    """The :class:`Interval` declared by an ``Annotated`` hint, or ``None``."""
    if typing.get_origin(hint) is not Annotated:
        return None
    declared = [m for m in hint.__metadata__ if isinstance(m, Interval)]
    return declared[0] if declared else None


def check_ranges(instance: Any) -> None:
    """Check every field of dataclass ``instance`` against the range its type hint declares.

    Values that are not numbers (``None``, strings of a ``Literal``) and nested dataclasses (which
    check themselves) are left alone; list items are checked one by one.

    Args:
        instance: A dataclass instance whose hints may carry :class:`Interval` metadata.

    Raises:
        MRCNFSettingError: A number outside its range, NaN or ±inf; the message names the field,
            the range and the value.
    """
    for name, hint in _hints(type(instance)).items():
        _check(hint, getattr(instance, name), name)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Resolved once per class: with postponed annotations every hint is a string to evaluate.
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in fields(cls) if f.name in hints}


def _check(hint: Any, value: Any, name: str) -> None:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        interval = interval_of(hint)
        if interval is not None and _is_number(value):
            problem = interval.problem(value)
            if problem is not None:
                raise MRCNFSettingError(f"{name} {problem}, got {value!r}")
        _check(typing.get_args(hint)[0], value, name)
    elif origin in (Union, types.UnionType):
        option = _numeric_option(typing.get_args(hint), value)
        if option is not None:
            _check(option, value, name)
    elif origin in (list, tuple) and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(typing.get_args(hint)[0], item, f"{name}[{index}]")


def _numeric_option(options: tuple[Any, ...], value: Any) -> Any:
    """The option of a union that a number ``value`` belongs to (an int also fits ``float``)."""
    if not _is_number(value):
        return None
    numeric = [o for o in options if _base(o) in (int, float)]
    exact = [o for o in numeric if _base(o) is type(value)]
    return (exact or numeric or [None])[0]


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"
