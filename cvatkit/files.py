"""Files that appear whole or not at all: written aside in their folder, then renamed."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError


@contextmanager
def written_aside(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``dest`` to write to: renamed to ``dest`` when the block
    ends, removed when it raises, so a reader never sees a half-written file. The folder
    is created; a folder already at ``dest`` is refused."""
    dest = Path(dest)
    if dest.is_dir():
        raise UsageError(f"{dest} is a folder; give the name of the file to write")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # one name per process and thread (the file gets the usual permissions, unlike mkstemp's)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_file(dest: str | os.PathLike[str], text: str) -> Path:
    """``text`` as ``dest`` (UTF-8), whole or not at all."""
    with written_aside(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_bytes_file(dest: str | os.PathLike[str], data: bytes) -> Path:
    """``data`` as ``dest``, whole or not at all."""
    with written_aside(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)
