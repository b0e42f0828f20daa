"""Files and folders that appear whole or not at all, the checks of output folders, and
names that must stay inside their folder.

Whatever cvatkit writes for a reader (a dataset, an export, predictions, a pulled model,
downloaded weights, a picture, a status file) is written aside in its own folder, then
renamed into place: a reader sees the old version or the new one, never half of one, and
a failure leaves nothing that looks complete.

A name that a file cvatkit did not write gives for another file (an export's frame, a
manifest's entry, a store's key, an archive's member) is a path inside a root, and is
refused (``inside``) when it would lead out of it.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import itertools
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CvatkitError, DiskFullError, OutputExistsError, UsageError
from .processes import pid_alive

CACHE_ENV = "CVATKIT_CACHE"
_CHUNK = 1 << 20
_serial = itertools.count()


@contextmanager
def written_aside(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``dest`` to write to: renamed to ``dest`` when the block
    ends, removed when it raises, so a reader never sees a half-written file. The folder
    is created; a folder already at ``dest`` is refused."""
    dest = Path(dest)
    if dest.is_dir():
        raise UsageError(f"{dest} is a folder; give the name of the file to write")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partial_files(dest)
    # one name per process and thread (the file gets the usual permissions, unlike mkstemp's)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        full = out_of_room(e)
        if full:
            raise DiskFullError(dest, full) from None
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


def copy_file(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """A copy of ``src`` as ``dest``, whole or not at all."""
    with written_aside(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


@contextmanager
def folder_written_aside(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A new, empty folder beside ``dest`` to fill: when the block ends it takes
    ``dest``'s place (what was there is removed once the new folder is in), when it raises
    it is removed. Callers check first that ``dest`` may be replaced
    (``require_new_or_empty``). Folders left half-written by processes that were killed
    are removed on the way."""
    dest = Path(dest)
    if dest.is_symlink():  # the folder the link names is the one to fill, the link stays
        dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dest)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{next(_serial)}")
    shutil.rmtree(tmp, ignore_errors=True)  # a dead process of the same pid left it
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if dest.exists() or dest.is_symlink():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{threading.get_ident()}")
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        full = e.reason if isinstance(e, DiskFullError) else out_of_room(e)
        if full:  # named by the folder asked for, not by the file inside it
            raise DiskFullError(dest, full) from None
        raise


def require_new_or_empty(folder: str | os.PathLike[str], choose: str, *,
                         not_ours: str = "") -> None:
    """Refuse ``folder`` unless it does not exist or is an empty folder. ``choose`` says
    what to do instead (``give a new folder for the predictions``); ``not_ours`` names
    what cvatkit would have recognised there (``a cvatkit dataset``), for the message."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputExistsError(f"{folder} is a file; {choose}")
    if any(folder.iterdir()):
        held = f" and does not hold {not_ours}" if not_ours else ""
        raise OutputExistsError(f"{folder} is not empty{held}; {choose}")


def remove_stale_partials(dest: str | os.PathLike[str]) -> None:
    """Remove the half-written folders of ``dest`` whose process is gone (killed)."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return
    for p in dest.parent.glob(f".{glob.escape(dest.name)}.partial-*"):
        m = re.match(r"\d+", p.name[len(f".{dest.name}.partial-"):])
        if m and not pid_alive(int(m.group())):
            shutil.rmtree(p, ignore_errors=True)


_OUT_OF_ROOM = {errno.ENOSPC: "no space is left on its disk",
                errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "a file grew larger than this process may write (ulimit -f)"}


def out_of_room(e: BaseException) -> str | None:
    """Why ``e`` says a write ran out of room (a full disk, a quota, a file size limit;
    an OSError's errno, or the words TensorFlow's errors carry); None when it is no such
    error."""
    if isinstance(e, OSError) and e.errno in _OUT_OF_ROOM:
        return _OUT_OF_ROOM[e.errno]
    text = str(e)
    for code, words in ((errno.ENOSPC, "No space left on device"),
                        (errno.EDQUOT, "Disk quota exceeded"), (errno.EFBIG, "File too large")):
        if words in text:
            return _OUT_OF_ROOM[code]
    return None


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a path inside a root (None when it can): empty, absolute,
    a '..' step (with '/' or '\\' between steps, as Windows tools write them), a NUL."""
    if not isinstance(name, str) or not name:
        return "it is empty" if name == "" else "it is not a name"
    if "\x00" in name:
        return "it holds a NUL character"
    steps = name.replace("\\", "/")
    if steps.startswith("/") or re.match(r"^[A-Za-z]:/", steps):
        return "it is an absolute path"
    if ".." in steps.split("/"):
        return "it climbs out with '..'"
    return None


def inside(root: str | os.PathLike[str], name: str, *, what: str, fix: str,
           error: type[CvatkitError] = UsageError) -> Path:
    """``root / name`` for a ``name`` given by a file cvatkit did not write; refused with
    ``error`` (naming ``what`` and saying ``fix``) when it would lead outside ``root``: an
    absolute path or a '..' step. (A link inside ``root`` is its owner's doing, and
    followed: zips and stores hold none.)"""
    problem = name_problem(name)
    if problem is not None:
        raise error(f"{what} {name!r} would be outside {root} ({problem}); {fix}")
    return Path(root) / name


def _remove_stale_partial_files(dest: Path) -> None:
    """Remove what writes into ``dest``'s folder by processes that were killed left
    half-done: once per folder and process, so that many files written into one folder
    do not list it again each time."""
    folder = dest.parent.absolute()
    if folder in _swept:
        return
    _swept.add(folder)
    for p in folder.glob(".*.partial"):
        m = re.search(r"\.(\d+)-\d+\.partial$", p.name)
        if m and not pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)


_swept: set[Path] = set()


def cache_root() -> Path:
    """Where cvatkit keeps what it downloads (weights, pulled models): ``$CVATKIT_CACHE``,
    else ``~/.cache/cvatkit``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cvatkit")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
