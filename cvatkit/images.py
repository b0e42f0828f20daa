"""Frames' pixels: decoding an image file, and saying why one cannot be decoded."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np

from .errors import LimitError, SourceError
from .limits import PIXELS

_ORIENTATION = 0x0112
"""The EXIF tag of a photo's orientation."""
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


def exif_turn(img) -> int | None:
    """The EXIF orientation (2-8) that turns or mirrors ``img`` as CVAT shows it; None when
    it has none to apply (TIFF's, PIL applies as it opens the file)."""
    if img.format == "TIFF":
        return None
    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001  (a damaged EXIF block: the pixels as they are)
        return None
    return orientation if orientation in range(2, 9) else None


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """RGB uint8 pixels of an encoded image, turned by its EXIF orientation as CVAT shows
    it; a SourceError naming it if it cannot be read."""
    from PIL import ImageOps

    try:
        with open_image(data, name) as img:
            if exif_turn(img) is not None:
                img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise SourceError(f"{name} cannot be decoded as an image ({image_problem(e)}); "
                          "replace or remove that frame and run again") from None
