"""The whole job in a few calls, for batch runs (papermill) and scripts.

Each call prints its progress as plain lines (a notebook's output, a log) and raises a
``CvatkitError`` when something is wrong, so a papermill run fails with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .cvat import open_source, write_sample
from .dataset import DEFAULT_VAL_FRACTION, dataset_folder_name, prepare
from .errors import CvatkitError, UsageError
from .inference import (SCORE_FLOOR, Evaluation, Prediction, Review, check_threshold,
                        confusion_figure, evaluate, gallery_figure, label_colors, load_detector,
                        open_frames, pr_curves_figure, predict, review, save_evaluation_plots,
                        save_predictions)
from .progress import ProgressBar
from .run_progress import RunProgress
from .runs import EvalEvent, Run, StatusEvent, StepEvent
from .store import ModelVersion, open_store
from .store import publish as publish_run
from .training import (DEFAULT_MODEL, check_run_dir, get_model, hparams_given, parse_hparams,
                       plan_run, start_run)

Say = Callable[[str], object]
SAMPLE = "sample"
LINE_EVERY = 5.0
"""Seconds between two lines of a download's or a dataset's progress."""


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    train: Path
    """The prepared dataset to train on."""
    eval: Path | None
    """Held-out frames to evaluate on (the sample's test frames), when there are any."""
    test_source: str | None
    """The held-out frames as a task (an export path), for pictures and evaluation."""


def task_uri(source: str, task_id: int | None = None) -> str:
    """``cvat://ID`` when a task id is given, else ``source`` as it is."""
    if task_id is not None:
        if isinstance(task_id, bool) or not str(task_id).strip().isdigit() or \
                int(str(task_id).strip()) < 1:
            raise UsageError(f"task_id {task_id!r:.40} is not a task number; give a whole "
                             "number from 1, e.g. 12 (papermill: -p task_id 12)")
        if source not in ("", SAMPLE) and not source.startswith("cvat://"):
            raise UsageError(f"give either a task id or a source, not both ({source!r} "
                             f"and task {task_id})")
        return f"cvat://{int(str(task_id).strip())}"
    if not source:
        raise UsageError("no task given: set source to 'sample', an export path, "
                         "cvat://TASK_ID or cvat://project/PROJECT_ID")
    return source


def prepare_data(source: str, workdir: str | os.PathLike[str], *, say: Say = print,
                 sample_frames: int = 400, sample_test_frames: int = 60,
                 masks: str = "auto", val_split: float | None = None,
                 jobs: str = "auto") -> TrainingData:
    """The dataset(s) to train on, prepared once under ``workdir/datasets/`` and reused
    (prepared again when the annotations or what is asked of them changed).

    ``source`` is ``sample`` (the built-in task, with its held-out frames for evaluation),
    a CVAT export path, ``cvat://TASK_ID`` or ``cvat://project/PROJECT_ID``; ``jobs``
    picks the jobs whose frames are taken (``open_source``). ``masks`` as ``prepare``
    takes it (a model's ``ModelSpec.masks``: instance masks only for models that learn
    them). ``val_split``
    is the share of a task's frames kept for validation (default 0.1; the sample keeps
    none unless asked, its held-out frames are a task of their own).
    """
    work = Path(workdir)
    if source == SAMPLE:
        sample = work / "sample"
        if not (sample / "test.zip").exists():
            say(f"writing the sample task to {sample}")
            write_sample(sample, frames=sample_frames, test_frames=sample_test_frames,
                         overwrite=True)
        pairs = [(sample / "task.zip", work / "datasets" / "sample", val_split or 0.0),
                 (sample / "test.zip", work / "datasets" / "sample-test", 1.0)]
    else:
        pairs = [(Path(source) if "://" not in source else source,
                  work / "datasets" / dataset_folder_name(source),
                  DEFAULT_VAL_FRACTION if val_split is None else val_split)]
    for src, out, fraction in pairs:
        opened = open_source(src, jobs=jobs if src is pairs[0][0] else "auto")
        try:
            for note in opened.notes:
                say(f"note: {note}")
            say(f"preparing {opened.description} -> {out}")
            with ProgressBar(say=say, every=LINE_EVERY) as bar:
                ds = prepare(opened, out, val_fraction=fraction, masks=masks, overwrite=True,
                             reuse=True, progress=bar)
        finally:
            opened.close()
        if ds.reused:
            say(f"dataset {out} was already prepared from these annotations")
        else:
            say(ds.report.format())
    if source == SAMPLE:
        return TrainingData(train=pairs[0][1], eval=pairs[1][1],
                            test_source=str(pairs[1][0]))
    return TrainingData(train=pairs[0][1], eval=None, test_source=None)


def hparams_text(hparams: str = "", hparams_file: str = "") -> str:
    """The hyperparameter lines given as text, or read from ``hparams_file``."""
    return hparams_given(hparams, hparams_file)[0]


def train(*, source: str = SAMPLE, task_id: int | None = None,
          model: str | None = None, hparams: str = "", hparams_file: str = "",
          workdir: str | os.PathLike[str] = "cvatkit-work", weights: str | None = None,
          init_checkpoint: str | None = None, run_name: str | None = None,
          jobs: str = "auto", say: Say = print) -> Run:
    """Prepare the task, train ``model`` on it in its own process and wait for the end,
    printing progress; returns the finished ``Run``. A failed run raises.

    ``hparams`` holds ``key=value`` lines (``val-split`` among them splits the task);
    ``hparams_file`` names a file of them. ``weights`` is what the run starts from:
    coco, imagenet, none, an earlier run or a store version (``plan_run``); by default
    the model's own. ``init_checkpoint`` is the older name for a run or version.
    ``jobs`` picks a CVAT task's jobs to train on (``cvatkit prepare --jobs``)."""
    hparams, origin = hparams_given(hparams, hparams_file)
    spec = get_model(model or DEFAULT_MODEL)
    name = run_name or time.strftime(f"{spec.key}-%Y%m%d-%H%M%S")
    check_run_dir(Path(workdir) / "runs" / name)  # before any preparing or download
    split = parse_hparams(hparams, origin=origin).get("val-split")
    data = prepare_data(task_uri(source, task_id), workdir, say=say,
                        masks=spec.masks, val_split=split, jobs=jobs)
    with ProgressBar(say=say, every=LINE_EVERY) as bar:
        plan = plan_run(data.train, spec.key, hparams, hparams_origin=origin,
                        weights=weights or None, init_checkpoint=init_checkpoint or None,
                        eval_data=data.eval, progress=bar)
    for note in plan.notes:
        say(f"note: {note}")
    run = start_run(plan, Path(workdir) / "runs" / name)
    say(f"training {plan.spec.key} in {run.path} ({plan.hparams.num_steps} steps)")
    follow(run, say=say)
    return run


def follow(run: Run, *, say: Say = print) -> str:
    """Print a run's progress until it ends; raise unless it completed (a failed run, or
    one stopped before its last step, has no model to publish). Returns its final state."""
    progress = RunProgress(run.status().total_steps or 0)
    for event in run.follow():
        progress.on_event(event)
        if isinstance(event, StepEvent):
            eta = progress.eta()
            say(f"step {event.step}/{progress.total_steps}: loss {event.total_loss:.3f}, lr "
                f"{event.learning_rate:.3g}, {event.steps_per_sec:.2f} steps/s"
                + (f", about {eta / 60:.1f} min left" if eta is not None else ""))
        elif isinstance(event, EvalEvent):
            say(event.summary())
        elif isinstance(event, StatusEvent):
            say(f"{event.state}" + (f": {event.message}" if event.message else ""))
    failure = progress.failure(run.path)
    if failure is not None:
        raise CvatkitError(failure)
    return progress.state


def publish(run: Run, store: str, namespace: str, *, create_bucket: bool = False,
            say: Say = print) -> ModelVersion:
    """Push a finished run to the model store; returns the version."""
    target = open_store(store, create_bucket=create_bucket)
    version = publish_run(run.path, target, namespace)
    say(f"published {version.uri}")
    return version


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


@dataclass(frozen=True, kw_only=True)
class Evaluated:
    """Annotated frames' predictions at a threshold: AP and counts, and the mistakes."""

    evaluation: Evaluation
    review: Review


def predict_frames(model: str, frames: str, *, count: int = 12) -> Predicted:
    """Predict ``frames`` (an export, ``cvat://ID`` or an image folder) with ``model``
    once, keeping the pixels of the first ``count`` frames for the gallery."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise UsageError(f"count {count!r:.40} is not a number of frames; give a whole "
                         "number from 0, e.g. 12 (papermill: -p count 12)")
    detector = load_detector(model)
    source = open_frames(frames)
    is_task = not isinstance(source, list)
    try:
        predictions = tuple(predict(detector, source, threshold=SCORE_FLOOR,
                                    keep_images=count))
        task_labels = tuple(source.labels.names) if is_task else ()  # type: ignore
    finally:
        if is_task:
            source.close()  # type: ignore[union-attr]
    return Predicted(predictions=predictions, model_labels=tuple(detector.labels.names),
                     task_labels=task_labels)


def show_predictions(predicted: Predicted, *, threshold: float = 0.5,
                     out: str | os.PathLike[str] | None = None, say: Say = print):
    """The gallery figure of the frames whose pixels were kept, shapes at ``threshold``;
    the predictions and their pictures saved under ``out`` when given."""
    check_threshold(threshold)
    shown = [replace(p, frame=replace(p.frame, shapes=tuple(
        s for s in p.frame.shapes if s.confidence >= threshold)))
        for p in predicted.predictions]
    if out is not None:
        written = save_predictions(shown, out, labels=predicted.model_labels,
                                   task_labels=predicted.task_labels)
        say(f"predictions and pictures in {written['predictions'].parent}")
    tiles = [(p.image, p.frame.shapes, p.ground_truth, Path(p.frame.name).name)
             for p in shown if p.image is not None]
    return gallery_figure(tiles, colors=label_colors(predicted.labels))


def evaluate_predictions(predicted: Predicted, *, threshold: float = 0.5,
                         plots: str | os.PathLike[str] | None = None,
                         say: Say = print) -> Evaluated | None:
    """Print the evaluation of annotated frames' predictions at ``threshold`` and their
    mistakes; write the precision-recall curves and the confusion matrix into ``plots``
    when given. None (and nothing printed) when the frames are not annotated."""
    check_threshold(threshold)
    if not predicted.annotated:
        return None
    evaluated = Evaluated(
        evaluation=evaluate(predicted.predictions, predicted.labels, threshold=threshold),
        review=review(predicted.predictions, predicted.labels, threshold=threshold))
    say(evaluated.evaluation.format())
    say(evaluated.review.format())
    if plots is not None:
        written = save_evaluation_plots(evaluated.evaluation, evaluated.review, plots)
        say(f"plots: {', '.join(str(p) for p in written)}")
    return evaluated


def show_pr_curves(evaluated: Evaluated):
    """Precision against recall at IoU 0.5, a curve per label (coloured as in the
    gallery)."""
    return pr_curves_figure(evaluated.evaluation)


def show_confusion(evaluated: Evaluated):
    """Which label each annotated object was taken for, and the false and missed boxes."""
    return confusion_figure(evaluated.review)
