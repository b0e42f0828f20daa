"""Small helpers the tests share."""

from __future__ import annotations

import zipfile
from pathlib import Path

SAMPLE_FRAMES = 40
SAMPLE_TEST_FRAMES = 6


def unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
    return dest
