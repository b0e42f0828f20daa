"""TFRecord paths as Model Garden's input readers take them.

Its readers split ``input_path`` at every comma and glob each part, so a dataset in a
folder whose path holds a comma (``/data/cars, vans/``) or a glob character
(``/data/set [v2]/``) would match nothing. Such a folder is reached through a link of
this process's own in the temporary folder, removed when the process ends.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

from ...errors import CvatkitError

_SPECIAL = re.compile(r"[,*?\[\]\\]")
_links: dict[Path, Path] = {}


def input_pattern(folder: Path, files: str) -> str:
    """The pattern of the files ``files`` (a glob such as ``train-*.tfrecord``) in
    ``folder``, as a string Model Garden reads as that and nothing else."""
    folder = Path(folder).absolute()
    if not _SPECIAL.search(str(folder)):
        return str(folder / files)
    link = _links.get(folder)
    if link is None:
        link = _home(folder) / "data"
        link.symlink_to(folder, target_is_directory=True)
        _links[folder] = link
    return str(link / files)


def _home(folder: Path) -> Path:
    """A new folder of this process's own whose path is plain, removed at its end."""
    for parent in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if _SPECIAL.search(str(parent)) or not os.access(parent, os.W_OK):
            continue
        home = Path(tempfile.mkdtemp(prefix="cvatkit-data-", dir=parent))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        return home
    raise CvatkitError(
        f"the dataset folder {folder} has a comma or a glob character in its path, and so "
        f"has the temporary folder {tempfile.gettempdir()} it would be reached through; "
        "set TMPDIR to a folder without them, or move the dataset")
