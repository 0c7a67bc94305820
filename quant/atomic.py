"""Write a file so that it is either complete or absent, never half-written.

Every writer of the project (integer models, .npz, JSON, plots, reports) goes through
`atomic_write`: the data goes to a temporary file in the destination folder, is flushed to
disk, and only then renamed over the destination (`os.replace` is atomic on one file
system). A failure, an exception or Ctrl-C removes the temporary file and leaves any
previous file untouched.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from quant.errors import DataError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def check_destination(path: str | os.PathLike[str]) -> None:
    """Fail before a long computation, not after it, when `path`'s folder does not exist."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise DataError(f"cannot write {path}: folder {folder} does not exist")


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it replaces `path`, on failure it is removed.

    `mode` is "wb" or "w" (text, UTF-8). The destination folder must exist; if the temporary
    file cannot be created there, a DataError names the destination.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
