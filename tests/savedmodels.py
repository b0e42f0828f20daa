"""Small SavedModels with known outputs, in the two layouts cvatkit loads.

Each returns the same detections for every frame, given as fractions of the frame
(ymin, xmin, ymax, xmax), so a test knows the boxes in frame pixels for any frame size.
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
SLOTS = 5  # detections padded to a fixed count, as real exports do
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


def model_garden_like(path: Path, *, input_size: int = 64, masks: bool = False) -> Path:
    """Like Model Garden's export: any batch, boxes in pixels of the frame resized to fit
    ``input_size``, ``image_info`` to map them back, int32 classes."""
    boxes, classes, scores, mask = _arrays(masks)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        def serve(self, inputs):
            n = tf.shape(inputs)[0]
            hw = tf.cast(tf.shape(inputs)[1:3], tf.float32)
            scale = tf.reduce_min(float(input_size) / hw)
            resized = hw * scale
            info = tf.stack([hw, resized, tf.stack([scale, scale]), tf.zeros(2)])
            px = boxes * tf.tile(resized, [2])
            out = {
                "detection_boxes": tf.tile(px[None], [n, 1, 1]),
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


def od_api_like(path: Path, *, classes_predicted: int = 3, masks: bool = False) -> Path:
    """Like a TF2 Object Detection API zoo export: batch 1, normalised boxes, float
    classes, per-class scores with the background first, masks relative to boxes."""
    boxes, classes, scores, mask = _arrays(masks)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, input_tensor):
            out = {
                "detection_boxes": boxes[None],
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
