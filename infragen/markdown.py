"""GitHub-flavoured Markdown for pull-request comments and job summaries: `infragen review` and `infragen check`.

Formatting only: the data comes from infragen.review and infragen.api. Everything a user wrote (values, file
names, messages) is put in code spans or escaped, so a setting cannot start a heading, a link or a mention.
A review stays under GitHub's comment limit (65,536 characters): the folded unified diffs are cut first,
largest first, then environments are shortened to their summary line, and the text says what was cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .errors import Problem

if TYPE_CHECKING:  # `check`'s summary needs none of the review's imports (the models, Jinja2)
    from .review import EnvironmentReview, FileChange, Review

COMMENT_LIMIT = 65_536  # characters: GitHub's cap on an issue or pull-request comment
ROWS_PER_FILE = 12  # artifact changes listed per file; the rest are counted
_PUNCTUATION = re.compile(r"([\\`*\[\]<>~&@])")  # what could start markup inside a line


def code(text: object) -> str:
    """A code span holding `text` whatever backticks it has (on one line)."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def escape(text: object) -> str:
    """Plain text with Markdown's punctuation escaped (and no newline)."""
    return _PUNCTUATION.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # A `|` in a cell, inside a code span too, is escaped: GFM splits the row first.
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _problem(problem: Problem, hint: Callable[[Problem], str | None] | None) -> str:
    where = str(problem.location) if problem.location is not None else ""
    level = {"error": "**error**", "info": "acknowledged"}.get(problem.level, "warning")
    rule = f" {code(problem.rule)}" if problem.rule else ""
    field = f" {code(problem.field)}" if problem.field else ""
    fix = hint(problem) if hint is not None and problem.rule else None
    return (f"- {level}{rule}{' ' + code(where) if where else ''}{field}: {escape(problem.message)}"
            + (f"; fix: {escape(fix)}" if fix else ""))


# --- infragen review -----------------------------------------------------------------------------------

def summary_line(review: Review) -> str:
    changed = review.having("changed", "added", "deleted")
    added, deleted = len(review.having("added")), len(review.having("deleted"))
    extra = [f"{added} added"] if added else []
    extra += [f"{deleted} deleted"] if deleted else []
    files = review.file_counts()
    return (f"**infragen review** against {code(review.base)}: {_plural(len(changed), 'environment')} changed"
            + (f" ({', '.join(extra)})" if extra else "")
            + f", {len(review.having('unchanged'))} unchanged, {len(review.having('failing'))} failing; "
            f"output files: {files['create']} added, {files['update']} changed, {files['delete']} removed")


def _settings(env: EnvironmentReview) -> list[str]:
    if not env.settings:
        if env.status == "added":
            return []
        if env.base_problems:
            return ["No settings compared: the base side of this environment does not load.", ""]
        if env.files and env.status == "changed":
            return ["No setting changed: the artifacts differ because the output committed at the base is not what "
                    "build writes from the base's settings (stale output, or a change to infragen itself).", ""]
        return []
    rows = [[code(s.path), code(s.old) if s.old is not None else "(not set)",
             code(s.new) if s.new is not None else "(not set)",
             code(s.source)]
            for s in env.settings]
    return ["**Settings**", ""] + _table(["setting", "before", "after", "from"], rows)


def _file_rows(change: FileChange) -> list[list[str]]:
    name = code(change.path)
    if not change.entries:
        what = {"create": "(new file)", "delete": "(file removed)"}.get(change.kind, "(comments only)")
        return [[name, what, "", ""]]
    shown = change.entries[:ROWS_PER_FILE]
    rows = [[name, code(e.path), code(e.old) if e.old is not None else "(absent)",
             code(e.new) if e.new is not None else "(absent)"] for e in shown]
    if len(change.entries) > len(shown):
        rows.append([name, f"and {len(change.entries) - len(shown)} more changes (see the diff)", "", ""])
    return rows


def _artifacts(env: EnvironmentReview) -> list[str]:
    if not env.files:
        if env.status in ("unchanged", "changed", "failing") and env.settings:
            return ["**Artifacts**: no generated file changes.", ""]
        return []
    if env.status in ("added", "deleted"):
        verb = "added" if env.status == "added" else "removed"
        return [f"**Artifacts**: {_plural(len(env.files), 'file')} {verb}: "
                + ", ".join(code(f.path) for f in env.files), ""]
    rows = [row for change in env.files for row in _file_rows(change)]
    return ["**Artifacts**", ""] + _table(["file", "path", "before", "after"], rows)


def _margins(env: EnvironmentReview) -> list[str]:
    if not env.margins:
        return []
    rows = [[escape(m.name), escape(m.before) if m.before is not None else "—",
             (escape(m.after) if m.after is not None else "—") + (f" **({m.warning})**" if m.warning else "")]
            for m in env.margins]
    return ["**Margins**", ""] + _table(["margin", "before", "after"], rows)


def _findings(env: EnvironmentReview, hint: Callable[[Problem], str | None] | None) -> list[str]:
    lines = []
    if env.problems:
        lines += ["**Does not load** (the working tree's files):", ""]
        lines += [_problem(p, None) for p in env.problems] + [""]
    if env.base_problems:
        lines += ["**The base side does not load** (reported, not compared):", ""]
        lines += [_problem(p, None) for p in env.base_problems] + [""]
    if env.status == "deleted" or env.problems:
        return lines
    if env.findings:
        lines += ["**Policy findings**", ""] + [_problem(p, hint) for p in env.findings] + [""]
    else:
        lines += ["**Policy findings**: none.", ""]
    return lines


def _diff(env: EnvironmentReview, cut: bool) -> list[str]:
    if not env.diff:
        return []
    count = _plural(len(env.files), "file")
    if cut:
        command = "infragen diff" if env.status == "deleted" else f"infragen diff {env.name}"
        return [f"*Unified diff ({count}) cut to fit GitHub's comment limit: run* `{command}`.", ""]
    fence = _fence(env.diff)
    return [f"<details><summary>Unified diff ({count})</summary>", "", f"{fence}diff",
            env.diff.rstrip("\n"), fence, "", "</details>", ""]


def _heading(env: EnvironmentReview) -> str:
    return f"### {code(env.name)}: {env.status}"


def environment_section(env: EnvironmentReview, hint: Callable[[Problem], str | None] | None = None,
                        cut_diff: bool = False, brief: bool = False) -> list[str]:
    lines = [_heading(env), ""]
    if brief:
        counts = f"{_plural(len(env.settings), 'setting')}, {_plural(len(env.files), 'file')} changed"
        return lines + [f"{counts}; details cut to fit GitHub's comment limit: run `infragen review {env.name}`.", ""]
    if env.status == "deleted":
        lines += ["The environment file is gone: a build removes its output.", ""]
    if env.status == "added":
        lines += ["A new environment.", ""]
    return (lines + _settings(env) + _artifacts(env) + _margins(env) + _findings(env, hint)
            + _diff(env, cut_diff))


def review_markdown(review: Review, hint: Callable[[Problem], str | None] | None = None,
                    limit: int = COMMENT_LIMIT) -> str:
    """The review as one Markdown text under `limit` characters."""
    shown = [e for e in review.environments if e.status != "unchanged" or e.base_problems]
    quiet = [e for e in review.environments if e.status == "unchanged" and e.inputs_changed and not e.base_problems]
    head = [summary_line(review), ""]
    if review.base_problems:
        head += [f"The environments folder at {code(review.base)} does not load:", ""]
        head += [_problem(p, None) for p in review.base_problems] + [""]
    for env in quiet:
        head.append(f"- {code(env.name)}: its files differ from {code(review.base)}, but no setting and no artifact "
                    "changes (comments or formatting only).")
    if quiet:
        head.append("")
    if not shown:
        head += ["Nothing changes in effect." if quiet or review.environments else "No environments.", ""]

    cut: set[str] = set()
    brief: set[str] = set()

    def render() -> str:
        lines = list(head)
        for env in shown:
            lines += environment_section(env, hint, env.name in cut, env.name in brief)
        notes = []
        if cut:
            notes.append(f"the unified diffs of {', '.join(sorted(cut))}")
        if brief:
            notes.append(f"the details of {', '.join(sorted(brief))}")
        if notes:
            lines += [f"*Cut to stay under GitHub's {limit:,}-character comment limit: {'; '.join(notes)}.*", ""]
        return "\n".join(lines).rstrip("\n") + "\n"

    text = render()
    for env in sorted((e for e in shown if e.diff), key=lambda e: (-len(e.diff), e.name)):
        if len(text) <= limit:
            break
        cut.add(env.name)
        text = render()
    for env in reversed(shown):
        if len(text) <= limit:
            break
        brief.add(env.name)
        text = render()
    if len(text) > limit:
        notice = f"\n*Cut here to stay under GitHub's {limit:,}-character comment limit.*\n"
        keep = text[:limit - len(notice)]
        text = keep[:keep.rfind("\n") + 1].rstrip("\n") + "\n" + notice
    return text


# --- infragen check ------------------------------------------------------------------------------------

FILES_LISTED = 50


def check_markdown(stale: list[tuple[str, str]], unchanged: int, findings: list[Problem], fix: str,
                   hint: Callable[[Problem], str | None] | None = None) -> str:
    """`stale`: (label, file as shown) of every file build would change."""
    if not stale:
        lines = [f"**infragen check**: output is up to date ({_plural(unchanged, 'file')}).", ""]
    else:
        counts: dict[str, int] = {}
        for label, _ in stale:
            counts[label] = counts.get(label, 0) + 1
        summary = ", ".join(f"{counts.get(label, 0)} {label}" for label in ("stale", "missing", "orphaned"))
        lines = [f"**infragen check**: output is out of date ({summary}); run {code(fix)}.", ""]
        lines += _table(["file", "status"], [[code(path), label] for label, path in stale[:FILES_LISTED]])
        if len(stale) > FILES_LISTED:
            lines += [f"and {len(stale) - FILES_LISTED} more files.", ""]
    findings = [p for p in findings if p.level != "info"]  # acknowledged: not repeated on every check
    if findings:
        lines += ["**Policy findings**", ""] + [_problem(p, hint) for p in findings] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def failure_markdown(command: str, problems: list[Problem], outcome: str,
                     hint: Callable[[Problem], str | None] | None = None) -> str:
    lines = [f"**infragen {command}**: {_plural(len(problems), 'problem')}" + (f"; {outcome}." if outcome else "."), ""]
    lines += [_problem(p, hint) for p in problems]
    return "\n".join(lines).rstrip("\n") + "\n"
