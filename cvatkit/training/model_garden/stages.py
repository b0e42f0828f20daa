"""Mask R-CNN's three training stages, as CVAT's original workflow trained it.

1. the heads only (backbone frozen), 2. from the middle of the backbone up,
3. every layer at a tenth of the learning rate. One compiled training step serves all
three: a gradient transformer scales each variable's gradient by a factor that depends
on the current stage (0 freezes it), so changing stage is assigning one variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Gradient scale per stage (rows: no staging, stage 1, 2, 3) and variable group
# (columns: lower half of the backbone, upper half, everything else).
SCALES = np.array([[1.0, 1.0, 1.0],
                   [0.0, 0.0, 1.0],
                   [0.0, 1.0, 1.0],
                   [0.1, 0.1, 0.1]], dtype=np.float32)
LOWER, UPPER, REST = 0, 1, 2
CLIP_NORM = 10.0


@dataclass(frozen=True)
class Stage:
    number: int
    end_step: int


def plan_stages(epochs: tuple[int, int, int], train_frames: int, batch: int) -> list[Stage]:
    """The stages with their last step (stages of 0 epochs are left out)."""
    per_epoch = max(1, math.ceil(train_frames / batch))
    stages, end = [], 0
    for number, count in enumerate(epochs, start=1):
        if count:
            end += count * per_epoch
            stages.append(Stage(number, end))
    return stages


def variable_groups(model) -> dict:
    """Each trainable variable's group, by ``v.ref()``: the backbone's variables in
    creation (layer) order, split in halves; the rest in REST."""
    backbone = list(model.backbone.trainable_variables)
    half = len(backbone) // 2
    groups = {v.ref(): (LOWER if i < half else UPPER) for i, v in enumerate(backbone)}
    for v in model.trainable_variables:
        groups.setdefault(v.ref(), REST)
    return groups


class StageGradients:
    """The gradient transformer; ``stage`` is a tf.Variable set between stages."""

    def __init__(self, model) -> None:
        import tensorflow as tf

        self.stage = tf.Variable(0, dtype=tf.int32, trainable=False, name="stage")
        self._scales = tf.constant(SCALES)
        self._groups = variable_groups(model)

    def __call__(self, grads_and_vars):
        import tensorflow as tf

        pairs = [(g, v) for g, v in grads_and_vars]
        grads = [g for g, _ in pairs]
        clipped, _ = tf.clip_by_global_norm(grads, CLIP_NORM)
        row = tf.gather(self._scales, self.stage)
        return [(None if g is None else g * row[self._groups.get(v.ref(), REST)], v)
                for g, (_, v) in zip(clipped, pairs)]
