"""Where the model and the annotations disagree, worst frames first.

Each frame's predictions at the threshold are matched to its annotations, best score
first: a prediction on an annotated object of its label (IoU >= 0.5) is *found*; what is
left becomes, in this order, a **wrong-label** box (IoU >= 0.5 with an object of another
label), a **poorly placed** box (IoU 0.1 to 0.5 with an object of its label), or a
**false** box; annotated objects no prediction took are **missed**.

Some disagreements are more likely the annotation's fault than the model's. They are
listed apart, as *suspects*, most confident first:

- ``unannotated``: a confident prediction no annotation comes near (IoU < 0.1): an object
  left out?
- ``other-label``: a confident prediction on an object annotated with another label, and
  none of its own label there: labels swapped?
- ``misplaced``: a confident prediction half over an object of its label (IoU 0.1 to 0.5)
  and over nothing else: a box moved or drawn loosely?
- ``stray``: an annotation no prediction comes near (IoU >= 0.3) at any score, even the
  lowest predicted (evaluate with a low threshold, as ``evaluate`` does), of a label the
  model otherwise finds (at least half of that label's objects): nothing there? (A model
  that finds few objects of a label yet sees nothing near most of them: no suspects.)

"Confident" is a score of at least ``confident`` (0.8 by default, never below the
threshold). A young model scores low: lower ``confident`` to what it gives the objects it
finds.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..records import Shape
from .detector import check_threshold
from .frame_match import claim, match_prediction
from .predictions import Prediction

KINDS = ("missed", "false", "wrong-label", "poorly-placed")
"""The model's mistakes, as the Inference step filters them."""
SUSPECT_KINDS = ("unannotated", "other-label", "misplaced", "stray")
"""Likely annotation mistakes."""
NEAR = 0.1
"""Below this IoU, two boxes have nothing to do with each other."""
STRAY_IOU = 0.3
"""An annotation no prediction overlaps this much, at any score, is a stray..."""
STRAY_RECALL = 0.5
"""... when the model finds at least this share of its label's objects elsewhere."""
NOTHING = "(nothing)"
"""The confusion matrix's row of predictions on no annotated object and its column of
annotated objects no prediction found."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One disagreement on one frame."""

    frame: int
    """The frame's number in its task."""
    name: str
    kind: str
    """One of ``KINDS`` or ``SUSPECT_KINDS``."""
    annotated: Shape | None = None
    """The annotated object concerned (None for a false box or an unannotated object)."""
    predicted: Shape | None = None
    """The prediction concerned (None for a missed object or a stray annotation)."""
    iou: float = 0.0
    confidence: float = 0.0
    """The prediction's score; for a stray annotation, 1 minus the best score of any
    prediction touching it (IoU >= 0.1)."""

    def describe(self) -> str:
        a, p = self.annotated, self.predicted
        text = {
            "missed": lambda: f"missed {a.label}",
            "false": lambda: f"false {p.label} ({p.confidence:.2f})",
            "wrong-label": lambda: f"{a.label} predicted as {p.label} ({p.confidence:.2f})",
            "poorly-placed": lambda: f"{p.label} placed poorly (IoU {self.iou:.2f}, "
                                     f"{p.confidence:.2f})",
            "unannotated": lambda: f"{p.label} ({p.confidence:.2f}) where nothing is annotated",
            "other-label": lambda: f"annotated {a.label}, model is sure it is {p.label} "
                                   f"({p.confidence:.2f})",
            "misplaced": lambda: f"{a.label} annotated off the object the model sees "
                                 f"(IoU {self.iou:.2f}, {p.confidence:.2f})",
            "stray": lambda: f"{a.label} annotated where the model sees nothing",
        }[self.kind]
        return text()

    def to_dict(self) -> dict:
        def box(s: Shape | None) -> list[float] | None:
            return None if s is None else [round(v, 2) for v in s.bbox()]

        return {"frame": self.frame, "name": self.name, "kind": self.kind,
                "annotated": self.annotated.label if self.annotated else None,
                "annotated_box": box(self.annotated),
                "predicted": self.predicted.label if self.predicted else None,
                "predicted_box": box(self.predicted),
                "score": round(self.predicted.confidence, 4) if self.predicted else None,
                "iou": round(self.iou, 4), "confidence": round(self.confidence, 4)}


@dataclass(frozen=True, kw_only=True)
class FrameReview:
    """One frame's matching: how many objects were found and what went wrong."""

    frame: int
    name: str
    annotated: int
    found: int
    findings: tuple[Finding, ...]
    """The model's mistakes on this frame (kinds in ``KINDS``)."""
    suspects: tuple[Finding, ...]

    @property
    def kinds(self) -> Counter[str]:
        return Counter(f.kind for f in (*self.findings, *self.suspects))

    def rank_key(self) -> tuple:
        worst = max((f.confidence for f in (*self.findings, *self.suspects)), default=0.0)
        return (-len(self.suspects), -len(self.findings), -worst, self.frame)


@dataclass(frozen=True, kw_only=True)
class Review:
    threshold: float
    confident: float
    frames: tuple[FrameReview, ...]
    """Every frame, mistakes first (``mistakes_first``)."""
    labels: tuple[str, ...]
    confusion: np.ndarray
    """Rows: annotated label, then ``NOTHING`` (a prediction on no annotated object);
    columns: predicted label, then ``NOTHING`` (an annotated object nothing found)."""

    @property
    def findings(self) -> list[Finding]:
        return [f for fr in self.frames for f in fr.findings]

    @property
    def suspects(self) -> list[Finding]:
        """Likely annotation mistakes over all frames, most confident first."""
        return sorted((f for fr in self.frames for f in fr.suspects),
                      key=lambda f: (-f.confidence, f.frame))

    def counts(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for fr in self.frames:
            out.update(fr.kinds)
        return out

    def suspect_frames(self) -> list[int]:
        """Frames with a likely annotation mistake, most confident first, no repeats."""
        return [number for number, _name in self.suspect_frame_names()]

    def suspect_frame_names(self) -> list[tuple[int, str]]:
        """(number, name) of the frames with a likely annotation mistake, most confident
        first, no repeats."""
        return list(dict.fromkeys((f.frame, f.name) for f in self.suspects))

    def format(self, *, top: int = 10) -> str:
        counts = self.counts()
        lines = ["mistakes at score >= {:g}: {}".format(
            self.threshold, ", ".join(f"{k} {counts[k]}" for k in KINDS))]
        worst = [fr for fr in self.frames if fr.findings or fr.suspects][:top]
        if worst:
            lines.append(f"worst frames (of {sum(1 for f in self.frames if f.findings)} with "
                         "mistakes):")
            for fr in worst:
                what = "; ".join(f.describe() for f in (*fr.suspects, *fr.findings))
                lines.append(f"  frame {fr.frame} {fr.name}: {what}")
        suspects = self.suspects
        lines.append(f"likely annotation mistakes (model at >= {self.confident:g} disagrees): "
                     f"{len(suspects)}" + (f" on {len(self.suspect_frames())} frames"
                                           if suspects else ""))
        for f in suspects[:top]:
            lines.append(f"  frame {f.frame} {f.name}: {f.describe()}")
        if len(suspects) > top:
            lines.append(f"  ... {len(suspects) - top} more (--mistakes FILE.csv lists all)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "confident": self.confident,
                "counts": dict(self.counts()),
                "frames": [{"frame": fr.frame, "name": fr.name, "annotated": fr.annotated,
                            "found": fr.found,
                            "findings": [f.to_dict() for f in fr.findings]}
                           for fr in self.frames if fr.findings],
                "suspects": [f.to_dict() for f in self.suspects],
                "confusion": {"rows": [*self.labels, NOTHING],
                              "columns": [*self.labels, NOTHING],
                              "counts": self.confusion.tolist()}}

    def csv_text(self) -> str:
        """Every finding and suspect, one per row, worst frames first."""
        out = io.StringIO()
        columns = ["frame", "name", "kind", "annotated", "annotated_box", "predicted",
                   "predicted_box", "score", "iou", "confidence"]
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for fr in self.frames:
            for f in (*fr.suspects, *fr.findings):
                row = f.to_dict()
                for key in ("annotated_box", "predicted_box"):
                    row[key] = " ".join(f"{v:g}" for v in row[key]) if row[key] else ""
                writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
        return out.getvalue()


def review(predictions: Iterable[Prediction], labels: Sequence[str] = (), *,
           threshold: float = 0.5, confident: float = 0.8, iou: float = 0.5) -> Review:
    """Match every frame's predictions with its annotations (see the module's docstring).
    ``predictions`` should hold scores well below ``threshold`` (as for COCO AP): those
    count only to clear an annotation of being a stray."""
    check_threshold(threshold)
    check_threshold(confident, what="confident score")
    confident = max(confident, threshold)
    frames, names = [], list(dict.fromkeys(labels))
    pairs: list[tuple[str | None, str | None]] = []
    annotated: Counter[str] = Counter()
    for p in predictions:
        fr, frame_pairs = _review_frame(p, threshold=threshold, confident=confident, iou=iou)
        frames.append(fr)
        pairs += frame_pairs
        annotated.update(s.label for s in p.ground_truth)
        for s in (*p.ground_truth, *p.frame.shapes):
            if s.label not in names:
                names.append(s.label)
    found = Counter(f for f, g in (pair for pair in pairs if None not in pair) if f == g)
    blind = {n for n in annotated if found[n] < STRAY_RECALL * annotated[n]}
    frames = [replace(fr, suspects=tuple(f for f in fr.suspects if not (
        f.kind == "stray" and f.annotated.label in blind))) for fr in frames]
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names) + 1, len(names) + 1), dtype=np.int64)
    for annotated, predicted in pairs:
        matrix[index.get(annotated, len(names)), index.get(predicted, len(names))] += 1
    frames.sort(key=FrameReview.rank_key)
    return Review(threshold=threshold, confident=confident, frames=tuple(frames),
                  labels=tuple(names), confusion=matrix)


def _review_frame(p: Prediction, *, threshold: float, confident: float, iou: float
                  ) -> tuple[FrameReview, list[tuple[str | None, str | None]]]:
    frame = p.frame
    every = match_prediction(p, iou=iou)
    match = every.at(threshold)
    dets, gt, overlaps, same = match.predictions, match.annotations, match.ious, match.same_label
    taken_gt = np.array(match.found, dtype=bool)
    owner = {di: ("found", gi, overlap) for di, (gi, overlap)
             in enumerate(zip(match.matched, match.matched_ious)) if gi is not None}

    def take(kind: str, allowed: np.ndarray, low: float, high: float = math.inf) -> None:
        rows = [di for di in range(len(dets)) if di not in owner]
        for di, gi in claim(overlaps, allowed, taken_gt, low=low, high=high,
                            rows=rows).items():
            owner[di] = (kind, gi, float(overlaps[di, gi]))

    take("wrong-label", ~same, iou)
    take("poorly-placed", same, NEAR, iou)

    findings, pairs = [], []

    def add(kind: str, a: Shape | None, d: Shape | None, overlap: float = 0.0,
            confidence: float | None = None) -> Finding:
        return Finding(frame=frame.index, name=frame.name, kind=kind, annotated=a,
                       predicted=d, iou=overlap,
                       confidence=d.confidence if confidence is None else confidence)

    found = 0
    for di, d in enumerate(dets):
        kind, gi, overlap = owner.get(di, ("false", -1, 0.0))
        if kind == "found":
            found += 1
            pairs.append((gt[gi].label, d.label))
            continue
        a = gt[gi] if gi >= 0 else None
        findings.append(add(kind, a, d, overlap))
        if kind == "wrong-label":
            pairs.append((a.label, d.label))
        else:  # poorly placed: the object counts as missed and the box as false
            pairs.append((None, d.label))
            if a is not None:
                pairs.append((a.label, None))
    for gi, g in enumerate(gt):
        if not taken_gt[gi]:
            findings.append(add("missed", g, None, confidence=0.0))
            pairs.append((g.label, None))

    suspects = []
    for di, d in enumerate(dets):
        if d.confidence < confident:
            continue
        row = overlaps[di] if gt else np.zeros(0)
        best_any = float(row.max()) if row.size else 0.0
        own = np.where(same[di], row, -1.0) if row.size else row
        best_own = float(own.max()) if own.size else -1.0
        if best_any < NEAR:
            suspects.append(add("unannotated", None, d, best_any))
        elif best_own < iou and best_any >= iou:
            gi = int(np.argmax(np.where(~same[di], row, -1.0)))
            suspects.append(add("other-label", gt[gi], d, float(row[gi])))
        elif NEAR <= best_own < iou and best_any < iou:
            suspects.append(add("misplaced", gt[int(np.argmax(own))], d, best_own))
    for gi, g in enumerate(gt):
        if not (every.ious[:, gi] >= STRAY_IOU).any():
            near = [s.confidence for s, o in zip(every.predictions, every.ious[:, gi])
                    if o >= NEAR]
            suspects.append(add("stray", g, None, confidence=1.0 - max(near, default=0.0)))
    suspects.sort(key=lambda f: -f.confidence)
    return FrameReview(frame=frame.index, name=frame.name, annotated=len(gt), found=found,
                       findings=tuple(findings), suspects=tuple(suspects)), pairs
