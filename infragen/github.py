"""GitHub Actions output: workflow-command annotations, log groups and the step summary.

Pure functions over strings and an environment mapping (stdlib only, no click), so the CLI can print
what they return. The rules come from GitHub's workflow-command syntax (as @actions/core implements it):

- A command is one line, ``::name key=value,key=value::message``. A newline in a message would end the
  command early and let the rest of the line be read as a command of its own (a settings file could
  then inject ``::add-mask::`` or worse), so the message escapes ``%`` as ``%25``, CR as ``%0D`` and LF
  as ``%0A``; a property value additionally escapes ``:`` as ``%3A`` and ``,`` as ``%2C``, the
  characters that separate properties. ``%`` goes first so an escape is never escaped twice.
- The step summary is the Markdown file named by ``GITHUB_STEP_SUMMARY``, appended to by every command
  of the step. GitHub refuses a summary over 1 MiB (1,048,576 bytes) whole, so a text that would push
  the file past that is cut, and says so, rather than losing the entire summary.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .errors import Problem

Level = Literal["error", "warning", "notice"]
LEVELS = ("error", "warning", "notice")
SUMMARY_LIMIT = 1024 * 1024  # bytes: GitHub's cap on one step's summary
TRUNCATED_NOTICE = ("\n*[infragen: the rest of this report was cut: GitHub caps a step summary at 1 MiB "
                    "(1,048,576 bytes)]*\n")


def escape_data(text: object) -> str:
    """A workflow command's message: ``%``, CR and LF escaped (None is the empty string, as in @actions/core)."""
    return ("" if text is None else str(text)).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: object) -> str:
    """A workflow command's property value: the message escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, message: object, properties: Mapping[str, object] | None = None) -> str:
    props = ",".join(f"{key}={escape_property(value)}" for key, value in (properties or {}).items()
                     if value is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(level: Level, message: object, *, file: str | None = None, line: int | None = None,
               col: int | None = None, end_line: int | None = None, end_column: int | None = None,
               title: str | None = None) -> str:
    """One ``::error file=...,line=...,col=...,endLine=...,endColumn=...,title=...::message`` line
    (no trailing newline); properties that are None are left out."""
    if level not in LEVELS:
        raise ValueError(f"annotation level must be one of {', '.join(LEVELS)}, not {level!r}")
    return _command(level, message, {"file": file, "line": line, "col": col, "endLine": end_line,
                                     "endColumn": end_column, "title": title})


def problem_annotation(problem: Problem, hint: str | None = None) -> str:
    """A problem (a load error or a policy finding) as an annotation on the file and line it names, titled with
    its rule id (`infragen` for problems no rule reports). A location that is no file (a tier default) gives an
    annotation without a file, which GitHub shows on the run."""
    loc = problem.location
    message = (f"{problem.field}: " if problem.field else "") + problem.message + (f"; fix: {hint}" if hint else "")
    if loc is not None and loc.file is None and loc.origin:
        message = f"({loc.origin}) {message}"
    level: Level = {"warning": "warning", "info": "notice"}.get(problem.level, "error")  # type: ignore[assignment]
    if loc is None or loc.file is None:  # no file to point at: shown on the run
        return annotation(level, message, title=problem.rule or "infragen")
    return annotation(level, message, file=loc.file, line=loc.line, col=loc.column, title=problem.rule or "infragen")


def group(title: object) -> str:
    """Starts a collapsible group in the job log; close it with endgroup()."""
    return _command("group", title)


def endgroup() -> str:
    return "::endgroup::"


def in_github_actions(environ: Mapping[str, str] = os.environ) -> bool:
    """Running as a GitHub Actions step (the runner sets GITHUB_ACTIONS=true)."""
    return environ.get("GITHUB_ACTIONS") == "true"


def _fit(data: bytes, room: int) -> bytes:
    """At most room bytes of data plus TRUNCATED_NOTICE, cut after a whole line where there is one."""
    notice = TRUNCATED_NOTICE.encode("utf-8")
    keep = room - len(notice) - 1  # 1: the newline that ends a cut line
    if keep < 0:
        return b""
    head = data[:keep].decode("utf-8", errors="ignore")  # drops only a character cut in half at the end
    cut = head.rfind("\n")
    head = head[:cut + 1] if cut >= 0 else head + "\n"
    return head.encode("utf-8") + notice


def append_step_summary(markdown: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Append markdown (newline-terminated, UTF-8) to the file named by GITHUB_STEP_SUMMARY, creating it
    if missing. Returns whether anything was written: False when the variable is unset or empty, when the
    file cannot be written (never raises for that), and when the file is already too full for even the
    truncation notice. Text that would take the file past GitHub's 1 MiB cap is cut to fit and ends with
    a line saying so."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    if not markdown.endswith("\n"):
        markdown += "\n"
    data = markdown.encode("utf-8")
    try:
        with open(path, "ab+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # a previous writer left its last line open
                    data = b"\n" + data
            if size + len(data) > SUMMARY_LIMIT:
                data = _fit(data, SUMMARY_LIMIT - size)
                if not data:
                    return False
            handle.seek(0, os.SEEK_END)
            handle.write(data)
    except (OSError, ValueError):  # ValueError: a path with a NUL byte
        return False
    return True
