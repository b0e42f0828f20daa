"""Planning a training run: everything that can be checked before any TensorFlow is
loaded (the dataset, the model key, the hyperparameters, the GPUs, the starting
checkpoint), resolved into a ``RunPlan`` that ``start_run`` carries out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset import Dataset, load_dataset
from ..errors import DatasetError, HyperparameterError, UsageError
from ..progress import Progress, no_progress
from ..records import LabelMap
from ..runs import BEST, CHECKPOINTS, Run, run_of_checkpoint
from .catalog import WEIGHT_KINDS, ModelSpec, get_model, load_catalog
from .devices import count_gpus
from .hparams import parse_hparams
from .record import InitCheckpoint, read_record
from .resolution import Hyperparameters, resolve

MAX_WORKERS = 64


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, checked."""

    spec: ModelSpec
    hparams: Hyperparameters
    hparams_text: str
    data: Dataset
    eval_data: Dataset | None = None
    init: InitCheckpoint | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    weights: str = "none"
    """What was asked for: 'coco', 'imagenet', 'none', or the run folder, checkpoint or
    store version it starts from."""
    workers: int = 1
    """Worker processes (machines) it trains on, ``num-clones`` replicas each."""


def plan_run(data_dir: str | os.PathLike[str], model: str, hparams_text: str = "", *,
             hparams_origin: str = "hyperparameters", weights: str | None = None,
             init_checkpoint: str | None = None,
             reinit_heads: bool = False, pretrained: bool = False,
             eval_data: str | os.PathLike[str] | None = None,
             catalog: dict[str, ModelSpec] | None = None, gpus: int | None = None,
             workers: int = 1, progress: Progress = no_progress,
             fetch: bool = True) -> RunPlan:
    """Check a run request and resolve it into a plan (nothing is written; with
    ``fetch`` False, published weights are named but not downloaded: ``init`` is None).

    ``weights`` is what the run starts from: 'coco' or 'imagenet' (the entry's published
    weights, downloaded once and cached), 'none' (random initialisation), an earlier run
    (its folder or one of its checkpoints) or a store version URI; by default the entry's
    ``init_version``, else its ``default_weights``. ``init_checkpoint`` (a run or version)
    and ``pretrained`` (the entry's best published weights) are older spellings."""
    data = load_dataset(data_dir)
    if data.train_frames < 1:
        raise DatasetError(f"{data.path} has no training frames (it was prepared with "
                           f"--val-split {data.val_fraction:g}); prepare it with a smaller "
                           "--val-split")
    spec = get_model(model, catalog if catalog is not None else load_catalog())
    values = parse_hparams(hparams_text, origin=hparams_origin)
    evald = None
    if eval_data is not None:
        evald = load_dataset(eval_data)
        if evald.labels.names != data.labels.names:
            raise DatasetError(
                f"the evaluation data {evald.path} has labels {list(evald.labels.names)}, "
                f"the training data {list(data.labels.names)}; prepare both from tasks with "
                "the same labels")
        if evald.val_frames < 1:
            raise DatasetError(f"{evald.path} has no validation frames; prepare it with "
                               "--val-split 1 to evaluate on all its frames")
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers}: give 1 to {MAX_WORKERS}")
    choice = _weights_choice(spec, weights, init_checkpoint, pretrained)
    hp, notes = resolve(spec, values, data, gpus=count_gpus() if gpus is None else gpus,
                        workers=workers, weights=choice)
    if hp.early_stopping_patience and (evald or data).val_frames < 1:
        raise HyperparameterError(
            f"early-stopping-patience={hp.early_stopping_patience} needs evaluations, but "
            f"{data.path} has no validation frames (it was prepared with --val-split "
            f"{data.val_fraction:g}); prepare it with a --val-split above 0, give evaluation "
            "data (--eval-data), or remove early-stopping-patience")
    choice = _weights_choice(spec, weights, init_checkpoint, pretrained)
    init = None
    if choice in ("coco", "imagenet") and not fetch:
        _published(spec, choice)  # a model that has none is refused all the same
    elif choice in ("coco", "imagenet"):
        published = _published(spec, choice)
        from .weights import fetch_weights

        path = fetch_weights(published, progress=progress)
        init = InitCheckpoint(path=str(path), kind=choice, modules=published.modules,
                              source=published.description,
                              num_classes=published.num_classes)
    elif choice != "none":
        from ..store import is_version_uri, pull

        local = str(pull(choice, progress=progress)) if is_version_uri(choice) else choice
        init = resolve_init_checkpoint(local, spec, data, reinit_heads=reinit_heads)
        note = labels_note(choice, init.labels, data.labels.names, reinit_heads=reinit_heads)
        notes = [*notes, *([note] if note else [])]
    if reinit_heads and (init is None or init.kind != "run"):
        raise UsageError("--reinit-heads applies to a run or store version to start from; "
                         f"the run starts from {choice}")
    return RunPlan(spec=spec, hparams=hp, hparams_text=hparams_text, data=data,
                   eval_data=evald, init=init, notes=tuple(notes), weights=choice,
                   workers=workers)


def check_request(model: str, hparams_text: str = "", *, hparams_origin: str =
                  "hyperparameters", weights: str | None = None, gpus: int, val_split: float,
                  catalog: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """What ``plan_run`` will check of a run that is to be planned elsewhere (a cluster's
    pod), as far as it can be known before its task is read: the model, the
    hyperparameters against the model and ``gpus`` (a dataset of a size no check minds
    standing in for the task's), and the weights it starts from, when they are one of the
    published kinds. Returns the model's entry."""
    spec = get_model(model, catalog if catalog is not None else load_catalog())
    values = parse_hparams(hparams_text, origin=hparams_origin)
    stand_in = Dataset(path=Path("task"), labels=LabelMap.from_names(["object"]),
                       train_frames=1_000, val_frames=100, val_fraction=val_split,
                       include_masks=spec.family == "maskrcnn")
    resolve(spec, values, stand_in, gpus=gpus)
    choice = _weights_choice(spec, weights, None, False)
    if choice in ("coco", "imagenet"):
        _published(spec, choice)
    return spec


def _published(spec: ModelSpec, choice: str):
    """The entry's published ``choice`` weights (coco or imagenet); refused when it has
    none."""
    published = spec.weights_for(choice)
    if published is None:
        raise UsageError(f"{spec.key} has no published {choice} weights; it can start from "
                         f"{', '.join(spec.weight_kinds)}, an earlier run or a store version")
    return published


def _weights_choice(spec: ModelSpec, weights: str | None, init_checkpoint: str | None,
                    pretrained: bool) -> str:
    given = [name for name, value in (("weights", weights),
                                      ("a starting checkpoint", init_checkpoint),
                                      ("--pretrained", pretrained)) if value]
    if len(given) > 1:
        raise UsageError(f"give one of {' and '.join(given)}, not both: they all say what "
                         "the run starts from")
    if init_checkpoint:
        return str(init_checkpoint)
    if pretrained:
        if spec.weight_kinds[0] == "none":
            raise UsageError(f"{spec.key} has no published initial weights; it trains from "
                             "random initialisation")
        return spec.weight_kinds[0]
    if weights:
        weights = str(weights).strip()
        if weights.lower() in WEIGHT_KINDS:
            return weights.lower()
        if weights.lower() in ("random", "scratch", "default"):
            raise UsageError(f"weights={weights!r}: use none (random initialisation), "
                             f"{' or '.join(k for k in WEIGHT_KINDS if k != 'none')}, a run "
                             "folder or a store version; leave it out for the model's "
                             "default")
        return weights
    return spec.init_version or spec.default_weights


def check_start(spec: ModelSpec, weights: str, labels: Sequence[str] | None, *,
                trained: Sequence[str] | None = None) -> str:
    """Check what a run is to start from, as far as it can be known before anything is
    fetched: published weights the model has, or an earlier run (its folder or one of its
    checkpoints) of the same architecture, trained on as many classes as ``labels`` (the
    task's, when known). A store version's labels are checked when the caller knows them
    (``trained``). Returns a note when the labels' names or order differ ('' when none);
    what cannot start the model raises."""
    weights = weights.strip()
    if not weights or weights.lower() == "none":
        return ""
    if weights.lower() in WEIGHT_KINDS:
        _published(spec, weights.lower())
        return ""
    from ..store import is_version_uri

    if not is_version_uri(weights):
        run_dir, prefix = _run_checkpoint(weights)
        trained = _trained_labels(run_dir, prefix, spec)
    if trained is None or labels is None:
        return ""
    return labels_note(weights, trained, labels)


def labels_note(source: str, trained: Sequence[str], labels: Sequence[str], *,
                reinit_heads: bool = False) -> str:
    """Refuse a start trained on another number of classes than the task has (unless its
    heads start afresh); a note when the names or their order differ ('' when not)."""
    trained, labels = tuple(trained), tuple(labels)
    if reinit_heads:
        return ""
    if len(trained) != len(labels):
        raise UsageError(
            f"{source} was trained on {len(trained)} classes ({', '.join(trained)}), the "
            f"task has {len(labels)} ({', '.join(labels)}); pick a checkpoint trained on the "
            "same labels, start from the model's own weights, or (on the command line) "
            "re-initialise its heads with --reinit-heads to keep only its backbone")
    if trained == labels:
        return ""
    pairs = ", ".join(f"{a} -> {b}" for a, b in zip(trained, labels) if a != b)
    return (f"{source} was trained on {', '.join(trained)}; its classes are taken in that "
            f"order for the task's ({pairs}): fine-tuning re-learns what they mean")


def resolve_init_checkpoint(path: str, spec: ModelSpec, data: Dataset, *,
                            reinit_heads: bool = False) -> InitCheckpoint:
    """A starting checkpoint from an earlier run (its folder, or one of its checkpoints),
    with the class check the original workflow warned about."""
    run_dir, prefix = _run_checkpoint(path)
    labels = _trained_labels(run_dir, prefix, spec)
    labels_note(prefix, labels, data.labels.names, reinit_heads=reinit_heads)
    modules = "backbone,decoder" if reinit_heads else "all"
    return InitCheckpoint(path=prefix, kind="run", modules=modules, labels=labels,
                          source=str(run_dir))


def _run_checkpoint(path: str) -> tuple[Path, str]:
    """The run folder ``path`` names and the prefix of the checkpoint it means: the one
    the run exported for the folder or its checkpoints/, the best for checkpoints/best."""
    p = Path(path).expanduser()
    run_dir = run_of_checkpoint(p)
    if run_dir is None:
        raise UsageError(
            f"{path} is not a cvatkit run or one of its checkpoints, nor a model-store "
            "version (s3://BUCKET/NS/models/KEY/VERSION); give the folder of an earlier run "
            "(or its checkpoints/ckpt-N, or checkpoints/best)")
    if p in (run_dir, run_dir / CHECKPOINTS, run_dir / CHECKPOINTS / BEST) and \
            Run(run_dir).is_alive():
        raise UsageError(
            f"the run {run_dir} is still training: what it would start from changes as it "
            "goes; wait for it to end, or give one of its checkpoints by its path "
            f"({run_dir / CHECKPOINTS}/ckpt-N)")
    if p == run_dir or p == run_dir / CHECKPOINTS:
        prefix = Run(run_dir).exported_checkpoint()  # what it exported: best, or its last
        if prefix is None:
            raise UsageError(f"the run {run_dir} has no checkpoint yet")
    elif p == run_dir / CHECKPOINTS / BEST:
        best = Run(run_dir).best_checkpoint()
        if best is None:
            raise UsageError(f"the run {run_dir} has no best checkpoint yet (none of its "
                             "evaluations gave an AP); start from the run folder for its "
                             "last checkpoint")
        prefix = best.checkpoint
    else:
        prefix = str(p)
        if not Path(prefix + ".index").is_file():
            raise UsageError(f"{path}: no such checkpoint (expected {prefix}.index)")
    return run_dir, prefix


def _trained_labels(run_dir: Path, prefix: str, spec: ModelSpec) -> tuple[str, ...]:
    """The labels the run was trained on; refused when its model cannot start ``spec``."""
    prev = read_record(run_dir)
    built = (prev.model.family, prev.model.backbone)
    if built != (spec.family, spec.backbone):
        raise UsageError(
            f"the checkpoint {prefix} is a {built[0]} on {built[1]} "
            f"({prev.model.key!r}); it cannot start {spec.key!r}, a {spec.family} on "
            f"{spec.backbone}: pick a model with the same architecture")
    return tuple(prev.labels)
