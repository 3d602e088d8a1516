"""The few file-system operations infragen trusts with user-controlled paths, each written once.

- `open_regular`: open without blocking and check what was opened (not the path before it): a FIFO would block
  a plain open() forever, and checking the path first leaves a moment for it to be swapped.
- `atomic_write`: a temporary file beside the target, renamed into place, so a reader or an interrupted
  write sees the old file or the new one, never half of one.
- `cache_home`: where infragen keeps what it may throw away (compiled templates, earlier results).
- `display_path`: how every command names a path in its messages.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

TMP_TAG = ".infragen-tmp-"  # in every temporary's name, so a build can remove those an earlier crash left


class NotRegularFile(OSError):
    """A FIFO, device or socket where a regular file should be."""


def open_regular(path: Path | str, *, follow_links: bool = True) -> BinaryIO:
    """Open a regular file for reading without ever blocking. Raises FileNotFoundError, IsADirectoryError,
    NotRegularFile, or OSError (ELOOP for a link when `follow_links` is False)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def atomic_write(target: Path | str, data: bytes, mode: int = 0o666) -> None:
    """Replace `target` with `data` in one rename. `mode` is masked by the umask, as for any new file."""
    head, name = os.path.split(os.fspath(target))
    tmp = os.path.join(head, f".{name}{TMP_TAG}{os.getpid()}")
    # O_EXCL: never write through whatever already has the temporary's name (a planted symlink).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cache_home() -> Path | None:
    """$XDG_CACHE_HOME/infragen (default ~/.cache/infragen), or None without a usable home directory."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "infragen") if os.path.isabs(base) else None


def display_path(path: str | os.PathLike[str]) -> str:
    """How a file is named in messages: relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel.replace(os.sep, "/")
