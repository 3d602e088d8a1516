"""Defaults infragen derives for optional settings, each declared on the property that applies it.

`@default_of(path, formula)` turns a method of an environment part into a property and records that it gives the
value of the setting at `path` when no layer sets it, with the formula `infragen explain` prints. The value is the
property's own (never restated here); the formula sits beside the code that applies it. `None` in a path matches
any list index (`load_balancing.servers.<i>.max_fails`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from ..errors import PathKey

T = TypeVar("T")
Formula = str | Callable[[Any], str]  # fixed text, or text with the numbers of the part it is read from


@dataclass(frozen=True)
class Derivation:
    """A value infragen computes, under a setting-like dotted name, with its formula and the numbers put in."""

    setting: str
    value: Any
    formula: str


class DefaultOf(Generic[T]):
    """A read-only property that is also the declared default of one optional setting."""

    def __init__(self, path: PathKey, formula: Formula, func: Callable[[Any], T]) -> None:
        self.path, self.formula, self.func = path, formula, func
        self.owner: type | None = None
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner
        DEFAULTS.append(self)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> DefaultOf[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | DefaultOf[T]:
        return self if obj is None else self.func(obj)

    def matches(self, path: PathKey) -> bool:
        return len(path) == len(self.path) and all(want is None or want == got for want, got in zip(self.path, path, strict=True))

    def derivation(self, part: object, path: PathKey) -> Derivation:
        formula = self.formula if isinstance(self.formula, str) else self.formula(part)
        return Derivation(".".join(str(p) for p in path), self.func(part), formula)


DEFAULTS: list[DefaultOf[Any]] = []


def default_of(path: PathKey, formula: Formula) -> Callable[[Callable[[Any], T]], DefaultOf[T]]:
    def declare(func: Callable[[Any], T]) -> DefaultOf[T]:
        return DefaultOf(path, formula, func)
    return declare


def declared_default(path: PathKey) -> DefaultOf[Any] | None:
    return next((d for d in DEFAULTS if d.matches(path)), None)


class Part:
    """One concern of an environment (its rollout, capacity, edge, monitoring, alert routing), computed from the
    environment's settings and identity. `env` is the whole environment; `spec` its settings."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.spec = env.spec
