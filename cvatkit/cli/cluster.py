"""``cvatkit cluster render tfjob|workflow``: cvatkit's training as Kubernetes manifests."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..errors import UsageError
from ..work_folder import DEFAULT_WORKDIR
from .common import STORE_NAMESPACE_HELP, hparams_text, model_and_hparams_args


def add_commands(sub) -> None:
    cluster = sub.add_parser(
        "cluster", help="render Kubernetes manifests to train on a cluster",
        description="Write the manifests that run cvatkit on a Kubernetes cluster: a Kubeflow "
        "TFJob that trains a run planned here, or an Argo Workflow for the whole job. The "
        "work lies on a shared PersistentVolumeClaim, mounted in the pods where it is "
        "mounted here, so a notebook on the same claim follows the run; credentials come "
        "from Kubernetes Secrets, never from the manifest. Nothing is applied: write the "
        "file with --out and `kubectl create -f` it (or `argo submit` it).")
    cluster.set_defaults(func=lambda _args: _help(cluster))
    groups = cluster.add_subparsers(title="commands", metavar="COMMAND")
    render = groups.add_parser("render", help="write a TFJob or an Argo Workflow",
                               description="Write a manifest as YAML.")
    render.set_defaults(func=lambda _args: _help(render))
    kinds = render.add_subparsers(title="manifests", metavar="KIND")

    s = kinds.add_parser(
        "tfjob", help="plan a run here and write the Kubeflow TFJob that trains it",
        description="Plan a run as `cvatkit train` does (the dataset, model, hyperparameters "
        "and starting weights are checked here), write its run folder, queued, and write a "
        "TFJob (kubeflow.org/v1) whose WORKERS pods each run `cvatkit worker RUN_DIR` under "
        "MultiWorkerMirroredStrategy; worker 0 writes the run folder. RUN_DIR, DATA_DIR and "
        "the evaluation data must be on the claim, under --mount-path; so must published "
        "weights it starts from: set CVATKIT_CACHE to a folder on the claim.")
    s.add_argument("--data", metavar="DATA_DIR", required=True)
    s.add_argument("--run-dir", metavar="RUN_DIR", required=True)
    model_and_hparams_args(s, "a file of key=value lines")
    s.add_argument("--weights", metavar="FROM",
                   help="coco, imagenet, none, an earlier run or a store version, as for "
                        "`cvatkit train` (default: the model's own)")
    s.add_argument("--eval-data", metavar="DIR",
                   help="evaluate on this prepared dataset's frames")
    s.add_argument("--catalog", metavar="FILE", help="a catalog file with your own models")
    s.add_argument("--workers", metavar="N", type=int, default=1,
                   help="worker pods (default 1)")
    s.add_argument("--gpus-per-worker", metavar="G", type=int, default=1,
                   help="GPUs of each worker pod (default 1; 0: CPU only)")
    s.add_argument("--name", metavar="NAME",
                   help="the TFJob's name (default: made of the run folder's name)")
    _pod_args(s)
    s.set_defaults(func=_cmd_tfjob)

    s = kinds.add_parser(
        "workflow", help="write an Argo Workflow: prepare, train, evaluate, publish",
        description="Write an Argo Workflow (built with hera) whose steps prepare the CVAT "
        "task, train on it, evaluate the model, publish it to the store and, with "
        "--annotate-task, pre-annotate a task. Its parameters are train.ipynb's: change "
        "them when submitting (`argo submit FILE -p model=... -p hparams=...`). Datasets, "
        "runs and evaluations land in --workdir on the claim, each named after the workflow.")
    s.add_argument("--task", metavar="ID", type=int, required=True,
                   help="the CVAT task to train on")
    model_and_hparams_args(s, "a file of key=value lines (its text becomes the parameter)")
    s.add_argument("--weights", metavar="FROM", default="",
                   help="coco, imagenet, none or a store version (default: the model's own)")
    s.add_argument("--store", metavar="URI", required=True,
                   help="where the model is published: s3://bucket/prefix")
    s.add_argument("--store-namespace", metavar="NS", default="default",
                   help=STORE_NAMESPACE_HELP + " (default 'default')")
    s.add_argument("--create-bucket", action="store_true",
                   help="create the S3 bucket if it does not exist")
    s.add_argument("--workdir", metavar="DIR",
                   help="the working folder on the claim (default MOUNT_PATH/cvatkit-work)")
    s.add_argument("--run-name", metavar="NAME",
                   help="the workflow's and its run's name (default: a new one each time)")
    s.add_argument("--val-split", metavar="F", type=float, default=0.1,
                   help="share of the task's frames kept for validation (default 0.1)")
    s.add_argument("--jobs", metavar="WHICH", default="auto",
                   help="the task's jobs whose frames the prepare step takes (cvatkit "
                   "prepare --jobs; default auto: the finished ones, or all when none is)")
    s.add_argument("--eval-task", metavar="ID", type=int,
                   help="the CVAT task to evaluate on (default: the training task)")
    s.add_argument("--annotate-task", metavar="ID", type=int,
                   help="pre-annotate this CVAT task with the model at the end")
    s.add_argument("--gpus", metavar="G", type=int, default=1,
                   help="GPUs of the train step (default 1; 0: CPU only)")
    s.add_argument("--service-account", metavar="NAME",
                   help="the service account the workflow's pods run as (Argo needs one "
                        "allowed to report their results)")
    _pod_args(s)
    s.set_defaults(func=_cmd_workflow)


def _pod_args(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("cluster")
    g.add_argument("--image", metavar="IMAGE", required=True,
                   help="the cvatkit image, built from the repository's Dockerfile")
    g.add_argument("--claim", metavar="PVC", required=True,
                   help="the PersistentVolumeClaim (ReadWriteMany) holding the work, shared "
                        "with JupyterHub")
    g.add_argument("--mount-path", metavar="PATH", required=True,
                   help="where the claim is mounted here; the pods mount it at the same "
                        "path, so run.json's paths hold in both")
    g.add_argument("--namespace", metavar="NS",
                   help="the Kubernetes namespace (the model store's is --store-namespace)")
    g.add_argument("--node-selector", metavar="KEY=VALUE", action="append", default=[],
                   help="run on nodes with this label (repeatable)")
    g.add_argument("--toleration", metavar="KEY=VALUE:EFFECT", action="append", default=[],
                   help="tolerate this node taint, as `kubectl taint` writes it (repeatable)")
    g.add_argument("--s3-secret", metavar="NAME",
                   help="the Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                        "(optionally AWS_ENDPOINT_URL, AWS_DEFAULT_REGION)")
    g.add_argument("--cvat-secret", metavar="NAME",
                   help="the Secret holding CVAT_HOST and CVAT_ACCESS_TOKEN (or CVAT_USER "
                        "and CVAT_PASSWORD)")
    g.add_argument("--env", metavar="NAME=VALUE", action="append", default=[],
                   help="a plain setting for the pods, e.g. CVATKIT_CACHE=PATH on the claim "
                        "(repeatable; never credentials: see --secret-env)")
    g.add_argument("--secret-env", metavar="NAME=SECRET:KEY", action="append", default=[],
                   help="a variable of the pods set from a key of a Kubernetes Secret, "
                        "e.g. WANDB_API_KEY=cvatkit-extra:WANDB_API_KEY (repeatable)")
    g.add_argument("--run-as", metavar="UID[:GID]",
                   help="the user the pods run as (default: this process's unless it is "
                        "root, so the files on the claim stay the notebook user's)")
    g.add_argument("--out", metavar="FILE", help="write the manifest here (default: stdout)")


def _options(args: argparse.Namespace):
    from ..cluster import (ClusterOptions, parse_env, parse_node_selector, parse_run_as,
                           parse_secret_env, parse_toleration)

    if args.run_as:
        run_as = parse_run_as(args.run_as)
    else:  # this process's user; root is the image's own already
        run_as = (os.getuid(), os.getgid()) if os.getuid() else None
    return ClusterOptions(
        image=args.image, claim=args.claim, mount_path=args.mount_path,
        namespace=args.namespace, node_selector=parse_node_selector(args.node_selector),
        tolerations=tuple(parse_toleration(t) for t in args.toleration),
        s3_secret=args.s3_secret, cvat_secret=args.cvat_secret, env=parse_env(args.env),
        secret_env=parse_secret_env(args.secret_env), run_as=run_as)


def _cmd_tfjob(args: argparse.Namespace) -> int:
    from ..cluster import check_job_name, dump_manifest, render_tfjob
    from ..training import DEFAULT_MODEL, check_run_dir, load_catalog, plan_run, start_run

    options = _options(args)
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give 1 or more worker pods")
    if args.gpus_per_worker < 0:
        raise UsageError(f"--gpus-per-worker {args.gpus_per_worker}: give 0 (CPU only) or more")
    run_dir = options.require_on_claim(args.run_dir, "--run-dir")
    data = options.require_on_claim(args.data, "--data")
    evald = options.require_on_claim(args.eval_data, "--eval-data") if args.eval_data else None
    if args.weights and os.path.exists(args.weights):  # an earlier run or its checkpoint
        options.require_on_claim(args.weights, "--weights")
    if args.name is not None:
        check_job_name(args.name)
    check_run_dir(run_dir)  # before any download
    text, origin = hparams_text(args)
    plan = plan_run(data, args.model or DEFAULT_MODEL, text, hparams_origin=origin,
                    weights=args.weights, eval_data=evald, catalog=load_catalog(args.catalog),
                    gpus=args.gpus_per_worker, workers=args.workers)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    made = not Path(run_dir).exists()
    run = start_run(plan, run_dir, workers=args.workers, launch=False)
    try:
        manifest = render_tfjob(run.path, options, workers=args.workers,
                                gpus_per_worker=args.gpus_per_worker, name=args.name)
        dump_manifest(manifest, args.out)
    except BaseException:
        _unwrite(run.path, made)  # no queued run is left without its manifest
        raise
    name = manifest["metadata"]["name"]
    print(f"run {run.path} queued for {args.workers} worker(s) x {args.gpus_per_worker} "
          f"GPU(s); start it with `kubectl create -f {args.out or 'FILE'}`, follow it with "
          f"`cvatkit status {run.path}` or the app, stop it with `cvatkit stop {run.path}` "
          f"(TFJob {name})", file=sys.stderr)
    return 0


def _cmd_workflow(args: argparse.Namespace) -> int:
    from ..cluster import WorkflowJob, dump_manifest, render_workflow
    from ..training import DEFAULT_MODEL, check_request

    options = _options(args)
    text, origin = hparams_text(args)
    # what the pods would refuse is named now: the model, the hyperparameters against it
    # and the GPUs, the weights it starts from
    model = check_request(args.model or DEFAULT_MODEL, text, hparams_origin=origin,
                          weights=args.weights or None, gpus=args.gpus,
                          val_split=args.val_split).key
    job = WorkflowJob(
        task_id=args.task, model=model, store=args.store,
        workdir=args.workdir or f"{options.mount}/{DEFAULT_WORKDIR}",
        store_namespace=args.store_namespace, weights=args.weights, hparams=text,
        val_split=args.val_split, jobs=args.jobs, eval_task_id=args.eval_task,
        annotate_task_id=args.annotate_task, create_bucket=args.create_bucket,
        gpus=args.gpus, run_name=args.run_name, service_account=args.service_account)
    dump_manifest(render_workflow(job, options), args.out)
    if args.out:
        print(f"wrote {args.out}; submit it with `argo submit {args.out}`; its run lands in "
              f"{job.workdir}/runs/WORKFLOW_NAME", file=sys.stderr)
    return 0


def _unwrite(run_dir: Path, made: bool) -> None:
    if made:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:  # it was empty (check_run_dir): empty it again
        for child in run_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
