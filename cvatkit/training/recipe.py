"""The recipe fitted to the task: what a run takes, when the user sets nothing, from the
prepared dataset (its ``statistics.json`` and frame count) rather than from the model's
fixed defaults. Each rule returns its value and a note that says why; a value the user
set is never replaced. The anchors are fitted in ``resolution._fit_anchors``, at the input
size chosen here.
"""

from __future__ import annotations

import math

from ..dataset.statistics import DatasetStatistics
from .anchors import MIN_BOXES

MIN_OBJECT_PX = 16
"""The side (square root of the area) the smallest objects that matter should have at the
model's input: the finest feature level's stride (8) times the smallest anchor-size the
fit chooses (2)."""
SMALLEST = 0.1
"""Which objects matter: the 10th percentile of each label's sides, so a few stray boxes
do not decide the input size of every step."""
MAX_SIZE_FACTOR = 2
"""The input size grows for small objects to at most this times the model's own: a step
costs about the square of it (4x)."""
SCRATCH_EPOCHS = 60
"""Passes over the training frames of a run from random weights. On BCCD (263 frames at
batch 16) that is 1,000 steps, the budget bench/race.py measured there."""
MIN_STEPS = 300
MAX_STEPS = 20_000
"""Bounds of the fitted num-steps: a task of 20 frames still trains long enough to learn,
one of 100,000 frames does not train for days on a CPU unless asked to."""


def fitted_image_size(spec, stats: DatasetStatistics | None) -> tuple[int, str] | None:
    """The input size for ``spec`` on a dataset of ``stats``: large enough that the
    smallest objects that matter are ``MIN_OBJECT_PX`` across, never above the frames' own
    size (their median longer side) nor ``MAX_SIZE_FACTOR`` times the model's, never below
    the model's own unless the frames are smaller; a multiple of the model's coarsest
    stride. None without statistics (the model's own size)."""
    if stats is None or not stats.frames or not stats.longer_side[1]:
        return None
    multiple = 2 ** (spec.max_level or 6)
    frames = stats.longer_side[1]
    smallest = _smallest(stats)
    need = MIN_OBJECT_PX / smallest[1] if smallest else 0.0
    cap = MAX_SIZE_FACTOR * spec.image_size
    floor = min(spec.image_size, frames)
    want = min(max(need, floor), frames, cap)
    size = max(multiple, math.floor(want / multiple + 0.5) * multiple, 64)  # ties up
    size = min(size, 2048 // multiple * multiple)
    why = [f"the frames' median longer side is {frames:.0f} px"]
    if smallest:
        name, side = smallest
        at = side * size
        why.append(f"the smallest objects ({name}, {SMALLEST:.0%} of them under "
                   f"{100 * side:.1f}% of the frame) are {at:.0f} px across at {size}")
    if need > min(frames, cap) and cap < frames:
        why.append(f"{MIN_OBJECT_PX} px would take {math.ceil(need)}, over "
                   f"{MAX_SIZE_FACTOR}x the model's {spec.image_size} (a step costs about "
                   "the square); set image-size to go further")
    elif need > frames:
        why.append("a larger input would only enlarge the frames")
    elif frames < spec.image_size:
        why.append(f"the frames are smaller than the model's {spec.image_size}: trained at "
                   "their own size")
    if size == spec.image_size:
        return size, f"image-size={size}, the model's: " + "; ".join(why)
    return size, (f"image-size={size} (the model's is {spec.image_size}): " + "; ".join(why))


def _smallest(stats: DatasetStatistics) -> tuple[str, float] | None:
    """The label whose small objects are smallest and that has enough boxes to weigh in,
    with its ``SMALLEST`` quantile side over the frame's longer side."""
    sides = {name: s.relative_side[0] for name, s in stats.labels.items()
             if s.boxes >= MIN_BOXES and s.relative_side[0] > 0}
    if not sides:
        return None
    name = min(sides, key=sides.get)
    return name, sides[name]


def fitted_steps(train_frames: int, batch_size: int) -> tuple[int, str]:
    """num-steps of a run from random weights: ``SCRATCH_EPOCHS`` passes over the
    training frames, in hundreds, within ``MIN_STEPS`` and ``MAX_STEPS``."""
    per_epoch = train_frames / max(batch_size, 1)
    raw = per_epoch * SCRATCH_EPOCHS
    steps = int(min(MAX_STEPS, max(MIN_STEPS, round(raw / 100) * 100)))
    bound = (f"; at least {MIN_STEPS}" if steps == MIN_STEPS and raw < MIN_STEPS else
             f"; at most {MAX_STEPS} (set num-steps for more)" if raw > MAX_STEPS else "")
    return steps, (f"num-steps={steps}: {SCRATCH_EPOCHS} passes over {train_frames} "
                   f"training frames at batch {batch_size}, for a run from random "
                   f"weights{bound}")
