"""The files of an export, whether it is a folder or a zip, behind one small interface;
and how the export writers add files to a zip."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import LimitError, SourceError
from ..files import inside, name_problem
from ..limits import INFLATION, INFLATION_FLOOR, MB, Limit
from ..records import Frame

_METHODS = {9: "Deflate64", 12: "BZIP2", 14: "LZMA", 93: "Zstandard", 95: "XZ", 98: "PPMd",
            99: "AES encryption"}
"""Zip compression methods by number, for the message when Python's zip reader lacks one."""
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
"""The time stamp of every member the writers add: the same input gives the same zip."""
ImageLoader = Callable[[Frame], bytes]
"""What a writer calls for a frame's encoded image."""


class Container:
    """Read-only access to the files of an export folder or zip, by '/'-separated name.

    A zip whose files all sit in one top-level folder (a zipped export folder) is read
    as if that folder were its root.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self._names: set[str] | None = None
        elif zipfile.is_zipfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise SourceError(f"{self.path}: not a readable zip file ({e})") from None
            names = [n for n in self._zip.namelist() if not n.endswith("/")]
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) == 1 and all("/" in n for n in names):
                top = tops.pop() + "/"
                if any(n == top + "annotations.xml" or n.startswith(top + "annotations/")
                       for n in names):
                    self._prefix = top
            self._names = {n[len(self._prefix):] for n in names}
        else:
            raise SourceError(
                f"{self.path} is neither a folder nor a zip file; give a CVAT export "
                "(the .zip CVAT downloads, or the folder it unpacks to)")

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def display(self, name: str) -> str:
        """How to name a member in a message: ``export.zip:annotations.xml``."""
        if self._zip is not None:
            return f"{self.path.name}:{self._prefix}{name}"
        return str(self.path / name)

    def exists(self, name: str) -> bool:
        if self._names is not None:
            return name in self._names
        return self._local(name).is_file()

    def names(self) -> list[str]:
        """Every file name, sorted (walks the folder: use sparingly on big folders)."""
        if self._names is not None:
            return sorted(self._names)
        found = []
        for root, _dirs, files in os.walk(self.path):
            rel = PurePosixPath(Path(root).relative_to(self.path).as_posix())
            found.extend(str(rel / f) if str(rel) != "." else f for f in files)
        return sorted(found)

    def open(self, name: str, *, limit: Limit) -> IO[bytes]:
        """The file ``name`` to read, once its size is known to be within ``limit`` (and,
        in a zip, within what its compressed size may inflate to)."""
        try:
            if self._zip is not None:
                self._check(name)
                info = self._zip.getinfo(self._prefix + name)
                self._check_size(name, info.file_size, limit, info.compress_size)
                return self._open_member(name, info)
            path = self._local(name)
            self._check_size(name, path.stat().st_size, limit)
            return open(path, "rb")
        except (KeyError, FileNotFoundError):
            raise SourceError(f"{self.display(name)}: file is missing") from None

    def _open_member(self, name: str, info: zipfile.ZipInfo) -> IO[bytes]:
        if info.flag_bits & 0x1:
            raise SourceError(
                f"{self.display(name)} is encrypted (the zip has a password); unzip it with "
                "its password and give the folder")
        try:
            return self._zip.open(info)  # type: ignore[union-attr]
        except NotImplementedError:
            method = _METHODS.get(info.compress_type, f"method {info.compress_type}")
            raise SourceError(
                f"{self.display(name)} is compressed with {method}, which cvatkit cannot "
                "read; unzip it (e.g. with 7-Zip) and give the folder, or zip it again with "
                "ordinary Deflate compression") from None

    def read(self, name: str, *, limit: Limit) -> bytes:
        with self.open(name, limit=limit) as f:
            return f.read()

    def size(self, name: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._prefix + name).file_size
        return self._local(name).stat().st_size

    def _local(self, name: str) -> Path:
        """A file of an export folder: never one outside it."""
        return inside(self.path, name, what=f"{self.path}: the file", error=SourceError,
                      fix="a file an export names lies inside the export")

    def _check_size(self, name: str, size: int, limit: Limit,
                    compressed: int | None = None) -> None:
        limit.check(size, self.display(name))
        if compressed is not None and size > INFLATION_FLOOR and \
                size > INFLATION.value() * max(compressed, 1):
            raise LimitError(
                f"{self.display(name)} inflates from {compressed:,} bytes to "
                f"{size / MB:,.0f} MB, {size // max(compressed, 1):,} times, over the limit "
                f"of {INFLATION.units():,} times for {INFLATION.what} (a zip bomb?); set "
                f"{INFLATION.env} higher if it is meant to be so")

    def _check(self, name: str) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise SourceError(f"{self.display(name)}: not a name inside the export "
                              f"({problem})")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def layout_hint(self, limit: int = 8) -> str:
        """A short listing of what the export holds, for 'wrong layout' messages."""
        names = self.names()
        tops = sorted({n.split("/", 1)[0] + ("/" if "/" in n else "") for n in names})
        shown = ", ".join(tops[:limit]) + (", ..." if len(tops) > limit else "")
        return shown or "nothing"


def add_to_zip(z: zipfile.ZipFile, name: str, data: bytes,
         compression: int = zipfile.ZIP_STORED) -> None:
    """``data`` as the member ``name``: never one that would unpack outside the zip's
    folder."""
    problem = name_problem(name)
    if problem is not None:
        raise SourceError(f"{name!r} cannot be a file of an export ({problem}); name the "
                          "frame's image by a path inside the task")
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = compression
    z.writestr(info, data)
