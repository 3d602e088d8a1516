"""Problems found in user input, each pinned to the file, line, column and field that caused it; and every error
infragen raises, under one root.

    InfragenError            problems, each a `file:line:col: field: message` line; the CLI prints them, exits 2
      InputError             what the user gave cannot be used (a setting, a file, a flag)
        PolicyFailed         a policy rule stopped the command
        ChangedDuringBuild   an environment's files changed between the two rounds of a build
      OutputError            the output cannot be made or written safely (a hand-written file in the way, a symlink)
        WriteInterrupted     writing failed part-way: every file is its old or its new version
        RenderError          a value reached a writer that cannot write it exactly (a bug: the models must reject it)
        AlertTestError       an alert annotation the test generator cannot predict (a bug)
      ToolError              a program infragen runs could not do its part
        GitError             the base side of a review cannot be read from git
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

# info: a warning the environment acknowledges (policy.acknowledge): printed, never a failure.
Level = Literal["error", "warning", "info"]
# A setting's place in the environment file: ("autoscaling", "min_replicas"), ("load_balancing", "servers", 0).
PathKey = tuple[Any, ...]


@dataclass(frozen=True, order=True)
class Location:
    """Where a value came from: a place in a file, or an origin such as a tier default."""

    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    origin: str | None = None  # "tier default (production)", "default", "derived: ..."

    def __str__(self) -> str:
        if self.file is None:
            return self.origin or "<unknown>"
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


# Keys and file names come from the user: a newline in one must not split a problem over two lines.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x85, 0x2028, 0x2029)})


def one_line(text: str) -> str:
    return text.translate(_CONTROL)


@dataclass(frozen=True)
class Problem:
    """One finding. `field` is the dotted path in the environment file (`autoscaling.min_replicas`)."""

    location: Location | None
    field: str | None
    message: str
    level: Level = "error"
    rule: str | None = None
    environment: str | None = None
    related: tuple[Location, ...] = ()

    def format(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.field:
            parts.append(self.field)
        prefix = ": ".join(parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.level in ("warning", "info"):
            word = "warning" if self.level == "warning" else "note"
            text = f"{word}: {text}" if not prefix else f"{prefix}: {word}: {self.message}"
        if self.rule:
            text += f" [{self.rule}]"
        return one_line(text)

    def as_dict(self) -> dict:
        loc = self.location or Location()
        return {
            "level": self.level,
            "rule": self.rule,
            "environment": self.environment,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class Finding(Problem):
    """A policy finding (infragen.policy): a Problem with a hint specific to the values involved."""

    hint: str | None = None


@dataclass
class InfragenError(Exception):
    """The root of every error infragen raises. Carries every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)
    findings: list[Problem] = field(default_factory=list)  # policy warnings reported before it failed

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)

    @classmethod
    def single(cls, message: str, location: Location | None = None, field: str | None = None) -> Self:
        return cls([Problem(location=location, field=field, message=message)])

    @classmethod
    def merge(cls, errors: Iterable[InfragenError]) -> Self:
        return cls([p for e in errors for p in e.problems])


class InputError(InfragenError):
    """Input cannot be turned into valid models (or a flag, a path, a name given cannot be used)."""


class ChangedDuringBuild(InputError):
    """An environment's files changed between a build's two rounds (validated, then loaded again to be written)."""


@dataclass
class PolicyFailed(InputError):
    """A policy rule stopped the command: `problems` are every finding (warnings too), `strict` whether
    warnings counted as failures."""

    strict: bool = False


class OutputError(InfragenError):
    """The output cannot be made or written safely (symlink escape, a directory where a file goes...)."""


class WriteInterrupted(OutputError):
    """Writing failed after some files were replaced (disk full, permissions): each file is old or new."""


class _Bug(OutputError):
    def __init__(self, message: str) -> None:
        super().__init__([Problem(None, None, message)])


class RenderError(_Bug):
    """A value reached a writer that cannot write it safely (a bug: models must reject it first)."""


class AlertTestError(_Bug):
    """An annotation uses a template action the alert-test generator cannot predict (a bug, not bad input)."""


class ToolError(InfragenError):
    """A program infragen runs could not do its part."""


class GitError(ToolError):
    """The base side of a review cannot be read from git."""


class ConversionError(ToolError):
    """The modelled Prometheus Operator would refuse an AlertmanagerConfig, or it holds what the model does not
    cover (infragen.operator_merge)."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem(None, None, message)])


def failing(problems: Iterable[Problem], strict: bool) -> list[Problem]:
    """The problems that stop a command: errors, and warnings too under --strict."""
    return [p for p in problems if p.level == "error" or (strict and p.level == "warning")]
