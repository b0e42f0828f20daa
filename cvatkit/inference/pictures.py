"""A prediction pass written down: ``predictions.json`` (every frame's shapes and scores),
a picture per frame that kept its pixels and a gallery, titled the same way everywhere
(``picture_title``: on an annotated frame, the objects found as the evaluation counts
them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..files import folder_written_aside, require_new_or_empty
from .drawing import frame_figure, gallery_figure, label_colors, save_png
from .frame_match import match_prediction
from .predictions import Prediction


def picture_title(p: Prediction, *, labels: Sequence[str] | None = None,
                  iou: float = 0.5) -> str:
    """A frame's picture title: its name, then for an annotated frame the objects found of
    those annotated and the false boxes (matched as the evaluation matches them), else the
    shapes found. ``p`` holds the shapes drawn (those at the threshold). ``labels``: the
    model's; a frame whose annotations have none of them (a model of other labels than
    the task's) is counted as not annotated."""
    name = Path(p.frame.name).name
    if not p.ground_truth or (labels is not None and not (
            set(labels) & {s.label for s in p.ground_truth})):
        return f"{name}: {len(p.frame.shapes)} found"
    match = match_prediction(p, iou=iou)
    false = sum(j is None for j in match.matched)
    return (f"{name}: {sum(match.found)} of {len(p.ground_truth)} found"
            + (f", {false} false" if false else ""))


def prediction_record(p: Prediction) -> dict:
    """A prediction as JSON: the frame, then each shape with its label and score."""
    f = p.frame
    return {"index": f.index, "name": f.name, "width": f.width, "height": f.height,
            "shapes": [{"kind": s.kind, "label": s.label, "score": round(s.confidence, 4),
                        "points": list(s.points)} for s in f.shapes]}


def save_predictions(predictions: Iterable[Prediction], out_dir: str | os.PathLike[str], *,
                     labels: Sequence[str], task_labels: Sequence[str] = (),
                     about: dict | None = None, ground_truth: bool = True,
                     gallery: int = 12) -> dict[str, Path]:
    """``out_dir/predictions.json`` (every frame), ``pictures/`` (a PNG per frame that
    kept its pixels) and ``gallery.png``; written aside, then renamed into place.
    ``labels`` are the model's; ``task_labels`` the task's, so that every picture gives a
    label the same colour. Returns the paths written, by kind."""
    out = Path(out_dir)
    require_new_or_empty(out, "give a new folder for the predictions")
    colors = label_colors([*labels, *task_labels])
    records, tiles = [], []
    with folder_written_aside(out) as tmp:
        for p in predictions:
            records.append(prediction_record(p))
            if p.image is None:
                continue
            truth = p.ground_truth if ground_truth else ()
            title = picture_title(p, labels=labels)
            name = f"{p.frame.index:06d}_{Path(p.frame.name).stem}.png"
            save_png(frame_figure(p.image, p.frame.shapes, ground_truth=truth,
                                  colors=colors, title=title), tmp / "pictures" / name)
            if len(tiles) < gallery:
                tiles.append((p.image, p.frame.shapes, truth, title))
        (tmp / "predictions.json").write_text(json.dumps(
            {**(about or {}), "labels": list(labels), "frames": records}, indent=1) + "\n")
        if tiles:
            save_png(gallery_figure(tiles, colors=colors), tmp / "gallery.png")
    written = {"predictions": out / "predictions.json"}
    if tiles:
        written["gallery"] = out / "gallery.png"
        written["pictures"] = out / "pictures"
    return written
