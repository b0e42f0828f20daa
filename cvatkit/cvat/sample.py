"""The built-in sample task: coloured shapes on noisy backgrounds, as real CVAT exports.

It is deterministic (frame ``i`` depends only on the seed and ``i``) and small enough to
train on a CPU in minutes, so the whole kit runs with no server and no credentials.
Squares are annotated as boxes, triangles and circles as polygons.
"""

from __future__ import annotations

import io
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import OutputExistsError, UsageError
from ..records import Frame, LabelMap, Shape
from .coco import write_coco
from .cvat_xml import write_cvat_xml

WIDTH, HEIGHT = 160, 128
DEFAULT_FRAMES = 400
DEFAULT_TEST_FRAMES = 60
MAX_FRAMES = 100_000
TASK_ZIP = "task.zip"
TEST_ZIP = "test.zip"
LABELS = LabelMap.from_names(
    ["square", "triangle", "circle"],
    colors={"square": "#e6194b", "triangle": "#3cb44b", "circle": "#4363d8"},
    types={"square": "rectangle", "triangle": "polygon", "circle": "polygon"})
_RGB = {"square": (220, 40, 60), "triangle": (40, 170, 60), "circle": (60, 90, 210)}
_CIRCLE_VERTICES = 20
_TEST_OFFSET = 1_000_000
_DUMPED = "2024-01-01 00:00:00.000000+00:00"


@dataclass(frozen=True)
class SampleTask:
    task: Path
    """The annotated task export (train and validation frames)."""
    test: Path
    """Held-out frames with their ground truth, as a second task export."""
    frames: int
    test_frames: int


def write_sample(out_dir: str | Path, *, frames: int = DEFAULT_FRAMES,
                 test_frames: int = DEFAULT_TEST_FRAMES, fmt: str = "cvat",
                 seed: int = 0, overwrite: bool = False) -> SampleTask:
    """Write ``task.zip`` and ``test.zip`` into ``out_dir`` in the export format ``fmt``
    (``cvat`` for "CVAT for images 1.1", ``coco`` for "COCO 1.0"). Exports already there
    are refused unless ``overwrite``."""
    if fmt not in ("cvat", "coco"):
        raise UsageError(f"the sample's format is cvat or coco, not {fmt!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"--seed {seed}: give a whole number from 0 to {2**32 - 1}")
    if not 1 <= frames <= MAX_FRAMES or not 0 <= test_frames <= MAX_FRAMES:
        raise UsageError(f"the sample has 1 to {MAX_FRAMES} annotated frames and 0 to "
                         f"{MAX_FRAMES} held-out ones; got {frames} and {test_frames}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a folder for the sample task")
    there = [name for name in (TASK_ZIP, TEST_ZIP) if (out / name).exists()]
    if there and not overwrite:
        raise OutputExistsError(
            f"{out} already holds {' and '.join(there)}; pass --overwrite to replace them, "
            "or choose another folder")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        for name, count, offset, title in ((TASK_ZIP, frames, 0, "cvatkit sample"),
                                           (TEST_ZIP, test_frames, _TEST_OFFSET,
                                            "cvatkit sample (held out)")):
            metas = [sample_frame(seed, offset + i, index=i) for i in range(count)]
            images = {m.name: img for m, img in metas}
            frame_list = [m for m, _ in metas]
            dest = out / name
            if fmt == "cvat":
                write_cvat_xml(dest, frame_list, LABELS, task_name=title,
                               images=lambda f: images[f.name], dumped=_DUMPED)
            else:
                write_coco(dest, frame_list, LABELS, images=lambda f: images[f.name])
            paths.append(dest)
    except BaseException:  # the two exports are one sample: none, or both
        for path in paths:
            path.unlink(missing_ok=True)
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return SampleTask(paths[0], paths[1], frames, test_frames)


def sample_frame(seed: int, number: int, *, index: int) -> tuple[Frame, bytes]:
    """Frame ``number`` of the sample (its metadata and JPEG bytes)."""
    rng = np.random.default_rng([seed, number])
    img = _background(rng)
    draw = ImageDraw.Draw(img)
    shapes: list[Shape] = []
    boxes: list[tuple[float, float, float, float]] = []
    count = 0 if rng.random() < 0.03 else int(rng.integers(1, 4))
    for _ in range(count):
        label = LABELS.names[int(rng.integers(0, 3))]
        for _attempt in range(20):
            size = float(rng.uniform(18, 44))
            x0 = float(rng.uniform(2, WIDTH - size - 2))
            y0 = float(rng.uniform(2, HEIGHT - size - 2))
            box = (x0, y0, x0 + size, y0 + size)
            if all(_iou(box, b) < 0.05 for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        color = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in _RGB[label])
        shapes.append(_draw(draw, label, box, color, rng))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    frame = Frame(index=index, name=f"frame_{index:06d}.jpg", width=WIDTH, height=HEIGHT,
                  shapes=tuple(shapes))
    return frame, buf.getvalue()


def _background(rng: np.random.Generator) -> Image.Image:
    base = rng.uniform(150, 235, size=3)
    gx = np.linspace(-1, 1, WIDTH)[None, :, None] * rng.uniform(-25, 25, size=3)
    gy = np.linspace(-1, 1, HEIGHT)[:, None, None] * rng.uniform(-25, 25, size=3)
    noise = rng.normal(0, 9, size=(HEIGHT, WIDTH, 3))
    pixels = np.clip(base + gx + gy + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _draw(draw: ImageDraw.ImageDraw, label: str, box, color, rng) -> Shape:
    x0, y0, x1, y1 = box
    if label == "square":
        draw.rectangle([x0, y0, x1, y1], fill=color)
        return Shape(kind="rectangle", label=label,
                     points=tuple(round(v, 2) for v in (x0, y0, x1, y1)))
    if label == "triangle":
        apex = float(rng.uniform(x0 + 2, x1 - 2))
        pts = [(apex, y0), (x1, y1), (x0, y1)]
    else:
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        pts = [(cx + r * math.cos(2 * math.pi * k / _CIRCLE_VERTICES),
                cy + r * math.sin(2 * math.pi * k / _CIRCLE_VERTICES))
               for k in range(_CIRCLE_VERTICES)]
    draw.polygon(pts, fill=color)
    return Shape(kind="polygon", label=label,
                 points=tuple(round(v, 2) for p in pts for v in p))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
