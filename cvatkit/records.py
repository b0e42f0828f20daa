"""The data model of a CVAT task: labels, frames and their shapes.

Records are frozen. Coordinates are in pixels of the frame they belong to, as in CVAT
(x to the right, y down). Class ids are 1-based, as in the TF Object Detection API
label maps: id 0 is the background.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .errors import AnnotationError

SHAPE_KINDS = ("rectangle", "polygon", "mask")


@dataclass(frozen=True, kw_only=True)
class Label:
    """One class of the task."""

    id: int
    """1-based class id, the order of the task's labels."""
    name: str
    color: str | None = None
    """CVAT's display colour, e.g. ``#afdd95``."""
    type: str = "any"
    """CVAT's label type: any, rectangle, polygon, mask, ..."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class LabelMap:
    """The task's labels in class-id order (ids 1..N, no gaps)."""

    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        names = [label.name for label in self.labels]
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise AnnotationError(f"a label has no name ({name!r}); name it in CVAT")
            if _CONTROL.search(name):
                raise AnnotationError(
                    f"label {name!r} has a line break, tab or other control character in "
                    "its name, which the label files (one label a line) cannot hold; rename "
                    "it in CVAT")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise AnnotationError(
                f"label {dupes[0]!r} is defined more than once; rename one of them in CVAT")
        if [label.id for label in self.labels] != list(range(1, len(self.labels) + 1)):
            raise AnnotationError("label ids must run 1..N in order")

    @classmethod
    def from_names(cls, names: Iterable[str],
                   colors: Mapping[str, str | None] | None = None,
                   types: Mapping[str, str] | None = None) -> LabelMap:
        colors = colors or {}
        types = types or {}
        return cls(tuple(
            Label(id=i, name=n, color=colors.get(n), type=types.get(n, "any"))
            for i, n in enumerate(names, start=1)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def id_of(self, name: str) -> int:
        for label in self.labels:
            if label.name == name:
                return label.id
        raise AnnotationError(
            f"label {name!r} is not in the label map ({', '.join(self.names) or 'no labels'})")

    def name_of(self, class_id: int) -> str:
        if 1 <= class_id <= len(self.labels):
            return self.labels[class_id - 1].name
        raise AnnotationError(f"class id {class_id} is outside 1..{len(self.labels)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[Label]:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, kw_only=True)
class Shape:
    """One annotated object of a frame."""

    kind: str
    """``rectangle``, ``polygon`` or ``mask``."""
    label: str
    points: tuple[float, ...]
    """rectangle: (xmin, ymin, xmax, ymax); polygon: (x0, y0, x1, y1, ...);
    mask: CVAT's encoding (``cvat_sdk.masks.encode_mask``): run lengths over the mask's
    box, alternating 0 and 1 row by row starting with 0, then the box
    (left, top, right, bottom) with right and bottom inclusive."""
    occluded: bool = False
    attributes: tuple[tuple[str, str], ...] = ()
    """CVAT attribute (name, value) pairs, in the order the export gives them."""
    z_order: int = 0
    rotation: float = 0.0
    """Rectangle rotation in degrees, clockwise around its centre, as in CVAT."""
    score: float | None = None
    """None for ground truth; a model's confidence for predictions."""
    where: str = field(default="", compare=False, repr=False)
    """Where the shape is described, for messages: ``annotations.xml line 57``."""

    def __post_init__(self) -> None:
        where = f"{self.where}: " if self.where else ""
        if self.kind not in SHAPE_KINDS:
            raise AnnotationError(
                f"{where}shape kind {self.kind!r} is not one of {', '.join(SHAPE_KINDS)}")
        if self.kind == "mask" and len(self.points) < 5:
            raise AnnotationError(f"{where}a mask labelled {self.label!r} needs run lengths "
                                  "and a box")
        bad = [p for p in self.points if not math.isfinite(p)]
        if bad or (self.rotation is not None and not math.isfinite(self.rotation)):
            what = f"a coordinate {bad[0]!r}" if bad else f"rotation {self.rotation!r}"
            raise AnnotationError(
                f"{where}a {self.kind} labelled {self.label!r} has {what}, not a finite "
                "number; fix the shape in CVAT (or the file) and export again")

    @property
    def confidence(self) -> float:
        """The score; 1.0 for a shape without one (an annotation, or a file's shape: a
        plain claim), so that it is kept at every threshold and ranks first. Every
        threshold, ranking and matching reads this, never ``score`` directly."""
        return 1.0 if self.score is None else self.score

    def bbox(self) -> tuple[float, float, float, float]:
        """Axis-aligned (xmin, ymin, xmax, ymax), rotation applied."""
        if self.kind == "rectangle":
            x0, y0, x1, y1 = self.points
            if not self.rotation:
                return x0, y0, x1, y1
            return _rotated_bbox(x0, y0, x1, y1, self.rotation)
        if self.kind == "mask":
            x0, y0, x1, y1 = self.points[-4:]
            return x0, y0, x1 + 1, y1 + 1
        xs, ys = self.points[0::2], self.points[1::2]
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def attrs(self) -> dict[str, str]:
        return dict(self.attributes)


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One image of the task and its shapes."""

    index: int
    """The frame number in its task (CVAT's ``id`` / ``frame``)."""
    name: str
    """The image's file name as CVAT knows it (may contain folders)."""
    width: int
    height: int
    shapes: tuple[Shape, ...] = ()
    subset: str = ""
    where: str = ""
    """Where the frame is described, for messages: ``annotations.xml line 42``."""

    @property
    def key(self) -> str:
        """The frame's name within its task: its subset's folder, then its name (two
        subsets may hold frames of the same name)."""
        return f"{self.subset}/{self.name}" if self.subset else self.name


@dataclass(frozen=True, kw_only=True)
class TaskSummary:
    """What a task list shows about a task."""

    id: int | None
    name: str
    labels: tuple[str, ...]
    frames: int
    status: str = ""
    updated: str = ""
    source: str = ""
    """Where it comes from: a path, a zip or ``cvat://ID`` on a server."""
    media_type: str = "image"
    extra: dict[str, object] = field(default_factory=dict)


def _rotated_bbox(x0: float, y0: float, x1: float, y1: float,
                  degrees: float) -> tuple[float, float, float, float]:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    xs, ys = [], []
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        dx, dy = x - cx, y - cy
        xs.append(cx + dx * cos - dy * sin)
        ys.append(cy + dx * sin + dy * cos)
    return min(xs), min(ys), max(xs), max(ys)
