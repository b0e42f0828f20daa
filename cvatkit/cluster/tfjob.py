"""A planned run folder as a Kubeflow ``TFJob``: N worker pods, each ``cvatkit worker
RUN_DIR``, MultiWorkerMirroredStrategy from the ``TF_CONFIG`` the training operator sets;
worker 0 is the chief and alone writes the run folder, which lies on the shared claim at
the same path as where it was planned, so a notebook on that claim follows the run."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Any

from ..errors import RunError, UsageError
from ..runs import Run
from ..training import RunRecord, read_record
from . import pod
from .options import ClusterOptions

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
CONTAINER = "tensorflow"
"""The container name the training operator looks for in a TFJob's replicas."""
MAX_NAME = 48
"""A TFJob's pods are named NAME-worker-N, and Kubernetes labels them with NAME: both are
at most 63 characters."""


def render_tfjob(run_dir: str | os.PathLike[str], options: ClusterOptions, *, workers: int,
                 gpus_per_worker: int, name: str | None = None) -> dict[str, Any]:
    """The TFJob that trains the planned run in ``run_dir`` (``start_run(..., launch=False)``
    wrote it) on ``workers`` pods of ``gpus_per_worker`` GPUs each.

    Refused when the run folder or what it reads (its data, evaluation data, starting
    checkpoint) is not on the claim, when the run has completed, or when its plan asks
    for more GPUs or workers than the job gives it."""
    if workers < 1:
        raise UsageError(f"--workers {workers}: give 1 or more worker pods")
    if gpus_per_worker < 0:
        raise UsageError(f"--gpus-per-worker {gpus_per_worker}: give 0 (CPU only) or more")
    run = Run(run_dir)
    record = read_record(run)
    if run.status().state == "completed":
        raise RunError(f"the run {run.path} has completed; plan a new run to train on the "
                       "cluster")
    path = options.require_on_claim(run.path, "the run folder")
    for what, where, hint in _paths_read(record):
        if not PurePosixPath(where).is_absolute():
            raise RunError(f"{run.path}/run.json names {what} as the relative path {where}, "
                           "which means nothing in a pod; plan the run again with absolute "
                           "paths")
        try:
            options.require_on_claim(where, f"{what} of {run.path}:")
        except UsageError as e:
            raise UsageError(f"{e}{hint}") from None
    _check_strategy(record, run.path, workers, gpus_per_worker)
    job = job_name(run.path) if name is None else check_job_name(name)
    container = {
        "name": CONTAINER,
        "image": options.image,
        "command": ["cvatkit", "worker", path],
        "env": pod.environment(options),
        "volumeMounts": [pod.volume_mount(options)],
    }
    if gpus_per_worker:
        container["resources"] = pod.resources(gpus_per_worker)
    metadata: dict[str, Any] = {"name": job, "labels": {"app.kubernetes.io/name": "cvatkit",
                                                       "app.kubernetes.io/component": "train"}}
    if options.namespace:
        metadata["namespace"] = options.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            # ended pods stay for `kubectl logs`; a failed pod is restarted up to 3 times
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": workers,
                    "restartPolicy": "OnFailure",
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "cvatkit"}},
                        "spec": {
                            "containers": [container],
                            "volumes": [pod.volume(options)],
                            **pod.placement(options),
                        },
                    },
                },
            },
        },
    }


def job_name(run_dir: str | os.PathLike[str]) -> str:
    """A Kubernetes name made of the run folder's name ('Run 7' -> 'run-7')."""
    base = re.sub(r"[^a-z0-9]+", "-", os.path.basename(os.path.abspath(run_dir)).lower())
    base = base.strip("-")[:MAX_NAME].strip("-")
    if not base or not base[0].isalpha():
        base = f"cvatkit-{base}".strip("-")[:MAX_NAME].strip("-")
    return base


def check_job_name(name: str) -> str:
    """``name`` as a TFJob name, or a UsageError naming --name."""
    if len(name) > MAX_NAME or not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z", name):
        raise UsageError(f"--name {name!r}: a TFJob name is lower-case letters, digits and "
                         f"'-', starts with a letter, at most {MAX_NAME} characters")
    return name


def _paths_read(record: RunRecord) -> list[tuple[str, str, str]]:
    """What the trainer reads besides its run folder: (what, path, a hint where it is not
    on the claim)."""
    out = [("the data", str(record.data.path), "")]
    if record.eval_data is not None:
        out.append(("the evaluation data", str(record.eval_data.path), ""))
    init = record.init
    if init is not None and init.path:
        cached = init.kind in ("coco", "imagenet") or record.weights.startswith("s3://")
        out.append(("the starting checkpoint", init.path, (
            "; published weights and store versions are downloaded to $CVATKIT_CACHE: set "
            "it to a folder on the claim and render again") if cached else ""))
    return out


def _check_strategy(record: RunRecord, run_dir, workers: int, gpus: int) -> None:
    planned = record.strategy.planned_workers
    if planned != workers:
        raise UsageError(f"the run {run_dir} was planned for {planned} workers, not "
                         f"--workers {workers}; plan it again with --workers {workers}")
    clones = record.hparams.num_clones
    if clones > max(gpus, 1):
        raise UsageError(f"the run {run_dir} trains on num-clones={clones} GPUs per worker "
                         f"but --gpus-per-worker is {gpus}; give --gpus-per-worker {clones} "
                         "or plan the run with fewer num-clones")
