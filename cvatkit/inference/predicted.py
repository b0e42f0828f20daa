"""A model's predictions on some frames, made once and looked at many ways: the notebooks
and the app both predict at the score floor, keep the pixels of the frames they show, and
filter, evaluate and review at whatever threshold is chosen afterwards, never calling the
model again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..progress import Progress, no_progress
from .detector import Detector, check_threshold
from .disagreements import Review, review
from .evaluation import SCORE_FLOOR, Evaluation, evaluate
from .loader import load_detector
from .predictions import Prediction, open_frames, predict


@dataclass(frozen=True, kw_only=True)
class Evaluated:
    """Annotated frames' predictions at a threshold: AP and counts, and the mistakes."""

    evaluation: Evaluation
    review: Review


@dataclass(frozen=True, kw_only=True)
class Predicted:
    """A model's predictions on some frames, every shape above the score floor (a
    threshold filters them afterwards)."""

    predictions: tuple[Prediction, ...]
    model_labels: tuple[str, ...]
    task_labels: tuple[str, ...]
    """The labels of the frames' task; () for image files."""

    @property
    def labels(self) -> list[str]:
        """The model's labels, then the task's others: what is reported, in colour order."""
        return list(dict.fromkeys([*self.model_labels, *self.task_labels]))

    @property
    def annotated(self) -> bool:
        return any(p.ground_truth for p in self.predictions)

    def at(self, threshold: float) -> list[Prediction]:
        """Every frame with the shapes scored ``threshold`` or more."""
        check_threshold(threshold)
        return [replace(p, frame=replace(p.frame, shapes=p.shapes_at(threshold)))
                for p in self.predictions]

    def evaluate(self, threshold: float = 0.5) -> Evaluated | None:
        """COCO AP, found and false boxes and the likely mistakes at ``threshold``; None
        when no frame is annotated."""
        check_threshold(threshold)
        if not self.annotated:
            return None
        return Evaluated(evaluation=evaluate(self.predictions, self.labels, threshold=threshold),
                         review=review(self.predictions, self.labels, threshold=threshold))


def predict_frames(model: Detector | str | os.PathLike[str],
                   frames: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                   keep_images: int = 12, limit: int | None = None,
                   progress: Progress = no_progress, client=None) -> Predicted:
    """Predict ``frames`` (a CVAT export, ``cvat://ID`` on ``client`` or the environment's
    server, or image files and folders) with ``model`` (a loaded detector, or what
    ``load_detector`` takes) once, at the score floor, keeping the pixels of the first
    ``keep_images`` frames; ``limit`` stops after that many frames; ``progress`` counts
    the frames."""
    detector = model if isinstance(model, Detector) else load_detector(model)
    source = open_frames(frames, client=client)
    is_task = not isinstance(source, list)
    try:
        predictions = tuple(predict(detector, source, threshold=SCORE_FLOOR,
                                    keep_images=keep_images, limit=limit, progress=progress))
        task_labels = tuple(source.labels.names) if is_task else ()  # type: ignore[union-attr]
    finally:
        if is_task:
            source.close()  # type: ignore[union-attr]
    return Predicted(predictions=predictions, model_labels=tuple(detector.labels.names),
                     task_labels=task_labels)
