"""Find secrets written inline in settings files (rule `inline-secret`).

Secrets reach Alertmanager by file path (`api_url_file`, `routing_key_file`) mounted from Kubernetes
Secrets. A secret in an environment file ends up in git and in review diffs, so every value (and key) of
every file an environment reads is scanned, before validation: a webhook URL under a misspelt key such as
`slack: {api_url: ...}` is reported as the leak it is, not only as an unknown key. Messages never repeat
the secret; the location says where it is.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .errors import Location, Problem
from .rules import INLINE_SECRET
from .yamlsource import Document

# (what it is, pattern). Specific shapes first so the message names the most likely kind.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Slack webhook URL", re.compile(r"hooks\.slack(-gov)?\.com/(services|workflows|triggers)/", re.IGNORECASE)),
    ("a Slack token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}")),
    ("a Slack app token", re.compile(r"\bxapp-[0-9]+-[A-Za-z0-9-]{10,}")),
    ("a PagerDuty integration URL", re.compile(r"events\.(eu\.)?pagerduty\.com/integration/[A-Za-z0-9]{20,}", re.IGNORECASE)),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    # Scheme bounded to 32 characters: unbounded, a 40 KB value took 16 s (every start rescans to the end).
    ("a URL with a password", re.compile(r"[a-z][a-z0-9+.-]{0,31}://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("a bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)),
    ("an API key", re.compile(r"\b([sr]k_(live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})")),
)
# One pass over the text instead of one per pattern: nearly every value matches none of them.
_ANY_PATTERN = re.compile("|".join(f"(?i:{p.pattern})" if p.flags & re.IGNORECASE else f"(?:{p.pattern})"
                                   for _, p in _PATTERNS))
_RUN = re.compile(r"[A-Za-z0-9]+")
_LONG_RUN = re.compile(r"[A-Za-z0-9]{20,}")  # shorter runs are never reported below
# A commit id in a link (a runbook pinned to a revision) is public, not a secret.
_GIT_REVISION = re.compile(r"/(blob|tree|commit|commits|raw|src)/[0-9a-f]{40}(?=[/#?]|$)")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _token_like(text: str) -> str | None:
    """Name the kind of secret `text` looks like, or None. Runs are split at every non-alphanumeric character, so
    ordinary names (`simple378-production`, `pagerduty-routing-key`) are short runs and never match."""
    if _ANY_PATTERN.search(text):
        for kind, pattern in _PATTERNS:
            if pattern.search(text):
                return kind
    if not _LONG_RUN.search(text):
        return None
    for run in _RUN.findall(_GIT_REVISION.sub(r"/\1/revision", text)):
        has_digit = any(c.isdigit() for c in run)
        has_letter = any(c.isalpha() for c in run)
        if len(run) == 32 and has_digit and has_letter:
            return "a PagerDuty key"  # Events API v2 routing and integration keys are 32 alphanumerics
        mixed_case = any(c.islower() for c in run) and any(c.isupper() for c in run)
        if has_digit and has_letter and _entropy(run) >= 3.5 and (len(run) >= 32 or (len(run) >= 20 and mixed_case)):
            return "a token"
    return None


def _walk(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield path + (key,), str(key)
            yield from _walk(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, path + (i,))
    elif isinstance(value, str):
        yield path, value


def find_inline_secrets(document: Document) -> list[Problem]:
    """One error per value (or key) of `document` that looks like a secret."""
    problems = []
    seen: set[tuple[Any, ...]] = set()
    for path, text in _walk(document.data, ()):
        kind = _token_like(text)
        if kind is None or path in seen:
            continue
        seen.add(path)
        location = document.locations.get(path, Location(document.display, 1, 1))
        problems.append(Problem(
            location, ".".join(str(p) for p in path),
            f"looks like {kind}: secrets never go in settings files (they end up in git and in every review)",
            rule=INLINE_SECRET.id))
    return problems
