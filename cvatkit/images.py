"""Frames' pixels: decoding an image file, and saying why one cannot be decoded."""

from __future__ import annotations

import io
import re

import numpy as np

from .errors import SourceError

_OBJECT = re.compile(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>")


def image_problem(e: BaseException) -> str:
    """Why PIL could not read an image, in words (no ``<_io.BytesIO object at 0x...>``)."""
    from PIL import UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):
        return "it is not an image file of a known format (JPEG, PNG, BMP, GIF, TIFF, WebP)"
    text = _OBJECT.sub("", str(e)).strip() or type(e).__name__
    return f"{text}: the file is damaged or cut short" if "truncated" in text else text


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """RGB uint8 pixels of an encoded image; a SourceError naming it if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise SourceError(f"{name} cannot be decoded as an image ({image_problem(e)}); "
                          "replace or remove that frame and run again") from None
