"""Conversions between cvatkit's records and ``cvat_sdk.models``, all in one place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..geometry import ellipse_polygon
from ..records import SHAPE_KINDS, LabelMap, Shape, TaskSummary


def label_map_from_cvat(labels: Sequence[Any]) -> LabelMap:
    """A LabelMap from ``models.ILabel`` records, skeleton points and tag labels (which
    mark whole frames, not objects) left out."""
    top = [label for label in labels if not getattr(label, "parent_id", None)
           and str(getattr(label, "type", "any")) != "tag"]
    return LabelMap.from_names(
        [label.name for label in top],
        {label.name: getattr(label, "color", None) for label in top},
        {label.name: str(getattr(label, "type", "any") or "any") for label in top})


def attribute_names(labels: Iterable[Any]) -> dict[int, str]:
    """Attribute spec id -> attribute name over all the task's labels."""
    return {spec.id: spec.name for label in labels for spec in (label.attributes or [])}


def shape_from_cvat(shape: Any, label_names: dict[int, str], attr_names: dict[int, str],
                    *, where: str = "") -> Shape | None:
    """A Shape from a ``models.LabeledShape``; None for kinds cvatkit does not train on.
    ``where`` names it in messages (``task 7 frame 3``)."""
    kind = getattr(shape.type, "value", str(shape.type))
    points = tuple(float(p) for p in shape.points)
    rotation = float(getattr(shape, "rotation", 0.0) or 0.0)
    if kind == "ellipse":
        # CVAT stores an ellipse as its centre and the top-right corner of its box.
        cx, cy, x2, y2 = points[:4]
        kind, points = "polygon", ellipse_polygon(cx, cy, abs(x2 - cx), abs(cy - y2), rotation)
        rotation = 0.0
    if kind not in SHAPE_KINDS:
        return None
    return Shape(
        kind=kind,
        label=label_names[shape.label_id],
        points=points,
        occluded=bool(shape.occluded),
        attributes=tuple((attr_names.get(a.spec_id, str(a.spec_id)), str(a.value))
                         for a in (shape.attributes or [])),
        z_order=int(shape.z_order or 0),
        rotation=rotation,
        where=where,
    )


def summary_from_cvat(task: Any, labels: Sequence[Any], host: str) -> TaskSummary:
    """A TaskSummary from a ``models.TaskRead`` (or a Task proxy) and its labels."""
    updated = getattr(task, "updated_date", None)
    return TaskSummary(
        id=int(task.id),
        name=str(task.name),
        labels=label_map_from_cvat(labels).names if labels else (),
        frames=int(task.size or 0),
        status=str(getattr(task.status, "value", task.status) or ""),
        updated=updated.isoformat() if hasattr(updated, "isoformat") else str(updated or ""),
        source=f"cvat://{task.id}",
        media_type=str(getattr(task, "media_type", "image") or "image"),
        extra={"host": host, "mode": str(getattr(task, "mode", "") or "")},
    )


def shape_to_cvat(shape: Shape, label_id: int) -> Any:
    """A ``models.LabeledShapeRequest`` for a predicted shape (frame 0, as
    ``cvat_sdk.auto_annotation`` functions return them), with its score: CVAT stores it
    and shows it on the shape."""
    import cvat_sdk.auto_annotation as cvataa

    make = {"rectangle": cvataa.rectangle, "polygon": cvataa.polygon, "mask": cvataa.mask}
    extra = {} if shape.score is None else {"score": round(float(shape.score), 4)}
    return make[shape.kind](label_id, [float(p) for p in shape.points], **extra)
