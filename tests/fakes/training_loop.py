"""A trainer for the step loop's tests: scripted evaluations, no TensorFlow."""

from __future__ import annotations

from pathlib import Path


class FakeTrainingLoop:
    """A trainer whose evaluations give ``aps`` in turn; ``write`` leaves a checkpoint
    file that says the step it was written at."""

    def __init__(self, aps, *, step: int = 0):
        self.aps, self._step = list(aps), step
        self.saved: list[int] = []
        self.written: list[int] = []
        self.evaluations = 0

    def train(self, steps):
        self._step += steps
        return {"total_loss": 1.0, "cls_loss": 0.5, "learning_rate": 0.1}

    def evaluate(self):
        self.evaluations += 1
        return {"AP": self.aps.pop(0), "AP50": 0.9, "Precision mAP ByCategory/a": 0.4}

    def step(self):
        return self._step

    def save(self, step, *, force):
        self.saved.append(step)

    def write(self, prefix):
        self.written.append(self._step)
        Path(prefix + ".index").write_text(str(self._step))

    def latest_checkpoint(self):
        return f"/nowhere/checkpoints/ckpt-{self.saved[-1]}"
