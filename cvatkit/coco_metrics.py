"""Per-class COCO metrics from pycocotools' own evaluation.

pycocotools computes precision and recall per class and summarises them over all
classes only. ``COCOevalWithCategories`` adds the per-class figures as
``category_stats``, which Model Garden's COCO evaluator reports when it finds them: the
evaluation during training and ``cvatkit evaluate`` count AP the same way.
"""

from __future__ import annotations

import numpy as np
from pycocotools import cocoeval

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl")


def per_category_stats(ev: cocoeval.COCOeval) -> np.ndarray:
    """A (12, classes) array in pycocotools' summary order; -1 where undefined."""
    precision = ev.eval["precision"]  # [iou, recall, class, area, max dets]
    recall = ev.eval["recall"]        # [iou, class, area, max dets]
    ious = ev.params.iouThrs
    k_count = precision.shape[2]
    out = np.full((len(STAT_NAMES), k_count), -1.0, dtype=np.float32)

    def mean(values: np.ndarray) -> float:
        values = values[values > -1]
        return float(values.mean()) if values.size else -1.0

    iou50 = int(np.argmin(np.abs(ious - 0.5)))
    iou75 = int(np.argmin(np.abs(ious - 0.75)))
    for k in range(k_count):
        out[0, k] = mean(precision[:, :, k, 0, -1])
        out[1, k] = mean(precision[iou50, :, k, 0, -1])
        out[2, k] = mean(precision[iou75, :, k, 0, -1])
        for j, area in enumerate((1, 2, 3)):
            out[3 + j, k] = mean(precision[:, :, k, area, -1])
        for j in range(3):
            out[6 + j, k] = mean(recall[:, k, 0, j])
        for j, area in enumerate((1, 2, 3)):
            out[9 + j, k] = mean(recall[:, k, area, -1])
    return out


class COCOevalWithCategories(cocoeval.COCOeval):
    """``COCOeval`` that also keeps per-class statistics after ``summarize``."""

    def summarize(self) -> None:
        super().summarize()
        self.category_stats = per_category_stats(self)
