"""A loaded detector: call it on frames, get shapes in pixels of the original frame.

Two kinds of SavedModel are understood, told apart by their ``serving_default`` input:

- TF Model Garden (what ``cvatkit train`` exports): input ``inputs``, uint8
  ``[batch, height, width, 3]`` of any size; ``detection_boxes`` in pixels of the frame
  after the model's own resize, mapped back with ``image_info`` (rows: original size,
  resized size, scale, offset).
- TF2 Object Detection API (its model zoo): input ``input_tensor``, uint8
  ``[1, height, width, 3]``; ``detection_boxes`` normalised to 0..1.

Both give ``[ymin, xmin, ymax, xmax]`` boxes, 1-based ``detection_classes``,
``detection_scores`` sorted high to low and ``num_detections``; Mask R-CNN adds
``detection_masks``: a small probability map per detection, relative to its box.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, UsageError
from ..geometry import bitmap_polygon, encode_mask
from ..records import LabelMap, Shape

SIGNATURE = "serving_default"
MODEL_GARDEN = "model-garden"
OD_API = "od-api"
INPUT_KINDS = {"inputs": MODEL_GARDEN, "input_tensor": OD_API}
REQUIRED_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
_MASK_THRESHOLD = 0.5


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What was found where the user pointed."""

    description: str
    """What the user gave: a path or a model-store version URI."""
    saved_model: Path
    kind: str
    """``model-garden`` or ``od-api``."""
    labels: LabelMap
    """The model's labels by name, in class-id order."""
    label_file: Path
    has_masks: bool
    batch_size: int | None
    """The batch size the signature requires; None when any is accepted."""
    model_key: str = ""
    """The catalog key it was trained from, when its export says."""
    class_ids: tuple[int, ...] = ()
    """The class id of each label (its label file's own, which may have gaps, as the
    COCO label map of the TF2 model zoo has); empty means 1..N."""
    input_size: tuple[int, int] | None = None
    """(height, width) the signature requires; None when any size is accepted."""


class Detector:
    """A loaded detector. ``detect`` takes RGB uint8 frames, returns shapes per frame."""

    def __init__(self, info: ModelInfo, function) -> None:
        self.info = info
        self._fn = function
        self._input = next(k for k in INPUT_KINDS if INPUT_KINDS[k] == info.kind)
        ids = info.class_ids or tuple(range(1, len(info.labels) + 1))
        self._names = dict(zip(ids, info.labels.names))

    @property
    def labels(self) -> LabelMap:
        return self.info.labels

    def call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The SavedModel's raw outputs for a uint8 ``[N, H, W, 3]`` batch."""
        import tensorflow as tf

        try:
            out = self._fn(**{self._input: tf.constant(batch)})
        except (tf.errors.OpError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            raise ModelError(
                f"{self.info.description} failed on a batch of shape {list(batch.shape)} "
                f"({type(e).__name__}: {first})") from None
        return {k: v.numpy() for k, v in out.items()}

    def detect(self, images: Sequence[np.ndarray], *, threshold: float = 0.5,
               max_detections: int = 100, polygons: bool = False) -> list[list[Shape]]:
        """Shapes for each frame, best first: rectangles, or masks (polygons when asked)
        for models that predict masks. Frames of one call must share a size.

        A model that takes a fixed input size gets the frames resized to it, one that
        takes a fixed batch size gets the batch padded to it (and split into such
        batches); shapes always come back in pixels of the frames as given."""
        check_threshold(threshold)
        if not images:
            return []
        fixed = self.info.batch_size
        if fixed is not None and len(images) > fixed:
            return [shapes for start in range(0, len(images), fixed)
                    for shapes in self.detect(images[start:start + fixed],
                                              threshold=threshold,
                                              max_detections=max_detections,
                                              polygons=polygons)]
        height, width = images[0].shape[:2]
        batch = np.stack([self._fit(image) for image in images])
        if fixed is not None and len(images) < fixed:
            pad = np.zeros((fixed - len(images), *batch.shape[1:]), dtype=batch.dtype)
            batch = np.concatenate([batch, pad])
        out = self.call(batch)
        sx, sy = width / batch.shape[2], height / batch.shape[1]
        return [self._shapes(out, i, width, height, (sx, sy), threshold, max_detections,
                             polygons) for i in range(len(images))]

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """The frame at the input size the signature requires, if it requires one."""
        size = self.info.input_size
        if size is None or image.shape[:2] == size:
            return image
        from PIL import Image

        return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))

    def _shapes(self, out: dict[str, np.ndarray], i: int, width: int, height: int,
                scale: tuple[float, float], threshold: float, max_detections: int,
                polygons: bool) -> list[Shape]:
        n = min(int(np.asarray(out["num_detections"][i]).reshape(-1)[0]), max_detections)
        scores = out["detection_scores"][i][:n]
        keep = np.flatnonzero(scores >= threshold)
        if not len(keep):
            return []
        boxes = self._frame_boxes(out, "detection_boxes", i, width, height, scale)[keep]
        classes = np.rint(out["detection_classes"][i][keep]).astype(int)
        bad = [c for c in classes if int(c) not in self._names]
        if bad:
            raise ModelError(
                f"{self.info.description} returned class id {bad[0]}, but its label map "
                f"{self.info.label_file} has no label with that id (it has "
                f"{len(self.labels)} labels, ids {_id_range(self._names)}); give the label "
                "map the model was trained with")
        masks = None
        if self.info.has_masks and "detection_masks" in out:
            mask_key = ("detection_outer_boxes" if "detection_outer_boxes" in out
                        else "detection_boxes")
            masks = (out["detection_masks"][i][keep],
                     self._frame_boxes(out, mask_key, i, width, height, scale)[keep])
        shapes = []
        for j, (box, cls, score) in enumerate(zip(boxes, classes, scores[keep])):
            ymin, xmin, ymax, xmax = (float(v) for v in box)
            if not all(math.isfinite(v) for v in (ymin, xmin, ymax, xmax, score)):
                continue  # a model that diverged: nothing to place
            xmin, xmax = min(max(xmin, 0.0), width), min(max(xmax, 0.0), width)
            ymin, ymax = min(max(ymin, 0.0), height), min(max(ymax, 0.0), height)
            if xmax - xmin < 1e-3 or ymax - ymin < 1e-3:
                continue
            label = self._names[int(cls)]
            shape = None
            if masks is not None:
                shape = _mask_shape(masks[0][j], masks[1][j], width, height, label,
                                    float(score), polygons)
            if shape is None:
                shape = Shape(kind="rectangle", label=label, score=float(score),
                              points=(round(xmin, 2), round(ymin, 2), round(xmax, 2),
                                      round(ymax, 2)))
            shapes.append(shape)
        return shapes

    def _frame_boxes(self, out: dict[str, np.ndarray], key: str, i: int, width: int,
                     height: int, scale: tuple[float, float]) -> np.ndarray:
        """``[ymin, xmin, ymax, xmax]`` boxes in pixels of the frame as given (``scale``:
        its size over the size the model was called with)."""
        boxes = np.asarray(out[key][i], dtype=np.float64)
        if self.info.kind == MODEL_GARDEN:
            info = out["image_info"][i]
            resize = np.tile(info[2], 2)
            offset = np.tile(info[3], 2)
            called = (boxes + offset) / np.where(resize == 0, 1, resize)
            return called * np.array([scale[1], scale[0], scale[1], scale[0]])
        return boxes * np.array([height, width, height, width], dtype=np.float64)


def _id_range(names: dict[int, str]) -> str:
    ids = sorted(names)
    if ids == list(range(1, len(ids) + 1)):
        return f"1..{len(ids)}"
    return f"from {ids[0]} to {ids[-1]} with gaps"


def check_threshold(threshold: float, *, what: str = "score threshold") -> None:
    """A score threshold must be a number from 0 to 1."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise UsageError(f"{what} {threshold!r:.40} is not a number; give one from 0 to 1, "
                         "e.g. 0.5 (papermill: -p threshold 0.5, which passes a number)")
    if not 0.0 <= float(threshold) <= 1.0:
        raise UsageError(f"{what} {threshold!r} is outside 0..1; give e.g. 0.5")


def _mask_shape(probs: np.ndarray, box: np.ndarray, width: int, height: int, label: str,
                score: float, polygons: bool) -> Shape | None:
    """A box-relative probability map pasted into the frame, as a mask or a polygon."""
    from PIL import Image

    ymin, xmin, ymax, xmax = (float(v) for v in box)
    x0, y0 = max(int(math.floor(xmin)), 0), max(int(math.floor(ymin)), 0)
    x1, y1 = min(int(math.ceil(xmax)), width), min(int(math.ceil(ymax)), height)
    if x1 <= x0 or y1 <= y0 or xmax <= xmin or ymax <= ymin:
        return None
    # Resample the map over the box's own extent, then crop to whole frame pixels.
    bw, bh = max(int(round(xmax - xmin)), 1), max(int(round(ymax - ymin)), 1)
    resized = np.asarray(Image.fromarray(np.asarray(probs, dtype=np.float32))
                         .resize((bw, bh), Image.BILINEAR))
    ys = np.clip(((np.arange(y0, y1) + 0.5 - ymin) * bh / (ymax - ymin)).astype(int), 0, bh - 1)
    xs = np.clip(((np.arange(x0, x1) + 0.5 - xmin) * bw / (xmax - xmin)).astype(int), 0, bw - 1)
    bitmap = resized[np.ix_(ys, xs)] >= _MASK_THRESHOLD
    if polygons:
        points = bitmap_polygon(bitmap, x0, y0)
        return None if points is None else Shape(kind="polygon", label=label, score=score,
                                                 points=points)
    points = encode_mask(bitmap, x0, y0)
    return None if points is None else Shape(kind="mask", label=label, score=score,
                                             points=points)
