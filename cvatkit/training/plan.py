"""Planning a training run: everything that can be checked before any TensorFlow is
loaded (the dataset, the model key, the hyperparameters, the GPUs, the starting
checkpoint), resolved into a ``RunPlan`` that ``start_run`` carries out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset import Dataset, load_dataset
from ..errors import DatasetError, UsageError
from ..runs import CHECKPOINTS, Run, run_of_checkpoint
from .catalog import ModelSpec, get_model, load_catalog
from .devices import count_gpus
from .hparams import parse_hparams
from .resolution import Hyperparameters, resolve
from .weights import DownloadProgress


@dataclass(frozen=True)
class InitCheckpoint:
    """Where a run's first weights come from."""

    path: str
    """A checkpoint prefix (or a Keras .h5 file)."""
    kind: str
    """'run' (an earlier cvatkit run), 'pretrained' (the catalog's weights)."""
    modules: str = "all"
    """What to load: 'all', 'backbone', 'backbone,decoder'."""
    labels: tuple[str, ...] = ()
    source: str = ""


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


def plan_run(data_dir: str | os.PathLike[str], model: str, hparams_text: str = "", *,
             hparams_origin: str = "hyperparameters", init_checkpoint: str | None = None,
             reinit_heads: bool = False, pretrained: bool = False,
             eval_data: str | os.PathLike[str] | None = None,
             catalog: dict[str, ModelSpec] | None = None, gpus: int | None = None,
             progress: DownloadProgress | None = None) -> RunPlan:
    """Check a run request and resolve it into a plan (nothing is written)."""
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
    hp, notes = resolve(spec, values, data, gpus=count_gpus() if gpus is None else gpus)
    init = None
    if not init_checkpoint and not pretrained and spec.init_version:
        init_checkpoint = spec.init_version
    if init_checkpoint and pretrained:
        raise UsageError("give either a starting checkpoint or --pretrained, not both")
    if init_checkpoint:
        from ..store import is_version_uri, pull

        if is_version_uri(init_checkpoint):
            init_checkpoint = str(pull(init_checkpoint))
        init = resolve_init_checkpoint(init_checkpoint, spec, data, reinit_heads=reinit_heads)
    elif pretrained:
        if spec.weights is None or not spec.weights.urls:
            raise UsageError(f"{spec.key} has no published initial weights; it trains from "
                             "random initialisation")
        from .weights import fetch_weights

        path = fetch_weights(spec.weights, progress=progress)
        init = InitCheckpoint(path=str(path), kind="pretrained", modules=spec.weights.modules,
                              source=spec.weights.description)
    return RunPlan(spec=spec, hparams=hp, hparams_text=hparams_text, data=data,
                   eval_data=evald, init=init, notes=tuple(notes))


def resolve_init_checkpoint(path: str, spec: ModelSpec, data: Dataset, *,
                            reinit_heads: bool = False) -> InitCheckpoint:
    """A starting checkpoint from an earlier run (its folder, or one of its checkpoints),
    with the class check the original workflow warned about."""
    p = Path(path)
    run_dir = run_of_checkpoint(p)
    if run_dir is None:
        raise UsageError(
            f"{path} is not a cvatkit run or one of its checkpoints; give the folder of an "
            "earlier run (or its checkpoints/ckpt-N)")
    prev = Run(run_dir).spec()
    if p == run_dir or p == run_dir / CHECKPOINTS:
        prefix = Run(run_dir).latest_checkpoint()
        if prefix is None:
            raise UsageError(f"the run {run_dir} has no checkpoint yet")
    else:
        prefix = str(p)
        if not Path(prefix + ".index").is_file():
            raise UsageError(f"{path}: no such checkpoint (expected {prefix}.index)")
    labels = tuple(prev.get("labels", ()))
    prev_model = prev.get("model", {})
    built = (prev_model.get("family"), prev_model.get("backbone"))
    if built != (spec.family, spec.backbone):
        raise UsageError(
            f"the checkpoint {prefix} is a {built[0]} on {built[1]} "
            f"({prev_model.get('key')!r}); it cannot start {spec.key!r}, a {spec.family} on "
            f"{spec.backbone}: pick a model with the same architecture")
    if len(labels) != len(data.labels) and not reinit_heads:
        raise UsageError(
            f"checkpoint {prefix} was trained on {len(labels)} classes "
            f"({', '.join(labels)}), the dataset has {len(data.labels)} "
            f"({', '.join(data.labels.names)}); pick a checkpoint with the same labels, or "
            "re-initialise the heads (--reinit-heads) to keep only its backbone")
    modules = "backbone,decoder" if reinit_heads else "all"
    return InitCheckpoint(path=prefix, kind="run", modules=modules, labels=labels,
                          source=str(run_dir))
