"""Shared fixtures: the sample task in both export formats, and its prepared dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cvatkit import open_export, prepare, write_sample  # noqa: E402

from helpers import SAMPLE_FRAMES, SAMPLE_TEST_FRAMES  # noqa: E402


@pytest.fixture(scope="session")
def sample_cvat(tmp_path_factory) -> Path:
    """The sample task as a 'CVAT for images 1.1' zip."""
    out = tmp_path_factory.mktemp("sample-cvat")
    return write_sample(out, frames=SAMPLE_FRAMES, test_frames=SAMPLE_TEST_FRAMES,
                        fmt="cvat").task


@pytest.fixture(scope="session")
def sample_coco(tmp_path_factory) -> Path:
    """The same sample task as a 'COCO 1.0' zip."""
    out = tmp_path_factory.mktemp("sample-coco")
    return write_sample(out, frames=SAMPLE_FRAMES, test_frames=SAMPLE_TEST_FRAMES,
                        fmt="coco").task


@pytest.fixture(scope="session")
def prepared(sample_cvat, tmp_path_factory):
    """The sample task prepared as TFRecords (read-only: tests must not change it)."""
    out = tmp_path_factory.mktemp("prepared") / "dataset"
    source = open_export(sample_cvat)
    try:
        return prepare(source, out)
    finally:
        source.close()
