"""The whole job as an Argo ``Workflow``, built with hera: prepare a CVAT task, train on it
(in the foreground), evaluate, publish to the model store and, when asked, pre-annotate a
task. Its parameters are those of ``notebooks/train.ipynb``; every step works in a folder
on the shared claim, mounted where a notebook on that claim mounts it, so the notebook's
run monitor attaches to the run while it trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CvatkitError, UsageError
from ..work_folder import DATASETS, RUNS
from . import pod
from .options import _DNS_LABEL, _DNS_SUBDOMAIN, ClusterOptions, _check_name

GENERATE_NAME = "cvatkit-train-"
RUN = "{{workflow.name}}"
"""Each workflow's run (and its dataset and evaluation) is named after the workflow."""
ENTRY = "train-and-publish"


@dataclass(frozen=True, kw_only=True)
class WorkflowJob:
    """What the workflow does: the notebook's parameters (their values are the defaults of
    the workflow's parameters: ``argo submit -p model=...`` changes them)."""

    task_id: int
    """The CVAT task to train on (``cvat://TASK_ID``)."""
    model: str
    store: str
    """Where ``cvatkit publish`` puts the model: s3://bucket/prefix, or a folder on the claim."""
    workdir: str
    """The working folder on the claim: datasets/, runs/ and evaluations/ go there."""
    store_namespace: str = "default"
    weights: str = ""
    """What the run starts from; empty: the model's own."""
    hparams: str = ""
    """Hyperparameters as key=value lines."""
    val_split: float = 0.1
    jobs: str = "auto"
    """The task's jobs whose frames are trained on (``cvatkit prepare --jobs``)."""
    eval_task_id: int | None = None
    """The task to evaluate on; None: the training task."""
    annotate_task_id: int | None = None
    """A task to pre-annotate with the model at the end; None: no such step."""
    create_bucket: bool = False
    gpus: int = 1
    """GPUs of the train step's pod."""
    run_name: str | None = None
    """The workflow's (and so the run's) name; None: made by Kubernetes, unique."""
    service_account: str | None = None


def render_workflow(job: WorkflowJob, options: ClusterOptions) -> dict[str, Any]:
    """The Workflow as a dict (hera's ``Workflow.to_dict``), ready to write as YAML."""
    try:
        from hera.workflows import Container, Parameter, Steps, Workflow
        from hera.workflows import models as m
    except ImportError:
        raise CvatkitError("rendering an Argo Workflow needs hera: pip install -c "
                           "constraints.txt 'cvatkit-train[cluster]'") from None

    store = _check(job, options)
    work = options.require_on_claim(job.workdir, "--workdir")
    p = {name: f"{{{{workflow.parameters.{name}}}}}" for name in
         ("task-id", "model", "weights", "hparams", "val-split", "jobs", "eval-task-id",
          "store", "store-namespace", "annotate-task-id")}
    data, run = f"{work}/{DATASETS}/{RUN}", f"{work}/{RUNS}/{RUN}"
    evaluation = f"{work}/evaluations/{RUN}"
    parameters = [
        Parameter(name="task-id", value=str(job.task_id),
                  description="the CVAT task to train on"),
        Parameter(name="model", value=job.model, description="`cvatkit models` lists them"),
        Parameter(name="weights", value=job.weights,
                  description="coco, imagenet, none, a run folder or a store version; "
                              "empty: the model's own"),
        Parameter(name="hparams", value=job.hparams,
                  description="hyperparameters, key=value lines"),
        Parameter(name="val-split", value=f"{job.val_split:g}",
                  description="the share of frames kept for validation"),
        Parameter(name="jobs", value=job.jobs,
                  description="the task's jobs to train on: auto, finished, all, or "
                              "stages and states"),
        Parameter(name="eval-task-id", value=str(job.eval_task_id or job.task_id),
                  description="the CVAT task the model is evaluated on"),
        Parameter(name="store", value=store,
                  description="s3://bucket/prefix, or a folder on the claim"),
        Parameter(name="store-namespace", value=job.store_namespace),
    ]
    if job.annotate_task_id is not None:
        parameters.append(Parameter(name="annotate-task-id", value=str(job.annotate_task_id),
                                    description="the CVAT task to pre-annotate"))

    def step(name: str, args: list[str], *, s3: bool = False, cvat: bool = False,
             gpus: int = 0) -> Container:
        env = pod.environment(options, s3=s3, cvat=cvat)
        return Container(
            name=name, image=options.image, command=["cvatkit"], args=args,
            env=[m.EnvVar.model_validate(e) for e in env],
            volume_mounts=[m.VolumeMount.model_validate(pod.volume_mount(options))],
            resources=m.ResourceRequirements.model_validate(pod.resources(gpus))
            if gpus else None)

    placement = pod.placement(options)
    metadata = {"name": job.run_name} if job.run_name else {"generate_name": GENERATE_NAME}
    with Workflow(
            **metadata, namespace=options.namespace, entrypoint=ENTRY,
            labels={"app.kubernetes.io/name": "cvatkit"}, arguments=parameters,
            volumes=[m.Volume.model_validate(pod.volume(options))],
            node_selector=placement.get("nodeSelector"),
            tolerations=[m.Toleration.model_validate(t)
                         for t in placement.get("tolerations", [])] or None,
            security_context=m.PodSecurityContext.model_validate(placement["securityContext"])
            if "securityContext" in placement else None,
            service_account_name=job.service_account) as workflow:
        prepare = step("prepare", [
            "prepare", f"cvat://{p['task-id']}", data, "--model", p["model"],
            "--val-split", p["val-split"], "--jobs", p["jobs"]], cvat=True)
        train = step("train", [
            "train", "--data", data, "--run-dir", run, "--model", p["model"],
            "--weights", p["weights"], "--hparams", p["hparams"]], s3=True, gpus=job.gpus)
        evaluate = step("evaluate", [
            "evaluate", run, f"cvat://{p['eval-task-id']}", "--json",
            f"{evaluation}/evaluation.json", "--plots", evaluation], cvat=True)
        publish = step("publish", [
            "publish", run, "--store", p["store"], "--store-namespace",
            p["store-namespace"],
            *(["--create-bucket"] if job.create_bucket else [])], s3=True)
        annotate = step("annotate", [
            "annotate", run, "--task", p["annotate-task-id"]], cvat=True) \
            if job.annotate_task_id is not None else None
        with Steps(name=ENTRY):
            prepare()
            train()
            evaluate()
            publish()
            if annotate is not None:
                annotate()
    return workflow.to_dict()


def _check(job: WorkflowJob, options: ClusterOptions) -> str:
    """Refuse what cannot work in the pods; the store as the pods see it."""
    if not options.cvat_secret:
        raise UsageError("give --cvat-secret NAME: the Kubernetes Secret with CVAT_HOST and "
                         "CVAT_ACCESS_TOKEN (or CVAT_USER and CVAT_PASSWORD) that the "
                         "prepare, evaluate and annotate steps read the task with")
    from ..cvat import parse_jobs

    parse_jobs(job.jobs)
    for option, value in (("--task", job.task_id), ("--eval-task", job.eval_task_id),
                          ("--annotate-task", job.annotate_task_id)):
        if value is not None and value < 1:
            raise UsageError(f"{option} {value}: a CVAT task id is a number from 1")
    if not job.store:
        raise UsageError("give --store s3://bucket/prefix: where the publish step puts the "
                         "model")
    from ..store import check_namespace, check_store_uri, is_version_uri
    from ..training import WEIGHT_KINDS

    check_store_uri(job.store)
    check_namespace(job.store_namespace)
    if job.service_account is not None:
        _check_name("--service-account", job.service_account, _DNS_SUBDOMAIN)
    if job.weights.startswith("s3://"):
        if not options.s3_secret:
            raise UsageError(f"--weights {job.weights} needs --s3-secret NAME: the train step "
                             "pulls the version from the store with that Secret's keys")
    elif job.weights.startswith("/"):  # an earlier run on the claim
        options.require_on_claim(job.weights, "--weights")
    elif "/" in job.weights:
        raise UsageError(f"--weights {job.weights}: give an earlier run by its absolute path "
                         "on the claim; a relative one means nothing in a pod")
    elif job.weights and job.weights.lower() not in WEIGHT_KINDS and \
            not is_version_uri(job.weights):
        raise UsageError(f"--weights {job.weights!r}: give {', '.join(WEIGHT_KINDS)}, an "
                         "earlier run by its absolute path on the claim, or a store version")
    store = job.store
    if store.startswith("s3://"):
        if not options.s3_secret:
            raise UsageError(
                f"--store {store} needs --s3-secret NAME: the Kubernetes Secret with "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an "
                "S3-compatible server)")
    elif "://" in store:
        raise UsageError(f"--store {store}: give s3://bucket/prefix, or a folder on the claim")
    else:
        store = options.require_on_claim(store, "--store")
    if not 0 <= job.val_split < 1:
        raise UsageError(f"--val-split {job.val_split:g}: give a share from 0 to below 1")
    if job.gpus < 0:
        raise UsageError(f"--gpus {job.gpus}: give 0 (CPU only) or more")
    if job.run_name is not None and (len(job.run_name) > 63 or not _DNS_LABEL.match(
            job.run_name)):
        raise UsageError(f"--run-name {job.run_name!r}: the workflow and its run are named "
                         "with it, so it is a Kubernetes name: lower-case letters, digits "
                         "and '-', at most 63 characters")
    return store
