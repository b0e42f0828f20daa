"""How well a model's anchors fit a dataset's boxes, and the anchor size that fits them
best.

A detector learns each object from the anchors it matches: Model Garden's RetinaNet
takes an anchor whose IoU with the box is at least 0.5. A box no anchor shape reaches is
learnt poorly (as Ultralytics' AutoAnchor measures for YOLO). The fit is the share of the
training boxes, at the run's input size, whose best anchor shape (centred on the box)
has that IoU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MATCH_IOU = 0.5
"""The IoU at which Model Garden's RetinaNet matcher takes an anchor for a box."""
GOOD_FIT = 0.9
"""A fit below this share of boxes is worth another anchor size."""
ANCHOR_SIZES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
"""The anchor sizes tried when the model's own fits poorly."""


@dataclass(frozen=True)
class AnchorGrid:
    """The anchors of a model: on feature levels ``min_level``..``max_level`` (stride
    2**level), ``num_scales`` octave scales each, every aspect ratio (width / height), a
    base side of ``anchor_size`` strides."""

    min_level: int
    max_level: int
    anchor_size: float
    num_scales: int = 3
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)

    def shapes(self) -> list[tuple[float, float]]:
        """(width, height) in pixels of every anchor shape, as Model Garden makes them."""
        out = []
        for level in range(self.min_level, self.max_level + 1):
            for scale in range(self.num_scales):
                side = self.anchor_size * 2 ** level * 2 ** (scale / self.num_scales)
                for ratio in self.aspect_ratios:
                    out.append((side * ratio ** 0.5, side / ratio ** 0.5))
        return out


def anchor_grid(spec, anchor_size: float | None = None) -> AnchorGrid:
    """The anchors of catalog entry ``spec`` (``ModelSpec``) with ``anchor_size`` (None:
    the model's own); the levels are those its Model Garden config is given."""
    if spec.family == "retinanet":
        return AnchorGrid(3, spec.max_level or 6, anchor_size or spec.anchor_size)
    low = 3 if spec.backbone in ("inception_resnet_v2", "spinenet49") else 2
    high = 7 if spec.backbone == "spinenet49" else spec.max_level or 6
    # Faster and Mask R-CNN's RPN: Model Garden's default anchors (one scale, size 8)
    return AnchorGrid(low, high, anchor_size or 8.0, num_scales=1)


def anchor_fit(boxes: Iterable[tuple[float, float]], grid: AnchorGrid,
               image_size: int) -> float:
    """The share of ``boxes`` ((width, height), each over its frame's longer side) that
    an anchor of ``grid`` matches at ``image_size`` (the frame's longer side becomes
    it); 1.0 when there are no boxes."""
    sides = np.asarray(list(boxes), dtype=np.float64).reshape(-1, 2) * image_size
    if not len(sides):
        return 1.0
    return float(np.mean(best_iou(sides, grid.shapes()) >= MATCH_IOU))


def best_iou(boxes: np.ndarray, shapes: Sequence[tuple[float, float]]) -> np.ndarray:
    """Each box's ((width, height) rows) best IoU with any anchor shape, both centred on
    the same point."""
    anchors = np.asarray(shapes, dtype=np.float64)
    w, h = boxes[:, :1], boxes[:, 1:]
    inter = np.minimum(w, anchors[:, 0]) * np.minimum(h, anchors[:, 1])
    union = w * h + anchors[:, 0] * anchors[:, 1] - inter
    return np.max(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0), axis=1)


MIN_BOXES = 5
"""A label with fewer boxes does not weigh in the choice of anchors (too few to tell)."""


def label_fits(boxes: dict[str, Sequence[tuple[float, float]]], grid: AnchorGrid,
               image_size: int) -> dict[str, float]:
    """The fit of each label's boxes (labels of ``MIN_BOXES`` or more)."""
    return {name: anchor_fit(mine, grid, image_size) for name, mine in boxes.items()
            if len(mine) >= MIN_BOXES}


def best_anchor_size(boxes: dict[str, Sequence[tuple[float, float]]], spec,
                     image_size: int) -> tuple[float, float]:
    """The anchor size of ``ANCHOR_SIZES`` (and the model's own) whose worst-fitted label
    is fitted best (then the one that fits most boxes; the model's own on a tie); and the
    share of all boxes it fits."""
    own = anchor_grid(spec).anchor_size
    every = [b for mine in boxes.values() for b in mine]
    scored = []
    for size in sorted({own, *ANCHOR_SIZES}):
        grid = anchor_grid(spec, size)
        worst = min(label_fits(boxes, grid, image_size).values(), default=1.0)
        scored.append((round(worst, 3), round(anchor_fit(every, grid, image_size), 3),
                       size == own, size))
    _worst, fit, _own, size = max(scored)
    return size, fit
