"""Export a run's checkpoint as a SavedModel, with its label files beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ...dataset import Dataset
from ...errors import RunError, UsageError
from ...files import folder_written_aside, require_new_or_empty
from ...label_files import write_label_files
from ...progress import Progress, no_progress
from ...records import LabelMap
from ...runs import CHECKPOINTS, EXPORT, MODEL_JSON, RUN_JSON, SAVED_MODEL, TERMINAL, Run
from ..catalog import ModelSpec
from ..best import choose_export
from ..hparams import EXPORT_CHECKPOINTS, NMS_KINDS
from ..record import read_record
from .precision import float32_layers
from .tracing import as_written, traced_plainly


def export_run(run: Run, experiment, checkpoint: str, labels: tuple[str, ...], *,
               out: Path | None = None, about: dict | None = None) -> Path:
    """``out`` (default ``RUN_DIR/export/``): ``saved_model/`` (uint8 images of any size
    in, detections out, through Model Garden's export library) plus ``label_map.pbtxt``,
    ``classes.csv``, ``label_map.json`` and ``model.json`` (with ``about``: which of the
    run's checkpoints it is). Written aside, then renamed into place."""
    model = read_record(run).model
    return export_model(experiment, checkpoint, labels, out or run.path / EXPORT,
                        model_key=model.key, family=model.family, about=about)


def export_model(experiment, checkpoint: str, labels: tuple[str, ...], out: Path, *,
                 model_key: str, family: str, about: dict | None = None) -> Path:
    """The SavedModel of ``checkpoint`` and its label files in ``out`` (written aside,
    then renamed into place); ``about`` adds to ``model.json``. The model computes in
    float32 whatever precision it was trained in (its weights are float32 either way):
    the export runs on any machine and gives float32 outputs."""
    from official.vision.serving import detection, export_saved_model_lib

    size = list(experiment.task.model.input_size[:2])
    with folder_written_aside(out) as tmp, float32_layers(), _serving_functions_only():
        module = None
        if traced_plainly(family):
            module = detection.DetectionModule(params=experiment, batch_size=None,
                                               input_image_size=size,
                                               input_type="image_tensor")
            module.serve = as_written(module.serve)
        export_saved_model_lib.export_inference_graph(
            input_type="image_tensor", batch_size=None, input_image_size=size,
            params=experiment, checkpoint_path=checkpoint, export_dir=str(tmp),
            export_checkpoint_subdir="checkpoint", export_saved_model_subdir=SAVED_MODEL,
            export_module=module)
        write_label_files(LabelMap.from_names(labels), tmp)
        (tmp / MODEL_JSON).write_text(json.dumps({
            "model": model_key, "family": family, **(about or {}),
            "input_size": size, "labels": list(labels), "checkpoint": Path(checkpoint).name,
            "nms": experiment.task.model.detection_generator.nms_version,
            "input": "uint8 images [batch, height, width, 3], any size (resized inside)",
            "outputs": "detection_boxes (pixels of the resized input: divide by image_info "
                       "row 2), detection_classes (1-based), detection_scores, "
                       "num_detections",
        }, indent=2) + "\n")
    return out


@contextmanager
def _serving_functions_only() -> Iterator[None]:
    """Save the serving signature without Keras's own traces of every layer's call (what
    ``tf_keras.Model.save(save_traces=False)`` does): cvatkit and CVAT load an export
    with ``tf.saved_model.load`` and call its signature, which does not need them, and
    tracing them was half of an export's cost."""
    try:
        from tf_keras.src.saving.legacy.saved_model import utils
    except ImportError:  # another tf_keras layout: save them, as before
        yield
        return
    with utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
        yield


def export_again(run: Run, *, nms: str | None = None, checkpoint: str | None = None,
                 out: str | os.PathLike[str] | None = None) -> Path:
    """Export a finished run again (into ``out``, a new or empty folder; default: replace
    ``RUN_DIR/export/``), with another NMS (``nms``) if given: e.g. a run exported with
    Model Garden's slow ``v2`` made fast. ``checkpoint`` (best or last; default: the run's
    ``export-checkpoint``) says which checkpoint."""
    import tensorflow as tf

    from . import backbones  # noqa: F401  (registers cvatkit's extra backbones)
    from .config import build_experiment

    if nms is not None and nms not in NMS_KINDS:
        raise UsageError(f"nms {nms!r}: use one of {', '.join(NMS_KINDS)}")
    if checkpoint is not None and checkpoint not in EXPORT_CHECKPOINTS:
        raise UsageError(f"checkpoint {checkpoint!r}: use one of "
                         f"{', '.join(EXPORT_CHECKPOINTS)}")
    if not run.exists():
        raise RunError(f"{run.path} is not a cvatkit run (no {RUN_JSON})")
    status = run.status()
    if status.state not in TERMINAL:
        raise RunError(f"{run.path} is still {status.state}; export it once it has ended "
                       f"(or stop it: `cvatkit stop {run.path}`)")
    last = tf.train.latest_checkpoint(str(run.path / CHECKPOINTS))
    if last is None:
        raise RunError(f"{run.path} has no checkpoint to export ({CHECKPOINTS}/ holds "
                       "none); a run exports what it trained")
    if out is not None:
        require_new_or_empty(Path(out), "give a new or empty folder for the export")
    if checkpoint == "best" and run.best_checkpoint() is None:  # asked for, not defaulted
        raise RunError(f"{run.path} has no best checkpoint: no evaluation during training "
                       "chose one; export its last with --checkpoint last")
    record = read_record(run)
    hp = record.hparams
    if nms is not None:
        hp = replace(hp, nms=nms)
    exported = choose_export(run, checkpoint or hp.export_checkpoint, last)
    experiment = build_experiment(record.model, hp, record.data)
    return export_run(run, experiment, exported.checkpoint, record.labels,
                      out=Path(out) if out is not None else None, about=exported.about())


def export_pretrained(key: str, out: str | os.PathLike[str], *, nms: str = "batched",
                      catalog: dict[str, ModelSpec] | None = None,
                      progress: Progress = no_progress) -> Path:
    """The COCO-trained detector of catalog entry ``key`` as a SavedModel with COCO's
    label files, in ``out`` (a new or empty folder): a model to pre-annotate with before
    any training (``predict``, ``evaluate``, ``annotate --map person=pedestrian``)."""
    from ..catalog import get_model, load_catalog
    from ..coco_classes import COCO_CLASSES
    from ..resolution import resolve
    from ..weights import fetch_weights
    from . import backbones  # noqa: F401  (registers cvatkit's extra backbones)
    from .config import build_experiment

    spec = get_model(key, catalog if catalog is not None else load_catalog())
    coco = spec.weights_for("coco")
    if coco is None:
        having = [k for k, s in (catalog or load_catalog()).items() if s.weights_for("coco")]
        raise UsageError(f"{spec.key} has no COCO-trained detector to export; these have: "
                         f"{', '.join(having) or 'none'}")
    if coco.num_classes != len(COCO_CLASSES) + 1:
        raise UsageError(f"{spec.key}'s detector has {coco.num_classes} classes; only "
                         f"COCO's {len(COCO_CLASSES) + 1} have names cvatkit knows")
    if nms not in NMS_KINDS:
        raise UsageError(f"nms {nms!r}: use one of {', '.join(NMS_KINDS)}")
    out = Path(out)
    require_new_or_empty(out, "give a new or empty folder for the export")
    checkpoint = fetch_weights(coco, progress=progress)
    labels = LabelMap.from_names(COCO_CLASSES)
    stand_in = Dataset(path=out, labels=labels, train_frames=1, val_frames=0,
                       include_masks=False, val_fraction=0.0)
    hp, _ = resolve(spec, {"nms": nms}, stand_in, gpus=0)
    experiment = build_experiment(spec, hp, stand_in)
    return export_model(experiment, str(checkpoint), COCO_CLASSES, out, model_key=spec.key,
                        family=spec.family,
                        about={"weights": coco.description, "from": coco.urls[0]})
