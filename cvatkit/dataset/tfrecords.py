"""TFRecord shards in the TF Object Detection API tf.Example schema.

The schema is the one CVAT's "TFRecord 1.0" export, datumaro and TF Model Garden's
``TfExampleDecoder`` share: ``image/encoded`` holds the frame's own bytes (JPEG frames are
not re-encoded), boxes are normalised to [0, 1], class ids are 1-based, and instance
masks are one PNG (values 0/1) per object over the whole frame.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from ..errors import LimitError, SourceError
from ..geometry import clipped_bbox, mask_bitmap, shape_area
from ..images import exif_turn, image_problem, open_image
from ..records import Frame, LabelMap, Shape
from .tfexample import TFRecordWriter, make_example

FRAMES_PER_SHARD = 1000
_PASS_THROUGH = {"JPEG": b"jpeg", "PNG": b"png", "BMP": b"bmp"}


@dataclass(frozen=True)
class EncodedFrame:
    """A frame ready to be written: its serialized tf.Example and what went into it."""

    example: bytes
    image_format: str
    reencoded_from: str
    """What the image was stored as PNG from ('GIF', 'JPEG turned by its EXIF orientation
    (6)'); '' when it is stored as it was given."""
    objects: int


def shard_count(frames: int) -> int:
    return max(1, math.ceil(frames / FRAMES_PER_SHARD))


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def encode_frame(frame: Frame, data: bytes, labels: LabelMap, *, source_id: int,
                 image_name: str, include_masks: bool) -> EncodedFrame:
    """The frame's tf.Example, after checking that its image decodes and fits its size."""
    fmt, data, reencoded_from = _checked_image(data, frame, image_name)
    w, h = frame.width, frame.height
    xmin, ymin, xmax, ymax, ids, names, areas, masks = [], [], [], [], [], [], [], []
    for shape in frame.shapes:
        x0, y0, x1, y1 = clipped_bbox(shape, w, h)
        xmin.append(x0 / w), ymin.append(y0 / h), xmax.append(x1 / w), ymax.append(y1 / h)
        ids.append(labels.id_of(shape.label))
        names.append(shape.label.encode("utf-8"))
        areas.append(shape_area(shape, w, h))
        if include_masks:
            masks.append(_mask_png(shape, w, h))

    def b(values):
        return ("bytes", values)

    def f(values):
        return ("float", values)

    def i(values):
        return ("int64", values)

    feature = {
        "image/height": i([h]),
        "image/width": i([w]),
        "image/filename": b([frame.name.encode("utf-8")]),
        "image/source_id": b([str(source_id).encode()]),
        "image/key/sha256": b([hashlib.sha256(data).hexdigest().encode()]),
        "image/encoded": b([data]),
        "image/format": b([_PASS_THROUGH[fmt]]),
        "image/object/bbox/xmin": f(xmin),
        "image/object/bbox/xmax": f(xmax),
        "image/object/bbox/ymin": f(ymin),
        "image/object/bbox/ymax": f(ymax),
        "image/object/class/text": b(names),
        "image/object/class/label": i(ids),
        "image/object/area": f(areas),
        "image/object/is_crowd": i([0] * len(ids)),
        "image/object/difficult": i([0] * len(ids)),
        "image/object/truncated": i([0] * len(ids)),
    }
    if include_masks:
        feature["image/object/mask"] = b(masks)
    return EncodedFrame(make_example(feature), fmt, reencoded_from, len(ids))


class ShardWriter:
    """Writes one split's examples round-robin over its shards."""

    def __init__(self, folder: Path, split: str, frames: int) -> None:
        self.count = shard_count(frames)
        self.paths = [folder / shard_name(split, k, self.count) for k in range(self.count)]
        self._writers = [TFRecordWriter(p) for p in self.paths]
        self._next = 0
        self.written = 0

    def write(self, example: bytes) -> None:
        self._writers[self._next].write(example)
        self._next = (self._next + 1) % self.count
        self.written += 1

    def close(self) -> None:
        for w in self._writers:
            w.close()


def _checked_image(data: bytes, frame: Frame, image_name: str) -> tuple[str, bytes, str]:
    """(format, bytes to store, the format it was re-encoded from or '') after decoding
    enough to trust the file. What TensorFlow's decoder reads as it is (JPEG, PNG, BMP) is
    stored as it is; anything else (GIF, whose decoder yields a stack of frames; WebP,
    TIFF, ...) is stored as PNG. A frame turned by its EXIF orientation is stored turned,
    as CVAT shows and annotates it."""
    where = f"{image_name} (frame {frame.index} {frame.name!r})"
    try:
        img = open_image(data, where)
        fmt = img.format or ""
        size = img.size
        # Opening parses a JPEG's headers up to its image data. A JPEG that also ends
        # with its end-of-image marker is whole: what TensorFlow's decoder refuses is a
        # damaged header or a truncated file. Any other JPEG is decoded (at 1/8 scale,
        # which still reads every block) to find out; other formats are decoded whole.
        turned = exif_turn(img)
        if turned is None and not (fmt == "JPEG" and _ends_with_eoi(data)):
            if fmt == "JPEG":
                img.draft("L", (max(1, size[0] // 8), max(1, size[1] // 8)))
            img.load()
        elif turned is not None:
            img = ImageOps.exif_transpose(img)  # decodes it whole
    except LimitError:
        raise
    except Exception as e:
        raise SourceError(
            f"{where} does not decode as an image ({image_problem(e)}); replace the file "
            "or delete the frame in CVAT and export again") from None
    if img.size != (frame.width, frame.height):
        exif = f" once turned by its EXIF orientation ({turned})" if turned else ""
        raise SourceError(
            f"{image_name} is {img.size[0]}x{img.size[1]} pixels{exif} but {frame.where} says "
            f"{frame.width}x{frame.height}; the annotations belong to another image: export "
            "the task again")
    if fmt in _PASS_THROUGH and turned is None:
        return fmt, data, ""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return "PNG", buf.getvalue(), f"{fmt or 'its format'}" + (
        f" turned by its EXIF orientation ({turned})" if turned else "")


def _ends_with_eoi(data: bytes) -> bool:
    return b"\xff\xd9" in data[-64:].rstrip(b"\x00\n\r ")[-2:]


def _mask_png(shape: Shape, width: int, height: int) -> bytes:
    """The shape's mask over the whole frame as a PNG of 1-bit palette indices, 0 or 1:
    decoders (TensorFlow's, PIL's) read back the values 0 and 1 as the schema wants, at an
    eighth of the bytes to compress of an 8-bit image. A polygon is drawn into the band of
    rows it covers only; the rest of the frame stays zero."""
    stride = (width + 7) // 8
    raw = np.zeros((height, stride + 1), dtype=np.uint8)  # each row: filter 0, then bits
    if shape.kind == "polygon":
        _, y0, _, y1 = clipped_bbox(shape, width, height)
        top, bottom = max(int(y0) - 1, 0), min(int(math.ceil(y1)) + 1, height)
        band = Image.new("1", (width, max(bottom - top, 1)), 0)
        ImageDraw.Draw(band).polygon(
            [(x, y - top) for x, y in zip(shape.points[0::2], shape.points[1::2])],
            fill=1, outline=1)
        rows = np.frombuffer(band.tobytes(), dtype=np.uint8).reshape(-1, stride)
        raw[top:top + len(rows), 1:] = rows
    else:
        raw[:, 1:] = np.packbits(mask_bitmap(shape, width, height), axis=1)
    return b"".join((
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)),
        _png_chunk(b"PLTE", b"\x00\x00\x00\x01\x01\x01"),  # index i is the grey value i
        _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)),
        _png_chunk(b"IEND", b"")))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
