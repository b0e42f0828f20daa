"""What a prepared dataset's frames and boxes look like, recorded when it is prepared
(``statistics.json``): the frame sizes, the objects per frame, and every training box's
size relative to its frame, per label. A run's recipe is fitted to them (the input size,
the anchors), and the report shows them.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..geometry import clipped_bbox
from ..limits import TEXT
from ..records import Frame

STATISTICS_JSON = "statistics.json"
SHOWN_SIZES = 5
"""Frame sizes listed by name in the statistics (the others are counted)."""


@dataclass(frozen=True, kw_only=True)
class LabelSizes:
    """The boxes of one label, their sides in pixels of their frames."""

    boxes: int
    short_side: tuple[float, float, float]
    """10th percentile, median and 90th percentile of the shorter side."""
    relative_side: tuple[float, float, float]
    """The same of the box's side (square root of its area) over its frame's longer side."""
    aspect: tuple[float, float, float]
    """The same of width / height."""


@dataclass(frozen=True, kw_only=True)
class DatasetStatistics:
    frames: int
    frame_sizes: dict[str, int]
    """``WIDTHxHEIGHT`` -> frames of that size, the most common first (``SHOWN_SIZES``)."""
    other_sizes: int = 0
    """Frames of sizes not listed in ``frame_sizes``."""
    longer_side: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """10th percentile, median and 90th percentile of the frames' longer side."""
    objects_per_frame: tuple[float, float] = (0.0, 0.0)
    """Median and largest number of boxes on a frame."""
    labels: dict[str, LabelSizes] = field(default_factory=dict)
    """The labels that have boxes."""
    label_names: tuple[str, ...] = ()
    """Every label of the dataset, in its order: what ``boxes`` count from."""
    boxes: tuple[tuple[int, float, float], ...] = field(default=(), repr=False)
    """Every box as (label index, width, height), each over its frame's longer side."""

    def boxes_of(self, label: str | None = None) -> list[tuple[float, float]]:
        """(width, height) of the boxes of ``label`` (None: of all labels)."""
        index = None if label is None else self.label_names.index(label)
        return [(w, h) for i, w, h in self.boxes if index is None or i == index]

    def format(self) -> list[str]:
        """Report lines (without indentation)."""
        sizes = ", ".join(f"{size} ({n})" for size, n in self.frame_sizes.items())
        if self.other_sizes:
            sizes += f" and {self.other_sizes} of other sizes"
        lines = [f"frame sizes: {sizes}",
                 f"objects per frame: median {self.objects_per_frame[0]:g}, most "
                 f"{self.objects_per_frame[1]:g}"]
        if self.labels:
            lines.append("box sizes per label (shorter side in pixels: 10th percentile / "
                         "median / 90th; median side over the frame's longer side):")
        width = max((len(n) for n in self.labels), default=0)
        for name, s in self.labels.items():
            lo, mid, hi = s.short_side
            lines.append(f"  {name:<{width}}  {lo:.0f} / {mid:.0f} / {hi:.0f} px, "
                         f"{100 * s.relative_side[1]:.1f}%")
        return lines

    def to_json(self) -> str:
        data = asdict(self)
        data["boxes"] = [[i, round(w, 5), round(h, 5)] for i, w, h in self.boxes]
        return json.dumps(data) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DatasetStatistics:
        data = json.loads(text)
        labels = {name: LabelSizes(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in s.items()})
                  for name, s in data.pop("labels").items()}
        return cls(labels=labels, label_names=tuple(data.pop("label_names")),
                   boxes=tuple((int(i), float(w), float(h)) for i, w, h in data.pop("boxes")),
                   longer_side=tuple(data.pop("longer_side")),
                   objects_per_frame=tuple(data.pop("objects_per_frame")), **data)


def measure(frames: Sequence[Frame], label_names: Sequence[str]) -> DatasetStatistics:
    """The statistics of ``frames`` (checked: shapes clipped to their frames)."""
    sizes = Counter(f"{f.width}x{f.height}" for f in frames)
    shown = dict(sizes.most_common(SHOWN_SIZES))
    index = {name: i for i, name in enumerate(label_names)}
    boxes: list[tuple[int, float, float]] = []
    shorter: dict[str, list[float]] = {name: [] for name in label_names}
    for frame in frames:
        longer = float(max(frame.width, frame.height))
        for shape in frame.shapes:
            x0, y0, x1, y1 = clipped_bbox(shape, frame.width, frame.height)
            w, h = x1 - x0, y1 - y0
            if w <= 0 or h <= 0 or shape.label not in index:
                continue
            boxes.append((index[shape.label], w / longer, h / longer))
            shorter[shape.label].append(min(w, h))
    labels = {}
    for name in label_names:
        mine = [b for b in boxes if b[0] == index[name]]
        if not mine:
            continue
        labels[name] = LabelSizes(
            boxes=len(mine), short_side=_spread(shorter[name]),
            relative_side=_spread(math.sqrt(w * h) for _, w, h in mine),
            aspect=_spread(w / h for _, w, h in mine))
    return DatasetStatistics(
        frames=len(frames), frame_sizes=shown,
        other_sizes=sum(sizes.values()) - sum(shown.values()),
        longer_side=_spread(max(f.width, f.height) for f in frames),
        objects_per_frame=(_quantile(sorted(len(f.shapes) for f in frames), 0.5),
                           float(max((len(f.shapes) for f in frames), default=0))),
        labels=labels, label_names=tuple(label_names), boxes=tuple(boxes))


def read_statistics(folder: str | Path) -> DatasetStatistics | None:
    """A dataset folder's statistics; None for a dataset prepared before they were
    recorded. Read once per version of the file (the app plans again on every edit)."""
    path = Path(folder) / STATISTICS_JSON
    try:
        found = path.stat()
    except OSError:
        return None
    TEXT.check(found.st_size, str(path))
    return _read(str(path.resolve()), found.st_mtime_ns, found.st_size)


@functools.lru_cache(maxsize=8)
def _read(path: str, _mtime_ns: int, _size: int) -> DatasetStatistics | None:
    try:
        return DatasetStatistics.from_json(Path(path).read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError, OSError):
        return None  # damaged: the recipe falls back to the model's defaults


def _spread(values: Iterable[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return (_quantile(ordered, 0.1), _quantile(ordered, 0.5), _quantile(ordered, 0.9))


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    at = q * (len(ordered) - 1)
    low = int(math.floor(at))
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (at - low))
