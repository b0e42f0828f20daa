"""Manifests written as YAML, whole or not at all."""

from __future__ import annotations

import os
import sys
from typing import Any

import yaml

from ..files import write_text_file


def dump_manifest(manifest: dict[str, Any], out: str | os.PathLike[str] | None = None) -> str:
    """``manifest`` as YAML, written to ``out`` (or printed when None); the text."""
    text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=100)
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_file(out, text)
    return text
