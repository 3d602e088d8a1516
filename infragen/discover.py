"""Which environments a directory holds, and how paths are shown: what every command needs first, without
the models, so a run that finds every environment in the result cache (infragen.cache) never imports them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError, Location, Problem
from .fsutil import display_path, open_regular

ENV_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PARTIAL_RE = re.compile(r"^_[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SUFFIX = ".yaml"
MAX_FILE_BYTES = 256 * 1024  # a settings file is a few KB; this bounds memory and parse time on anything else


def read_settings_bytes(path: Path) -> bytes:
    """Up to MAX_FILE_BYTES + 1 bytes of a settings file, for the loader and the result cache alike, read without
    blocking on a FIFO or device (fsutil.open_regular). Raises FileNotFoundError, IsADirectoryError,
    NotRegularFile or another OSError."""
    with open_regular(path) as fh:
        return fh.read(MAX_FILE_BYTES + 1)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    import difflib  # here: only a misspelt name needs it

    options = list(options)
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if not close and len(str(word)) >= 3:  # abbreviations: "prod" -> "production"
        close = [o for o in options if o.startswith(str(word))][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


class Discovery:
    """The environment files of one directory."""

    def __init__(self, environments_dir: Path) -> None:
        self.dir = Path(environments_dir)

    def names(self) -> list[str]:
        """Environment names (files not starting with `_`), sorted so output never depends on listing order."""
        if not self.dir.is_dir():
            raise InputError.single("environments directory not found (by default infragen looks for environments/ in "
                                    "the working directory and every directory above it; or set --environments, "
                                    "INFRAGEN_ENVIRONMENTS or [tool.infragen] environments)",
                                    Location(display_path(self.dir)))
        names, problems = [], []
        for entry in sorted(os.listdir(self.dir)):
            if entry.endswith(".yml") and not entry.startswith("."):
                # Silently skipping it would let CI pass while the environment is never generated.
                problems.append(Problem(Location(display_path(self.dir / entry)), None,
                                        f"settings files end in .yaml: rename it to {entry[:-4]}.yaml"))
                continue
            if not entry.endswith(SUFFIX) or entry.startswith("."):
                continue
            stem = entry[: -len(SUFFIX)]
            if stem.startswith("_"):
                if not PARTIAL_RE.fullmatch(stem):
                    problems.append(Problem(Location(display_path(self.dir / entry)), None,
                                            "a partial's name must be _ followed by a DNS label (lower-case letters, digits, '-')"))
                continue
            if not ENV_NAME_RE.fullmatch(stem):
                problems.append(Problem(Location(display_path(self.dir / entry)), None,
                                        "an environment's file name must be a DNS label: lower-case letters, digits and '-'"))
                continue
            names.append(stem)
        if problems:
            raise InputError(problems)
        return names

    def select(self, requested: Iterable[str] | None) -> list[str]:
        known = self.names()
        if not requested:
            return known
        problems, chosen = [], []
        for name in requested:
            if name in known:
                if name not in chosen:
                    chosen.append(name)
            elif PARTIAL_RE.fullmatch(name):
                problems.append(Problem(None, None, f"{name!r} is a partial, not an environment"))
            elif not ENV_NAME_RE.fullmatch(name):  # `../x`, `/etc`, `.`: never a path, only a name
                problems.append(Problem(None, None, f"{name!r} is not an environment name: names are DNS labels "
                                        "(lower-case letters, digits, '-'), never paths"))
            else:
                hint = did_you_mean(name, known) or f" (known: {', '.join(known) or 'none'})"
                problems.append(Problem(None, None, f"unknown environment {name!r}{hint}"))
        if problems:
            raise InputError(problems)
        return sorted(chosen)
