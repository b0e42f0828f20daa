"""One frame's predictions matched to its annotations, as COCO matches them.

Predictions go best score first (in their given order on a tie); each takes the
annotation of its label, not yet taken, that its box overlaps most, when that IoU (of the
boxes clipped to the frame) is at least ``iou``. A prediction takes one annotation at
most, an annotation is taken once at most.

What a prediction takes depends only on the predictions above it, so the matching at a
score threshold is this matching's predictions at or above it (``FrameMatch.at``): a
frame is matched once, whatever threshold is asked of it afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry import box_ious, clipped_bbox
from ..records import Shape
from .predictions import Prediction


@dataclass(frozen=True, kw_only=True, eq=False)
class FrameMatch:
    """The matching of one frame's predictions with its annotations."""

    predictions: tuple[Shape, ...]
    """The predicted shapes, best score first (in their given order on a tie)."""
    annotations: tuple[Shape, ...]
    """The annotated shapes, in their given order."""
    ious: np.ndarray
    """IoU of each prediction (rows) with each annotation (columns), their boxes clipped
    to the frame, whatever their labels (read-only)."""
    matched: tuple[int | None, ...]
    """For each prediction, the index of the annotation it matched, or None."""
    iou: float
    """The IoU a match needs."""

    @property
    def same_label(self) -> np.ndarray:
        """Whether prediction (row) and annotation (column) have the same label."""
        return _same_label(self.predictions, self.annotations)

    @property
    def found(self) -> tuple[bool, ...]:
        """For each annotation, whether a prediction matched it."""
        taken = set(self.matched)
        return tuple(i in taken for i in range(len(self.annotations)))

    @property
    def matched_ious(self) -> tuple[float, ...]:
        """For each prediction, its IoU with the annotation it matched (0 for none)."""
        return tuple(0.0 if j is None else float(self.ious[i, j])
                     for i, j in enumerate(self.matched))

    def at(self, threshold: float) -> FrameMatch:
        """The matching of the predictions scoring ``threshold`` or more (the same as
        matching them alone)."""
        kept = sum(1 for p in self.predictions if p.confidence >= threshold)
        if kept == len(self.predictions):
            return self
        return FrameMatch(predictions=self.predictions[:kept], annotations=self.annotations,
                          ious=self.ious[:kept], matched=self.matched[:kept], iou=self.iou)

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """Per label (of a prediction or an annotation): annotated objects, those found,
        and predictions that matched nothing (false boxes)."""
        out: dict[str, list[int]] = {}
        for a, found in zip(self.annotations, self.found):
            tally = out.setdefault(a.label, [0, 0, 0])
            tally[0] += 1
            tally[1] += found
        for p, j in zip(self.predictions, self.matched):
            out.setdefault(p.label, [0, 0, 0])[2] += j is None
        return {label: (a, f, false) for label, (a, f, false) in out.items()}


def match_frame(predictions: Sequence[Shape], annotations: Sequence[Shape], *, width: int,
                height: int, iou: float = 0.5) -> FrameMatch:
    """Match the predictions of a ``width`` x ``height`` frame with its annotations (see
    the module)."""
    ranked = tuple(sorted(predictions, key=lambda s: -s.confidence))
    annotations = tuple(annotations)
    ious = _ious(ranked, annotations, width, height)
    ious.setflags(write=False)
    taken = claim(ious, _same_label(ranked, annotations), np.zeros(len(annotations), bool),
                  low=iou)
    return FrameMatch(predictions=ranked, annotations=annotations, ious=ious,
                      matched=tuple(taken.get(i) for i in range(len(ranked))), iou=iou)


def match_prediction(prediction: Prediction, *, iou: float = 0.5) -> FrameMatch:
    """A frame's predicted shapes matched with its annotations."""
    frame = prediction.frame
    return match_frame(frame.shapes, prediction.ground_truth, width=frame.width,
                       height=frame.height, iou=iou)


def claim(ious: np.ndarray, allowed: np.ndarray, taken: np.ndarray, *, low: float,
          high: float = math.inf, rows: Sequence[int] | None = None) -> dict[int, int]:
    """Greedy matching: each row in turn (of ``rows``, by default every row in order)
    takes the column of highest IoU among those ``allowed`` and not yet ``taken`` (the
    first on a tie), when that IoU is at least ``low`` and below ``high``. Marks the
    columns taken in ``taken``; returns row -> column of the rows that took one."""
    out: dict[int, int] = {}
    if not ious.shape[1]:
        return out
    for r in range(len(ious)) if rows is None else rows:
        row = np.where(allowed[r] & ~taken, ious[r], -1.0)
        c = int(np.argmax(row))
        if low <= row[c] < high:
            taken[c] = True
            out[r] = c
    return out


def _ious(predictions: Sequence[Shape], annotations: Sequence[Shape], width: int,
          height: int) -> np.ndarray:
    if not predictions or not annotations:
        return np.zeros((len(predictions), len(annotations)))
    return box_ious(np.array([clipped_bbox(s, width, height) for s in predictions]),
                    np.array([clipped_bbox(s, width, height) for s in annotations]))


def _same_label(predictions: Sequence[Shape], annotations: Sequence[Shape]) -> np.ndarray:
    return np.array([[p.label == a.label for a in annotations] for p in predictions],
                    dtype=bool).reshape(len(predictions), len(annotations))
