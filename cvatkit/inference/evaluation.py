"""How good are the predictions: COCO AP (pycocotools) and the figures of pre-annotation.

COCO AP ranks every prediction, so predict with a low threshold (``SCORE_FLOOR``) for it.
The pre-annotation figures are what a person correcting the output cares about, at the
threshold they will use: the share of annotated objects the model found (IoU >= 0.5,
right label) and the false boxes per frame they will have to delete.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..coco_metrics import COCOevalWithCategories
from ..errors import UsageError
from ..geometry import clipped_bbox, shape_area
from .detector import check_threshold
from .frame_match import FrameMatch, match_prediction
from .predictions import Prediction

SCORE_FLOOR = 0.01
"""The threshold to predict with for COCO AP."""
THRESHOLDS = tuple(i / 20 for i in range(1, 20))
"""The scores ``Evaluation.fewest`` tries: 0.05, 0.1, ..., 0.95."""
RECALL_POINTS = tuple(i / 100 for i in range(101))
"""The recall levels COCO reads precision at (0, 0.01, ..., 1): the x of ``pr_curves``."""


@dataclass(frozen=True, kw_only=True)
class ClassFigures:
    label: str
    ap: float
    """COCO AP (IoU 0.5:0.95); -1 when the label has no annotated object."""
    ap50: float
    annotated: int
    found: int
    false: int


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    frames: int
    threshold: float
    ap: float
    ap50: float
    ap75: float
    annotated: int
    """Annotated objects over all frames."""
    found: int
    """Annotated objects matched by a prediction at the threshold (IoU >= 0.5, same label)."""
    false: int
    """Predictions at the threshold that match no annotated object."""
    per_class: tuple[ClassFigures, ...]
    fewest: tuple[float, int, int] | None = None
    """The threshold (of ``THRESHOLDS``) that leaves a person the fewest corrections on
    these frames (objects to draw that the model missed, plus false boxes to delete), with
    the objects found and the false boxes at it; the lowest such threshold on a tie. None
    when nothing is annotated."""
    pr_curves: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Per label, the precision at each of ``RECALL_POINTS`` at IoU 0.5, from the
    evaluation that gives ``ap50`` (its mean over the points is the label's AP@0.5); -1
    where undefined, empty for a label without annotated objects. Empty when there is no
    AP (nothing annotated)."""

    @property
    def found_share(self) -> float:
        return self.found / self.annotated if self.annotated else 0.0

    @property
    def false_per_frame(self) -> float:
        return self.false / self.frames if self.frames else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(found_share=self.found_share, false_per_frame=self.false_per_frame,
                   pr_recall=list(RECALL_POINTS),
                   pr_curves={n: [round(p, 4) for p in c] for n, c in self.pr_curves.items()})
        return out

    def format(self) -> str:
        def num(x: float) -> str:
            return f"{x:.3f}" if x >= 0 else "-"

        lines = [
            f"frames: {self.frames}",
            f"COCO AP {num(self.ap)}   AP@0.5 {num(self.ap50)}   AP@0.75 {num(self.ap75)}"
            + ("   (no annotated objects: no AP)" if self.ap < 0 else ""),
            f"at score >= {self.threshold:g}: found {self.found} of {self.annotated} "
            f"annotated objects ({100 * self.found_share:.1f}%), "
            f"{self.false} false boxes ({self.false_per_frame:.2f} per frame)",
            *self._fewest_lines(),
            "",
            f"{'label':<20} {'AP':>6} {'AP@0.5':>7} {'objects':>8} {'found':>6} {'false':>6}",
        ]
        for c in self.per_class:
            lines.append(f"{c.label:<20} {num(c.ap):>6} {num(c.ap50):>7} {c.annotated:>8} "
                         f"{c.found:>6} {c.false:>6}")
        return "\n".join(lines)

    def _fewest_lines(self) -> list[str]:
        if self.fewest is None:
            return []
        at, found, false = self.fewest
        share = found / self.annotated if self.annotated else 0.0
        return [f"fewest corrections at score >= {at:g}: found {found} "
                f"({100 * share:.1f}%), {false} false boxes ({false / self.frames:.2f} per "
                f"frame), {self.annotated - found + false} to correct; pre-annotate with "
                f"--threshold {at:g}"]


def evaluate(predictions: Iterable[Prediction], labels: Sequence[str], *,
             threshold: float = 0.5, iou: float = 0.5) -> Evaluation:
    """Compare predictions with their frames' annotations. ``labels``: every label to
    report, the model's and the task's (a task label the model lacks scores 0 found)."""
    check_threshold(threshold)
    predictions = list(predictions)
    if not predictions:
        raise UsageError("no frames to evaluate: the source has no frames")
    names = list(dict.fromkeys(labels))
    for p in predictions:
        for s in (*p.frame.shapes, *p.ground_truth):
            if s.label not in names:
                names.append(s.label)
    ap, ap50, ap75, per_ap, curves = _coco(predictions, names)
    matches = [match_prediction(p, iou=iou) for p in predictions]
    counts = _counts([m.at(threshold) for m in matches], names)
    per_class = tuple(
        ClassFigures(label=n, ap=per_ap[n][0], ap50=per_ap[n][1], annotated=counts[n][0],
                     found=counts[n][1], false=counts[n][2]) for n in names)
    return Evaluation(
        frames=len(predictions), threshold=threshold, ap=ap, ap50=ap50, ap75=ap75,
        annotated=sum(c[0] for c in counts.values()), found=sum(c[1] for c in counts.values()),
        false=sum(c[2] for c in counts.values()), per_class=per_class,
        fewest=_fewest(matches), pr_curves=curves)


def _counts(matches: list[FrameMatch], names: list[str]) -> dict[str, list[int]]:
    """Per label: annotated objects, those found, and false boxes, over ``matches``."""
    counts = {n: [0, 0, 0] for n in names}
    for m in matches:
        for name, tally in m.counts().items():
            counts[name] = [c + t for c, t in zip(counts[name], tally)]
    return counts


def _fewest(matches: list[FrameMatch]) -> tuple[float, int, int] | None:
    """``Evaluation.fewest``, from the matchings of every prediction: the matching at a
    threshold is their predictions at or above it (``FrameMatch.at``)."""
    annotated = sum(len(m.annotations) for m in matches)
    if not annotated:
        return None
    scored = [(p.confidence, j is not None)
              for m in matches for p, j in zip(m.predictions, m.matched)]
    best = None
    for at in THRESHOLDS:
        found = sum(1 for score, matched in scored if matched and score >= at)
        false = sum(1 for score, matched in scored if not matched and score >= at)
        if best is None or annotated - found + false < best[0]:
            best = (annotated - found + false, at, found, false)
    return best[1:]


def _coco(predictions: list[Prediction], names: list[str]
          ) -> tuple[float, float, float, dict[str, tuple[float, float]],
                     dict[str, tuple[float, ...]]]:
    """COCO AP, AP@0.5 and AP@0.75; (AP, AP@0.5) per label; precision-recall curves at
    IoU 0.5 per label (see ``Evaluation.pr_curves``)."""
    from pycocotools.coco import COCO

    cat = {n: i for i, n in enumerate(names, start=1)}
    images, gts, dets = [], [], []
    for image_id, p in enumerate(predictions, start=1):
        w, h = p.frame.width, p.frame.height
        images.append({"id": image_id, "width": w, "height": h})
        for s in p.ground_truth:
            x0, y0, x1, y1 = clipped_bbox(s, w, h)
            gts.append({"id": len(gts) + 1, "image_id": image_id, "category_id": cat[s.label],
                        "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0,
                        "area": max(shape_area(s, w, h), 1e-6)})
        for s in p.frame.shapes:
            x0, y0, x1, y1 = clipped_bbox(s, w, h)
            dets.append({"image_id": image_id, "category_id": cat[s.label],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(s.confidence)})
    unset = {n: (-1.0, -1.0) for n in names}
    if not gts:
        return -1.0, -1.0, -1.0, unset, {}
    if not dets:  # precision 0 at every recall of an annotated label
        annotated = {s.label for p in predictions for s in p.ground_truth}
        return 0.0, 0.0, 0.0, {n: (0.0, 0.0) if n in annotated else (-1.0, -1.0)
                               for n in names}, {
            n: (0.0,) * len(RECALL_POINTS) if n in annotated else () for n in names}
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": images, "annotations": gts,
                         "categories": [{"id": i, "name": n} for n, i in cat.items()]}
        truth.createIndex()
        ev = COCOevalWithCategories(truth, truth.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per = {n: (float(ev.category_stats[0, i - 1]), float(ev.category_stats[1, i - 1]))
           for n, i in cat.items()}
    precision = ev.eval["precision"]  # [iou, recall, label, area, max detections]
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    curves = {}
    for n, i in cat.items():
        curve = precision[iou50, :, i - 1, 0, -1]
        curves[n] = tuple(float(v) for v in curve) if (curve > -1).any() else ()
    return float(ev.stats[0]), float(ev.stats[1]), float(ev.stats[2]), per, curves
