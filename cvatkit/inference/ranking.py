"""Which frames to annotate next: the ones the model is least sure about.

Each frame gets an uncertainty from two signals of the model itself, with no labels:

- **doubt**: every detection scoring near the threshold adds up to 1 (a score at the
  threshold adds 1, a score of 0 or 1 adds 0, linearly in between). A frame of sure
  detections, or of nothing at all, has little doubt; a frame of borderline boxes has
  much.
- **disagreement**: the model looks at the frame and at its mirror image. Objects it finds
  in both, in the same place, with the same label and score, add nothing; a box found in
  one view only adds its score; a box found in both adds the difference of its scores
  and how far the two boxes are apart (1 - IoU).

A frame's uncertainty is their sum, with every label weighing the same over the frames
ranked: a label's detections are weighted by the mean over labels of the uncertainty they
add up to, divided by its own (a model that scores one label near the threshold more
often than the others would otherwise pick that label's frames and leave the others
out). Annotating the most uncertain frames first teaches the model most per frame
annotated (``bench/active.py`` measures it against a random choice).
"""

from __future__ import annotations

import csv
import io
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..images import decode_rgb
from ..progress import Progress, no_progress
from ..records import Frame, Shape
from .detector import Detector, check_threshold
from .frame_match import match_frame
from .predictions import Prediction, frame_pixels, predict

RANK_FLOOR = 0.05
"""Detections scoring below this count for nothing."""


@dataclass(frozen=True, kw_only=True)
class FrameRank:
    frame: Frame
    """The frame, with the model's detections at the threshold as its shapes."""
    uncertainty: float
    doubt: float
    disagreement: float
    by_label: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    """Doubt and disagreement per label, before weighing the labels."""

    def to_row(self) -> dict:
        return {"frame": self.frame.index, "name": self.frame.name,
                "uncertainty": round(self.uncertainty, 4), "doubt": round(self.doubt, 4),
                "disagreement": round(self.disagreement, 4),
                "detections": len(self.frame.shapes)}


@dataclass(frozen=True, kw_only=True)
class Ranking:
    frames: tuple[FrameRank, ...]
    """Most uncertain first."""
    threshold: float
    skipped_annotated: int = 0
    """Frames left out because they are annotated already."""

    def top(self, count: int) -> tuple[FrameRank, ...]:
        return self.frames[:max(count, 0)]

    def format(self, *, top: int = 20) -> str:
        lines = [f"{len(self.frames)} frames ranked, most uncertain first"
                 + (f" ({self.skipped_annotated} annotated frames left out)"
                    if self.skipped_annotated else "")]
        lines.append(f"{'rank':>5} {'frame':>7} {'uncertainty':>11} {'doubt':>7} "
                     f"{'disagree':>8} {'boxes':>5}  name")
        for i, r in enumerate(self.top(top), start=1):
            lines.append(f"{i:>5} {r.frame.index:>7} {r.uncertainty:>11.3f} {r.doubt:>7.3f} "
                         f"{r.disagreement:>8.3f} {len(r.frame.shapes):>5}  {r.frame.name}")
        return "\n".join(lines)

    def csv_text(self) -> str:
        out = io.StringIO()
        columns = ["rank", "frame", "name", "uncertainty", "doubt", "disagreement",
                   "detections"]
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for i, r in enumerate(self.frames, start=1):
            writer.writerow({"rank": i, **r.to_row()})
        return out.getvalue()


def rank_frames(detector: Detector, source, *, threshold: float = 0.5,
                include_annotated: bool = False, max_detections: int = 100,
                batch_size: int = 8, limit: int | None = None,
                progress: Progress = no_progress,
                keep_images: int = 0) -> tuple[Ranking, list[Prediction]]:
    """Rank the frames of ``source`` (a task source or image paths) by uncertainty.
    Annotated frames are left out unless ``include_annotated``. Returns the ranking and,
    for the first ``keep_images`` ranked frames, their predictions with pixels (for a
    gallery)."""
    check_threshold(threshold)
    frames = source
    skipped = 0
    if not include_annotated and hasattr(source, "frames"):
        frames = _Unannotated(source)
    ranks: list[FrameRank] = []
    batch: list[Prediction] = []

    def flush() -> None:
        flipped = detector.detect([np.ascontiguousarray(p.image[:, ::-1]) for p in batch],
                                  threshold=RANK_FLOOR, max_detections=max_detections)
        for p, mirror in zip(batch, flipped):
            width = p.frame.width
            back = [_unflipped(s, width) for s in mirror]
            plain = list(p.frame.shapes)
            disagreement = _disagreement(plain, back, width=width, height=p.frame.height)
            by_label: dict[str, tuple[float, float]] = {}
            for label in {s.label for s in (*plain, *back)}:
                mine = [s for s in plain if s.label == label]
                by_label[label] = (sum(_doubt(s.confidence, threshold) for s in mine),
                                   disagreement.get(label, 0.0))
            shown = tuple(s for s in plain if s.confidence >= threshold)
            ranks.append(FrameRank(frame=replace(p.frame, shapes=shown), uncertainty=0.0,
                                   doubt=0.0, disagreement=0.0, by_label=by_label))
        batch.clear()

    for p in predict(detector, frames, threshold=RANK_FLOOR, max_detections=max_detections,
                     batch_size=batch_size, limit=limit, keep_images=sys.maxsize,
                     progress=progress):
        batch.append(p)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if isinstance(frames, _Unannotated):
        skipped = frames.skipped
    ranks = sorted(_weighted(ranks), key=_order)
    # the order is known only once every frame is in: the top frames are read again
    shown = [Prediction(frame=r.frame, image=_pixels(frames, r.frame))
             for r in ranks[:keep_images]]
    return Ranking(frames=tuple(ranks), threshold=threshold,
                   skipped_annotated=skipped), shown


def _weighted(ranks: list[FrameRank]) -> list[FrameRank]:
    """The frames' uncertainties with every label weighing the same (see the module)."""
    mass: defaultdict[str, float] = defaultdict(float)
    for r in ranks:
        for label, (doubt, disagreement) in r.by_label.items():
            mass[label] += doubt + disagreement
    present = [m for m in mass.values() if m > 0]
    mean = sum(present) / len(present) if present else 0.0
    weight = {label: mean / m if m > 0 else 0.0 for label, m in mass.items()}
    out = []
    for r in ranks:
        doubt = sum(weight[k] * d for k, (d, _) in r.by_label.items())
        disagreement = sum(weight[k] * g for k, (_, g) in r.by_label.items())
        out.append(replace(r, doubt=doubt, disagreement=disagreement,
                           uncertainty=doubt + disagreement))
    return out


def _pixels(source, frame: Frame) -> np.ndarray:
    """A ranked frame's pixels: from its task, or its image file."""
    if hasattr(source, "read_image"):
        return frame_pixels(source, frame)
    return decode_rgb(Path(frame.name).read_bytes(), frame.name)


def _order(r: FrameRank) -> tuple:
    return (-r.uncertainty, r.frame.index)


def _doubt(score: float, threshold: float) -> float:
    """1 at the threshold, 0 at scores 0 and 1, linear in between."""
    if score < RANK_FLOOR:
        return 0.0
    span = threshold if score < threshold else 1.0 - threshold
    return max(0.0, 1.0 - abs(score - threshold) / span) if span > 0 else 0.0


def _unflipped(shape: Shape, width: int) -> Shape:
    """A detection on the mirrored frame, as a box on the frame itself."""
    x0, y0, x1, y1 = shape.bbox()
    return Shape(kind="rectangle", label=shape.label, points=(width - x1, y0, width - x0, y1),
                 score=shape.score)


def _disagreement(plain: Sequence[Shape], mirror: Sequence[Shape], *, width: int,
                  height: int) -> dict[str, float]:
    """How differently the model sees the frame and its mirror image, per label (see the
    module): the boxes of one view matched with the other's as predictions with
    annotations."""
    match = match_frame([s for s in plain if s.confidence >= RANK_FLOOR],
                        [s for s in mirror if s.confidence >= RANK_FLOOR],
                        width=width, height=height, iou=0.5)
    terms: defaultdict[str, list[float]] = defaultdict(list)
    for a, j, overlap in zip(match.predictions, match.matched, match.matched_ious):
        terms[a.label].append(a.confidence if j is None else
                              abs(a.confidence - match.annotations[j].confidence)
                              + (1.0 - overlap))
    alone: defaultdict[str, list[float]] = defaultdict(list)
    for b, found in zip(match.annotations, match.found):
        if not found:
            alone[b.label].append(b.confidence)
    return {label: float(sum(terms[label]) + sum(alone[label]))
            for label in {*terms, *alone}}


class _Unannotated:
    """The frames of a source that have no shapes yet."""

    def __init__(self, source) -> None:
        self._source = source
        self.skipped = 0

    def frames(self) -> Iterator[Frame]:
        for frame in self._source.frames():
            if frame.shapes:
                self.skipped += 1
                continue
            yield frame

    def read_image(self, frame: Frame) -> bytes:
        return self._source.read_image(frame)

    def image_name(self, frame: Frame) -> str:
        return self._source.image_name(frame)
