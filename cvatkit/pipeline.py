"""The whole job in a few calls, for batch runs (papermill) and scripts.

Each call prints its progress as plain lines (a notebook's output, a log) and raises a
``CvatkitError`` when something is wrong, so a papermill run fails with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .dataset import TrainingData, prepare_training_data
from .errors import CvatkitError, UsageError
from .inference import (Evaluated, Predicted, check_threshold, confusion_figure, gallery_figure,
                        label_colors, picture_title, pr_curves_figure, save_evaluation_plots,
                        save_predictions)
from .inference import predict_frames as predict_once
from .progress import ProgressBar
from .run_progress import RunProgress
from .runs import EvalEvent, Event, Run, StatusEvent, StepEvent
from .store import ModelVersion, open_store
from .store import publish as publish_run
from .training import (DEFAULT_MODEL, check_run_dir, follow_run, get_model, hparams_given,
                       parse_hparams, plan_run, run_summary, start_run)
from .work_folder import SAMPLE, WorkFolder

Say = Callable[[str], object]
LINE_EVERY = 5.0
"""Seconds between two lines of a download's or a dataset's progress."""


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


def prepare_data(source: str, workdir: str | os.PathLike[str] | None = None, *,
                 say: Say = print, **options) -> TrainingData:
    """``dataset.prepare_training_data``, its progress printed as lines (``say``): the
    dataset(s) to train on, prepared once in the work folder and reused."""
    with ProgressBar(say=say, every=LINE_EVERY) as bar:
        return prepare_training_data(source, workdir, say=say, progress=bar, **options)


def hparams_text(hparams: str = "", hparams_file: str = "") -> str:
    """The hyperparameter lines given as text, or read from ``hparams_file``."""
    return hparams_given(hparams, hparams_file)[0]


def train(*, source: str = SAMPLE, task_id: int | None = None,
          model: str | None = None, hparams: str = "", hparams_file: str = "",
          workdir: str | os.PathLike[str] | None = None, weights: str | None = None,
          init_checkpoint: str | None = None, run_name: str | None = None,
          jobs: str = "auto", say: Say = print) -> Run:
    """Prepare the task, train ``model`` on it in its own process and wait for the end,
    printing progress; returns the finished ``Run``. A failed run raises.

    ``hparams`` holds ``key=value`` lines (``val-split`` among them splits the task);
    ``hparams_file`` names a file of them. ``weights`` is what the run starts from:
    coco, imagenet, none, an earlier run or a store version (``plan_run``); by default
    the model's own. ``init_checkpoint`` is the older name for a run or version.
    ``jobs`` picks a CVAT task's jobs to train on (``cvatkit prepare --jobs``).
    ``workdir``: the work folder (``WorkFolder.at``); the run goes to its ``runs/``,
    named ``run_name`` or after the time and the model."""
    hparams, origin = hparams_given(hparams, hparams_file)
    spec = get_model(model or DEFAULT_MODEL)
    work = WorkFolder.at(workdir)
    run_dir = work.run(run_name) if run_name else work.new_run(spec.key)
    check_run_dir(run_dir)  # before any preparing or download
    split = parse_hparams(hparams, origin=origin).get("val-split")
    data = prepare_data(task_uri(source, task_id), work.path, say=say,
                        masks=spec.masks, val_split=split, jobs=jobs)
    with ProgressBar(say=say, every=LINE_EVERY) as bar:
        plan = plan_run(data.train, spec.key, hparams, hparams_origin=origin,
                        weights=weights or None, init_checkpoint=init_checkpoint or None,
                        eval_data=data.eval, progress=bar)
    for note in plan.notes:
        say(f"note: {note}")
    run = start_run(plan, run_dir)
    say(f"training {plan.spec.key} in {run.path} ({plan.hparams.num_steps} steps)")
    follow(run, say=say)
    return run


def follow(run: Run, *, say: Say = print) -> str:
    """Print a run's progress until it ends, then what it came to; raise unless it
    completed (a failed run, or one stopped before its last step, has no model to
    publish). Interrupting the kernel stops the run at a checkpoint. Returns its final
    state."""
    def show(event: Event, progress: RunProgress) -> None:
        if isinstance(event, StepEvent):
            eta = progress.eta()
            say(f"step {event.step}/{progress.total_steps}: loss {event.total_loss:.3f}, lr "
                f"{event.learning_rate:.3g}, {event.steps_per_sec:.2f} steps/s"
                + (f", about {eta / 60:.1f} min left" if eta is not None else ""))
        elif isinstance(event, EvalEvent):
            say(event.summary())
        elif isinstance(event, StatusEvent):
            say(f"{event.state}" + (f": {event.message}" if event.message else ""))

    progress = follow_run(run, show, say=say)
    failure = progress.failure(run.path)
    if failure is not None:
        raise CvatkitError(failure)
    for line in run_summary(run, progress):
        say(line)
    return progress.state


def publish(run: Run, store: str, namespace: str, *, create_bucket: bool = False,
            say: Say = print) -> ModelVersion:
    """Push a finished run to the model store; returns the version."""
    target = open_store(store, create_bucket=create_bucket)
    version = publish_run(run.path, target, namespace)
    say(f"published {version.uri}")
    return version


def predict_frames(model: str, frames: str, *, count: int = 12) -> Predicted:
    """Predict ``frames`` (an export, ``cvat://ID`` or an image folder) with ``model``
    once, keeping the pixels of the first ``count`` frames for the gallery."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise UsageError(f"count {count!r:.40} is not a number of frames; give a whole "
                         "number from 0, e.g. 12 (papermill: -p count 12)")
    return predict_once(model, frames, keep_images=count)


def show_predictions(predicted: Predicted, *, threshold: float = 0.5,
                     out: str | os.PathLike[str] | None = None, say: Say = print):
    """The gallery figure of the frames whose pixels were kept, shapes at ``threshold``;
    the predictions and their pictures saved under ``out`` when given."""
    check_threshold(threshold)  # before the predictions: papermill passes text
    shown = predicted.at(threshold)
    if out is not None:
        written = save_predictions(shown, out, labels=predicted.model_labels,
                                   task_labels=predicted.task_labels)
        say(f"predictions and pictures in {written['predictions'].parent}")
    tiles = [(p.image, p.frame.shapes, p.ground_truth,
              picture_title(p, labels=predicted.model_labels))
             for p in shown if p.image is not None]
    return gallery_figure(tiles, colors=label_colors(predicted.labels))


def evaluate_predictions(predicted: Predicted, *, threshold: float = 0.5,
                         plots: str | os.PathLike[str] | None = None,
                         say: Say = print) -> Evaluated | None:
    """Print the evaluation of annotated frames' predictions at ``threshold`` and their
    mistakes; write the precision-recall curves and the confusion matrix into ``plots``
    when given. None (and nothing printed) when the frames are not annotated."""
    check_threshold(threshold)
    evaluated = predicted.evaluate(threshold)
    if evaluated is None:
        return None
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
