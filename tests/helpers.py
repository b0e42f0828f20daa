"""Small helpers the tests share."""

from __future__ import annotations

import zipfile
from pathlib import Path

SAMPLE_FRAMES = 40
SAMPLE_TEST_FRAMES = 6
TINY = "num-steps=20;batch-size=8;image-size=128;log-interval=10;checkpoint-interval=10;" \
       "eval-interval=10"
SECRET = "aws-secret-that-must-not-leak"


def unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
    return dest
