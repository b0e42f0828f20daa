"""Pixel geometry of shapes: areas, clipping to the frame, rasterising to bitmaps."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .errors import AnnotationError
from .records import Shape


def polygon_area(points: tuple[float, ...]) -> float:
    xs, ys = np.asarray(points[0::2]), np.asarray(points[1::2])
    if len(xs) < 3:
        return 0.0
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def raw_area(shape: Shape) -> float:
    """The shape's own area before clipping (<= 0 for degenerate shapes)."""
    if shape.kind == "rectangle":
        x0, y0, x1, y1 = shape.points
        w, h = x1 - x0, y1 - y0
        return w * h if w > 0 and h > 0 else min(w, h, 0.0)
    if shape.kind == "polygon":
        return polygon_area(shape.points)
    return float(sum(shape.points[1:-4:2]))  # the runs of 1s


def shape_area(shape: Shape, width: int, height: int) -> float:
    """The area COCO counts: the box for rectangles (clipped to the frame), the polygon's
    own area, or the mask's pixels."""
    if shape.kind == "rectangle":
        x0, y0, x1, y1 = clipped_bbox(shape, width, height)
        return (x1 - x0) * (y1 - y0)
    return raw_area(shape)


def clipped_bbox(shape: Shape, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = shape.bbox()
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
            min(max(x1, 0.0), width), min(max(y1, 0.0), height))


def box_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (rows) with every box of ``b`` (columns); boxes are
    (xmin, ymin, xmax, ymax) rows."""
    a, b = a[:, None, :], b[None, :, :]
    x0, y0 = np.maximum(a[..., 0], b[..., 0]), np.maximum(a[..., 1], b[..., 1])
    x1, y1 = np.minimum(a[..., 2], b[..., 2]), np.minimum(a[..., 3], b[..., 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def mask_bitmap(shape: Shape, width: int, height: int) -> np.ndarray:
    """The shape as a (height, width) bool bitmap of its frame, clipped to the frame."""
    if shape.kind == "polygon":
        img = Image.new("1", (width, height), 0)
        ImageDraw.Draw(img).polygon(list(zip(shape.points[0::2], shape.points[1::2])),
                                    fill=1, outline=1)
        return np.asarray(img, dtype=bool)
    out = np.zeros((height, width), dtype=bool)
    if shape.kind == "rectangle":
        x0, y0, x1, y1 = (int(round(v)) for v in clipped_bbox(shape, width, height))
        out[y0:y1, x0:x1] = True
        return out
    *runs, left, top, right, bottom = (int(v) for v in shape.points)
    w, h = right - left + 1, bottom - top + 1
    if w < 1 or h < 1 or min(runs, default=0) < 0 or sum(runs) != w * h:
        raise AnnotationError(
            f"a mask of label {shape.label!r} is damaged: its runs cover {sum(runs)} "
            f"pixels, its box ({left}, {top})-({right}, {bottom}) holds "
            f"{max(w, 0) * max(h, 0)}; export the task from CVAT again")
    box = np.repeat((np.arange(len(runs)) & 1) != 0, runs).reshape(h, w)
    ys, xs = slice(max(top, 0), min(top + h, height)), slice(max(left, 0), min(left + w, width))
    out[ys, xs] = box[ys.start - top: ys.stop - top, xs.start - left: xs.stop - left]
    return out


ELLIPSE_VERTICES = 32


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float,
                    rotation: float = 0.0) -> tuple[float, ...]:
    """An ellipse (centre, radii, rotation in degrees) as a polygon's flat points."""
    rot = math.radians(rotation)
    out: list[float] = []
    for i in range(ELLIPSE_VERTICES):
        t = 2 * math.pi * i / ELLIPSE_VERTICES
        x, y = rx * math.cos(t), ry * math.sin(t)
        out += (cx + x * math.cos(rot) - y * math.sin(rot),
                cy + x * math.sin(rot) + y * math.cos(rot))
    return tuple(out)


def encode_mask(bitmap: np.ndarray, left: int = 0, top: int = 0) -> tuple[float, ...] | None:
    """A bool bitmap (placed at ``left``, ``top`` of its frame) in CVAT's mask encoding,
    cropped to its set pixels; None when no pixel is set. ``mask_bitmap`` reverses it."""
    from cvat_sdk.masks import encode_mask as cvat_encode_mask

    bitmap = np.asarray(bitmap, dtype=bool)
    if not bitmap.any():
        return None
    *runs, x0, y0, x1, y1 = cvat_encode_mask(bitmap)
    return tuple(float(r) for r in runs) + (
        float(x0 + left), float(y0 + top), float(x1 + left), float(y1 + top))


def bitmap_polygon(bitmap: np.ndarray, left: int = 0, top: int = 0,
                   tolerance: float = 0.7) -> tuple[float, ...] | None:
    """The outline of a bitmap's largest blob as polygon points in frame pixels, simplified
    to within ``tolerance`` pixels; None when it has no blob of 3 or more vertices."""
    import cv2

    contours, _ = cv2.findContours(bitmap.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = cv2.approxPolyDP(max(contours, key=cv2.contourArea), tolerance, True)
    if len(contour) < 3:
        return None
    return tuple(float(v) for x, y in contour[:, 0, :] for v in (x + left, y + top))


def as_kind(shape: Shape, kind: str, width: int, height: int) -> Shape | None:
    """The shape redrawn as a rectangle, polygon or mask (what a CVAT label accepts);
    None when nothing of it is left inside the frame."""
    from dataclasses import replace

    if shape.kind == kind:
        return shape
    if kind == "rectangle":
        x0, y0, x1, y1 = clipped_bbox(shape, width, height)
        return replace(shape, kind="rectangle", points=(x0, y0, x1, y1), rotation=0.0) \
            if x1 > x0 and y1 > y0 else None
    if kind == "polygon" and shape.kind == "rectangle" and not shape.rotation:
        x0, y0, x1, y1 = shape.points
        return replace(shape, kind="polygon", points=(x0, y0, x1, y0, x1, y1, x0, y1))
    bitmap = mask_bitmap(shape, width, height)
    points = encode_mask(bitmap) if kind == "mask" else bitmap_polygon(bitmap)
    return None if points is None else replace(shape, kind=kind, points=points, rotation=0.0)
