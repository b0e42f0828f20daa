"""Inputs larger than a limit of ``cvatkit.limits`` are refused by name before they are
read; each limit is raised by its environment variable. (Exports: tests/bad_inputs/.)"""

from __future__ import annotations

import struct
import zlib

import pytest

from cvatkit.errors import LimitError, UsageError
from cvatkit.limits import LIMITS, MB, TEXT


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height``; its pixel data cut short."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                                2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("reader", ["hparams", "catalog", "labels", "manifest"])
def test_a_settings_file_over_the_text_limit_is_named(reader, tmp_path, monkeypatch):
    from cvatkit.label_files import read_class_names
    from cvatkit.store import open_store
    from cvatkit.training import load_catalog
    from cvatkit.training.hparams import read_hparams_file

    monkeypatch.setenv(TEXT.env, "1")
    big = "#" * (MB + 10) + "\n"
    path = {"hparams": tmp_path / "big.hparams", "catalog": tmp_path / "catalog.yaml",
            "labels": tmp_path / "label_map.json",
            "manifest": tmp_path / "store" / "lab" / "manifest.json"}[reader]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(big)
    read = {"hparams": lambda: read_hparams_file(path), "catalog": lambda: load_catalog(path),
            "labels": lambda: read_class_names(path),
            "manifest": lambda: open_store(str(tmp_path / "store")).get_bytes(
                "lab/manifest.json")}[reader]
    with pytest.raises(LimitError, match=rf"holds 1\.0 MB, over the limit of 1 MB for a "
                                         rf"settings file .*set {TEXT.env} higher"):
        read()
    monkeypatch.setenv(TEXT.env, "2")  # raised: read (and judged on what it holds)
    try:
        read()
    except LimitError:
        pytest.fail("refused under a limit it is within")
    except Exception:  # noqa: BLE001  (what the file holds is no hyperparameters, say)
        pass


@pytest.mark.parametrize("size", [(20000, 12000), (20000, 20000)])
def test_an_image_of_too_many_pixels_is_named_before_it_is_decoded(size):
    """240 megapixels: over cvatkit's limit; 400: over PIL's own guard, which answers
    first with its DecompressionBombError. Either way one message names the image."""
    from cvatkit.images import decode_rgb

    with pytest.raises(LimitError, match=r"frame 7\.png.* megapixels.*limit of 178 "
                                         r"megapixels.*CVATKIT_MAX_IMAGE_MEGAPIXELS"):
        decode_rgb(_png_header(*size), "frame 7.png")


def test_a_limit_that_is_not_a_whole_number_is_named(monkeypatch):
    for limit in LIMITS:
        monkeypatch.setenv(limit.env, "-3")
        with pytest.raises(UsageError, match=f"{limit.env}='-3': give a whole number"):
            limit.value()
        monkeypatch.delenv(limit.env)
        assert limit.units() == limit.default
