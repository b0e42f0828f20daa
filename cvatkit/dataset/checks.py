"""Dataset checks: what a task holds and what is wrong with it, before training on it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from ..errors import AnnotationError
from ..geometry import clipped_bbox, raw_area
from ..records import Frame, LabelMap, Shape

TINY_PIXELS = 4.0
"""A shape whose clipped box is narrower or lower than this is counted as tiny."""
MAX_PROBLEMS_KEPT = 1000


@dataclass
class Report:
    """What the dataset holds, and what was clipped, dropped or left out."""

    source: str = ""
    task: str = ""
    task_id: int | None = None
    labels: list[str] = field(default_factory=list)
    frames: int = 0
    frames_without_shapes: int = 0
    shapes_per_label: dict[str, int] = field(default_factory=dict)
    shapes_per_kind: dict[str, int] = field(default_factory=dict)
    degenerate_dropped: int = 0
    tiny: int = 0
    clipped: int = 0
    outside_dropped: int = 0
    rotated_boxes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Annotations not trained on, by kind (polyline, points, tag, track...)."""
    frames_by_job: dict[str, int] = field(default_factory=dict)
    """All the source's frames by the state of the CVAT job holding them (server
    sources only)."""
    left_out: dict[str, int] = field(default_factory=dict)
    """Frames not read, by why (``in a job in progress``)."""
    tasks: list[str] = field(default_factory=list)
    """A line per task of a project."""
    sizes: list[str] = field(default_factory=list)
    """The frame sizes, objects per frame and box sizes per label
    (``statistics.DatasetStatistics.format``)."""
    notes: list[str] = field(default_factory=list)
    train_frames: int = 0
    val_frames: int = 0
    problems: list[str] = field(default_factory=list)
    """One message per dropped shape (frame, label, why), at most MAX_PROBLEMS_KEPT."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    def format(self, max_problems: int = 10) -> str:
        """The report as a person reads it."""
        lines = [f"Task {self.task!r} from {self.source}",
                 f"  frames: {self.frames} ({self.train_frames} train, {self.val_frames} val), "
                 f"{self.frames_without_shapes} without shapes"]
        lines += [f"  {line}" for line in self.tasks]
        if self.frames_by_job:
            lines.append("  frames by job state: " + ", ".join(
                f"{n} {state}" for state, n in sorted(self.frames_by_job.items())))
        if self.left_out:
            lines.append("  frames left out: " + ", ".join(
                f"{n} {why}" for why, n in sorted(self.left_out.items()))
                + " (--jobs chooses the jobs)")
        lines += [f"  note: {n}" for n in self.notes]
        width = max((len(n) for n in self.labels), default=5)
        lines.append("  shapes per label:")
        for name in self.labels:
            lines.append(f"    {name:<{width}}  {self.shapes_per_label.get(name, 0)}")
        lines += [f"  {line}" for line in self.sizes]
        unused = [n for n in self.labels if not self.shapes_per_label.get(n)]
        if unused:
            lines.append(f"  labels with no shapes (the model cannot learn them): "
                         f"{', '.join(unused)}")
        lines.append("  shapes by kind: " + ", ".join(
            f"{k} {v}" for k, v in sorted(self.shapes_per_kind.items())) if
            self.shapes_per_kind else "  shapes by kind: none")
        for key, text in (("clipped", "partly outside the frame, clipped"),
                          ("outside_dropped", "fully outside the frame, dropped"),
                          ("degenerate_dropped", "degenerate (no area), dropped"),
                          ("tiny", f"tiny (under {TINY_PIXELS:g} px), kept"),
                          ("rotated_boxes", "rotated boxes, trained as their upright box")):
            if getattr(self, key):
                lines.append(f"  {text}: {getattr(self, key)}")
        if self.skipped:
            lines.append("  not trained on: " + ", ".join(
                f"{v} {k}" for k, v in sorted(self.skipped.items())))
        for p in self.problems[:max_problems]:
            lines.append(f"  ! {p}")
        if len(self.problems) > max_problems:
            lines.append(f"  ! ... and {len(self.problems) - max_problems} more in report.json")
        return "\n".join(lines)


class Checker:
    """Cleans frames one at a time and keeps the running report."""

    def __init__(self, labels: LabelMap, report: Report) -> None:
        self.labels = labels
        self.report = report
        self.report.labels = list(labels.names)
        self._per_label: Counter[str] = Counter({n: 0 for n in labels.names})
        self._per_kind: Counter[str] = Counter()
        self._names: dict[str, str] = {}

    def check(self, frame: Frame) -> Frame:
        """The frame with shapes clipped to it and unusable shapes dropped."""
        r = self.report
        key = frame.key
        if key in self._names:
            raise AnnotationError(
                f"{frame.where}: frame name {frame.name!r} appears twice (also at "
                f"{self._names[key]}); frame names must be unique, rename one image in CVAT")
        self._names[key] = frame.where
        if frame.width <= 0 or frame.height <= 0:
            raise AnnotationError(
                f"{frame.where}: frame {frame.name!r} has size {frame.width}x{frame.height}")
        kept: list[Shape] = []
        for shape in frame.shapes:
            if shape.label not in self.labels:
                raise AnnotationError(
                    f"{shape.where or frame.where}: frame {frame.name!r} has a {shape.kind} "
                    f"labelled "
                    f"{shape.label!r}, which is not in the label map "
                    f"({', '.join(self.labels.names)})")
            why = self._unusable(shape)
            if why:
                r.degenerate_dropped += 1
                self._problem(frame, shape, why)
                continue
            x0, y0, x1, y1 = clipped_bbox(shape, frame.width, frame.height)
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                r.outside_dropped += 1
                self._problem(frame, shape, "lies fully outside the frame")
                continue
            if (x0, y0, x1, y1) != shape.bbox():
                r.clipped += 1
            if x1 - x0 < TINY_PIXELS or y1 - y0 < TINY_PIXELS:
                r.tiny += 1
            if shape.kind == "rectangle" and shape.rotation % 360:
                r.rotated_boxes += 1
            self._per_label[shape.label] += 1
            self._per_kind[shape.kind] += 1
            kept.append(shape)
        r.frames += 1
        if not kept:
            r.frames_without_shapes += 1
        r.shapes_per_label = dict(self._per_label)
        r.shapes_per_kind = dict(self._per_kind)
        return Frame(index=frame.index, name=frame.name, width=frame.width,
                     height=frame.height, shapes=tuple(kept), subset=frame.subset,
                     where=frame.where)

    @staticmethod
    def _unusable(shape: Shape) -> str:
        if shape.kind == "polygon" and len(shape.points) < 6:
            return f"has {len(shape.points) // 2} points (a polygon needs at least 3)"
        if shape.kind == "mask":
            *runs, left, top, right, bottom = shape.points
            if sum(runs) != (right - left + 1) * (bottom - top + 1) or min(runs) < 0:
                return "has a damaged mask encoding (its runs do not cover its box)"
        area = raw_area(shape)
        if area <= 0:
            if shape.kind == "rectangle":
                x0, y0, x1, y1 = shape.points
                return (f"has zero or negative area (x {x0:g}..{x1:g}, y {y0:g}..{y1:g})")
            return "has zero area"
        return ""

    def _problem(self, frame: Frame, shape: Shape, why: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS_KEPT:
            self.report.problems.append(
                f"{shape.where or frame.where}: frame {frame.index} {frame.name!r}: {shape.kind} "
                f"{shape.label!r} {why}; dropped")
