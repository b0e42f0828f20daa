"""Predictions made into a task's shapes: relabelled, drawn as the shape each task label
takes, and left out where the task already has them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from ..geometry import as_kind
from ..records import SHAPE_KINDS, Frame, Shape

EXISTING = "(existing)"
"""The tally of predictions left out because the task already has them."""
DROPPED = "(dropped)"
"""The tally of predictions of model labels that map to no task label."""


def shape_kind(label_type: str, has_masks: bool, *, masks_as_polygons: bool = False) -> str:
    """The shape to write for a task label of CVAT type ``label_type``: the kind that
    type takes (rectangle, polygon or mask); for a label that takes any shape (type
    ``any``, or not known, as under cvat-cli), polygons from a model that predicts masks
    and rectangles from one that does not. ``masks_as_polygons`` (CVAT's "convert masks
    to polygons") turns masks into polygons."""
    kind = label_type if label_type in SHAPE_KINDS else (
        "polygon" if has_masks else "rectangle")
    return "polygon" if kind == "mask" and masks_as_polygons else kind


def shape_key(shape: Shape) -> tuple:
    """What makes two shapes the same annotation: label, kind and points to 0.01 px."""
    return (shape.label, shape.kind, tuple(round(float(p), 2) for p in shape.points))


def task_shapes(frame: Frame, target_of: Callable[[str], str | None],
                kind_of: Callable[[str], str], known: set[tuple],
                counts: Counter[str]) -> list[Shape]:
    """A frame's predictions relabelled and reshaped for a task, minus shapes whose
    ``shape_key`` is in ``known``; ``counts`` tallies them per task label, plus
    ``EXISTING`` and ``DROPPED``."""
    out = []
    for shape in frame.shapes:
        target = target_of(shape.label)
        if target is None:
            counts[DROPPED] += 1
            continue
        converted = as_kind(replace(shape, label=target), kind_of(target), frame.width,
                            frame.height)
        if converted is None:
            continue
        if shape_key(converted) in known:
            counts[EXISTING] += 1
            continue
        counts[target] += 1
        out.append(converted)
    return out
