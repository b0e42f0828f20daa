"""Small SavedModels with known outputs, in the two layouts cvatkit loads.

Each returns the detections below, given as fractions of the frame (ymin, xmin, ymax,
xmax), moved right by a share of the frame's width that the frame itself sets (its top
left pixel's red value / 255 x ``SHIFT``): a test knows the boxes in pixels of any frame,
and a frame given the shapes of another is caught.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

# (box as fractions of the frame, 1-based class, score), best first.
DETECTIONS = [
    ((0.10, 0.20, 0.50, 0.60), 2, 0.95),
    ((0.55, 0.05, 0.95, 0.45), 1, 0.80),
    ((0.20, 0.70, 0.40, 0.90), 3, 0.30),
]
SHIFT = 0.1
SLOTS = 5  # detections padded to a fixed count, as real exports do
OFFSET = (3.0, 5.0)  # (y, x): what a Model Garden export's image_info row 3 may hold
MASK = np.zeros((6, 6), np.float32)
MASK[1:5, 1:5] = 0.9  # a square in the middle of each box


def _arrays(masks: bool):
    boxes = np.zeros((SLOTS, 4), np.float32)
    classes = np.zeros((SLOTS,), np.float32)
    scores = np.zeros((SLOTS,), np.float32)
    for i, (box, cls, score) in enumerate(DETECTIONS):
        boxes[i], classes[i], scores[i] = box, cls, score
    mask = np.broadcast_to(MASK, (SLOTS, *MASK.shape)).copy() if masks else None
    return boxes, classes, scores, mask


def frame_shift(image: np.ndarray) -> float:
    """How far right (a share of the frame's width) the test models move their boxes on
    this frame (RGB uint8 pixels, as cvatkit decodes them)."""
    return float(image[0, 0, 0]) / 255.0 * SHIFT


def _shifted(boxes, inputs):
    """The boxes of each frame of the batch ``inputs``, moved by its ``frame_shift``."""
    shift = tf.cast(inputs[:, 0, 0, 0], tf.float32) / 255.0 * SHIFT
    return boxes[None] + shift[:, None, None] * tf.constant([0.0, 1.0, 0.0, 1.0])


def model_garden_like(path: Path, *, input_size: int = 64, masks: bool = False,
                      batch: int | None = None) -> Path:
    """Like Model Garden's export: any batch (or ``batch``), boxes in pixels of the frame
    resized to ``input_size`` square (other scales for y and x) and offset, with
    ``image_info`` to map them back, int32 classes."""
    boxes, classes, scores, mask = _arrays(masks)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([batch, None, None, 3], tf.uint8)])
        def serve(self, inputs):
            n = tf.shape(inputs)[0]
            hw = tf.cast(tf.shape(inputs)[1:3], tf.float32)
            scale = float(input_size) / hw  # [y, x]
            resized = hw * scale
            offset = tf.constant(OFFSET)
            info = tf.stack([hw, resized, scale, offset])
            px = _shifted(boxes, inputs) * tf.tile(hw * scale, [2]) - tf.tile(offset, [2])
            out = {
                "detection_boxes": px,
                "detection_classes": tf.tile(tf.cast(classes, tf.int32)[None], [n, 1]),
                "detection_scores": tf.tile(scores[None], [n, 1]),
                "num_detections": tf.fill([n], len(DETECTIONS)),
                "image_info": tf.tile(info[None], [n, 1, 1]),
            }
            if mask is not None:
                out["detection_masks"] = tf.tile(mask[None], [n, 1, 1, 1])
            return out

    module = Module()
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    return path


def unknown_signature(path: Path) -> Path:
    """A SavedModel whose serving signature is not a detector's."""
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, features):
            return {"logits": tf.reduce_sum(features, axis=1)}

    module = Module()
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    return path


def od_api_like(path: Path, *, classes_predicted: int = 3, masks: bool = False,
                class_ids: tuple[int, ...] | None = None,
                input_size: tuple[int, int] | None = None, dtype=tf.uint8) -> Path:
    """Like a TF2 Object Detection API zoo export: batch 1, normalised boxes, float
    classes, per-class scores with the background first, masks relative to boxes.
    ``class_ids`` replace the detections' classes 1, 2, 3 (a label map with gaps);
    ``input_size`` fixes the (height, width) the signature takes; ``dtype`` its input."""
    boxes, classes, scores, mask = _arrays(masks)
    if class_ids is not None:
        classes = np.array([class_ids[int(c) - 1] if c else 0 for c in classes], np.float32)
    h, w = input_size or (None, None)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], dtype)])
        def serve(self, input_tensor):
            pixels = tf.cast(input_tensor, tf.uint8) if dtype != tf.uint8 else input_tensor
            out = {
                "detection_boxes": _shifted(boxes, pixels),
                "detection_classes": classes[None],
                "detection_scores": scores[None],
                "num_detections": tf.constant([float(len(DETECTIONS))]),
                "detection_multiclass_scores": tf.zeros([1, SLOTS, classes_predicted + 1]),
            }
            if mask is not None:
                out["detection_masks"] = mask[None]
            return out

    module = Module()
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    return path
