"""Frames' pixels: decoding an image file, and saying why one cannot be decoded."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np

from .errors import LimitError, SourceError
from .limits import PIXELS

_OBJECT = re.compile(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>")


def image_problem(e: BaseException) -> str:
    """Why PIL could not read an image, in words (no ``<_io.BytesIO object at 0x...>``)."""
    from PIL import UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):
        return "it is not an image file of a known format (JPEG, PNG, BMP, GIF, TIFF, WebP)"
    text = _OBJECT.sub("", str(e)).strip() or type(e).__name__
    return f"{text}: the file is damaged or cut short" if "truncated" in text else text


def open_image(data: bytes, name: str):
    """PIL's image of ``data``, its header read and its pixels not yet: refused, naming
    it, when it has more pixels than ``limits.PIXELS`` allows (PIL's own guard against
    decompression bombs is set to the same limit). PIL's errors for files it cannot read
    pass through."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = PIXELS.value()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:  # "Image size (N pixels) exceeds limit ..."
        found = re.search(r"\((\d+) pixels\)", str(e))
        PIXELS.check(int(found.group(1)) if found else PIXELS.value() + 1, name)
        raise LimitError(f"{name}: {e}") from None
    PIXELS.check(img.width * img.height, f"{name} ({img.width}x{img.height})")
    return img


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """RGB uint8 pixels of an encoded image; a SourceError naming it if it cannot be read."""
    try:
        with open_image(data, name) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise SourceError(f"{name} cannot be decoded as an image ({image_problem(e)}); "
                          "replace or remove that frame and run again") from None
