"""Planning, starting and stopping training runs (the side that is not the trainer).

``plan_run`` checks everything that can be checked before any TensorFlow is loaded: the
dataset, the model key, the hyperparameters, the GPUs, the starting checkpoint. Then
``start_run`` writes the run directory and starts the trainer as its own process
(``python -m cvatkit train-worker RUN_DIR``), so a closed notebook or a restarted kernel
never stops training; ``stop_run`` asks it to save a checkpoint and end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .catalog import ModelSpec, get_model, load_catalog
from .errors import CvatkitError, UsageError
from .hparams import Hyperparameters, parse_hparams, resolve
from .labelfiles import read_label_map
from .mg_config import DataInfo
from .runs import CHECKPOINTS, RUN_JSON, TERMINAL, Run, RunError

CPU_REPLICAS_ENV = "CVATKIT_CPU_REPLICAS"
"""Split the CPU into this many logical devices and count them as GPUs: checks
multi-GPU runs (num-clones > 1) on a machine without GPUs."""


class DatasetError(CvatkitError):
    """A data folder is not a prepared dataset, or does not fit the run."""


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
    data: DataInfo
    eval_data: DataInfo | None = None
    init: InitCheckpoint | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def load_data_info(path: str | os.PathLike[str]) -> DataInfo:
    """The facts of a prepared dataset folder (``cvatkit prepare`` writes them)."""
    folder = Path(path)
    meta_file = folder / "dataset.json"
    if not meta_file.is_file():
        raise DatasetError(
            f"{folder} is not a prepared dataset (no dataset.json); make one with "
            f"`cvatkit prepare SOURCE {folder}`")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DatasetError(f"{meta_file} is damaged ({e}); prepare the dataset again") from None
    labels = read_label_map(folder)
    missing = [n for n in meta.get("train_files", []) + meta.get("val_files", [])
               if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"{folder} lacks {', '.join(missing[:3])}; prepare it again")
    if list(labels.names) != list(meta.get("labels", [])):
        raise DatasetError(f"{folder}: the label files and dataset.json disagree; prepare "
                           "the dataset again")
    return DataInfo(path=folder.resolve(), labels=labels.names,
                    train_frames=int(meta.get("train_frames", 0)),
                    val_frames=int(meta.get("val_frames", 0)),
                    include_masks=bool(meta.get("include_masks", False)),
                    val_fraction=float(meta.get("val_fraction", 0.0)))


def count_gpus() -> int:
    """GPUs this process may use, without loading TensorFlow."""
    replicas = os.environ.get(CPU_REPLICAS_ENV)
    if replicas:
        return int(replicas)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
        return len(ids)
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def plan_run(data_dir: str | os.PathLike[str], model: str, hparams_text: str = "", *,
             hparams_origin: str = "hyperparameters", init_checkpoint: str | None = None,
             reinit_heads: bool = False, pretrained: bool = False,
             eval_data: str | os.PathLike[str] | None = None,
             catalog: dict[str, ModelSpec] | None = None, gpus: int | None = None,
             progress=None) -> RunPlan:
    """Check a run request and resolve it into a plan (nothing is written)."""
    data = load_data_info(data_dir)
    if data.train_frames < 1:
        raise DatasetError(f"{data.path} has no training frames (it was prepared with "
                           f"--val-split {data.val_fraction:g}); prepare it with a smaller "
                           "--val-split")
    spec = get_model(model, catalog if catalog is not None else load_catalog())
    values = parse_hparams(hparams_text, origin=hparams_origin)
    evald = None
    if eval_data is not None:
        evald = load_data_info(eval_data)
        if evald.labels != data.labels:
            raise DatasetError(
                f"the evaluation data {evald.path} has labels {list(evald.labels)}, the "
                f"training data {list(data.labels)}; prepare both from tasks with the same "
                "labels")
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
        from .model_store import is_version_uri, pull

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


def run_of_checkpoint(path: str | os.PathLike[str]) -> Path | None:
    """The run folder a path names: the folder itself, its checkpoints/ or one of its
    checkpoints; None when it is none of these."""
    p = Path(path)
    return next((c for c in (p, p.parent, p.parent.parent) if (c / RUN_JSON).is_file()),
                None)


def resolve_init_checkpoint(path: str, spec: ModelSpec, data: DataInfo, *,
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
        prefix = _latest_checkpoint(run_dir / CHECKPOINTS)
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
            f"({', '.join(data.labels)}); pick a checkpoint with the same labels, or "
            "re-initialise the heads (--reinit-heads) to keep only its backbone")
    modules = "backbone,decoder" if reinit_heads else "all"
    return InitCheckpoint(path=prefix, kind="run", modules=modules, labels=labels,
                          source=str(run_dir))


def _latest_checkpoint(folder: Path) -> str | None:
    state = folder / "checkpoint"
    if not state.is_file():
        return None
    for line in state.read_text().splitlines():
        if line.startswith("model_checkpoint_path:"):
            name = line.split(":", 1)[1].strip().strip('"')
            return str(folder / name)
    return None


def start_run(plan: RunPlan, run_dir: str | os.PathLike[str], *, detach: bool = True) -> Run:
    """Write the run directory and start its trainer process."""
    run = Run(run_dir)
    _check_run_dir(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_spec(_spec_json(plan))
    run.set_status("starting", total_steps=plan.hparams.num_steps)
    return _spawn(run, resume=False)


def resume_run(run_dir: str | os.PathLike[str]) -> Run:
    """Start the trainer of a stopped (or failed) run again from its last checkpoint."""
    run = Run(run_dir)
    if not run.exists():
        raise RunError(f"{run.path} is not a cvatkit run (no {RUN_JSON}); nothing to resume")
    if run.is_alive():
        raise RunError(f"the run {run.path} is still training (pid {run.status().pid})")
    if run.status().state == "completed":
        raise RunError(f"the run {run.path} has completed; start a new run from it with "
                       f"--init-checkpoint {run.path}")
    run.set_status("starting", step=run.status().step,
                   total_steps=run.spec()["hparams"]["num-steps"])
    return _spawn(run, resume=True)


def stop_run(run_dir: str | os.PathLike[str], *, wait: float = 120.0) -> str:
    """Ask the trainer to save a checkpoint and stop; the state it ended in."""
    run = Run(run_dir)
    if not run.exists():
        raise RunError(f"{run.path} is not a cvatkit run (no {RUN_JSON})")
    st = run.status()
    if st.state in TERMINAL:
        return st.state
    if not st.pid or not run.is_alive():
        raise RunError(f"the run {run.path} is not running (its trainer is gone); resume it "
                       "with --resume or look at trainer.log")
    os.kill(st.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = run.status().state
        if state in TERMINAL:
            return state
        if not run.is_alive():
            return run.status().state
        time.sleep(0.2)
    raise RunError(f"the trainer of {run.path} did not stop within {wait:.0f} s")


def _check_run_dir(path: Path) -> None:
    if (path / RUN_JSON).exists():
        raise RunError(
            f"{path} already holds a run; pick another RUN_DIR, or continue that run with "
            f"`cvatkit train --resume {path}`")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RunError(f"{path} is not empty and holds no run; pick an empty or new RUN_DIR")


def _spawn(run: Run, *, resume: bool) -> Run:
    log = open(run.path / "trainer.log", "ab")
    cmd = [sys.executable, "-m", "cvatkit", "train-worker", str(run.path)]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, env=env)
    log.close()
    run.record_pid(proc.pid)
    return run


def _spec_json(plan: RunPlan) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for dist in ("cvatkit-train", "tensorflow", "tf-models-official", "tf-keras", "cvat-sdk"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": asdict(plan.spec),
        "hparams": plan.hparams.to_dict(),
        "hparams_text": plan.hparams_text,
        "notes": list(plan.notes),
        "labels": list(plan.data.labels),
        "data": {**asdict(plan.data), "path": str(plan.data.path)},
        "eval_data": ({**asdict(plan.eval_data), "path": str(plan.eval_data.path)}
                      if plan.eval_data else None),
        "init": asdict(plan.init) if plan.init else None,
        "strategy": {"num_clones": plan.hparams.num_clones,
                     "multi_worker": "TF_CONFIG" in os.environ},
        "versions": versions,
    }
