"""``cvatkit models``, ``train``, ``stop``, ``export``, ``export-pretrained`` and
``status``: the catalog and training runs."""

from __future__ import annotations

import argparse
import sys
import textwrap

from ..progress import ProgressBar
from ..run_progress import RunProgress
from .common import hparams_text, model_and_hparams_args, say_error


def add_commands(sub) -> None:
    s = sub.add_parser(
        "models", help="list the model catalog",
        description="List the models you can train: the built-in catalog plus your own "
        "entries ($CVATKIT_CATALOG or ~/.config/cvatkit/models.yaml).")
    s.add_argument("--catalog", metavar="FILE", help="a catalog file with your own models")
    s.set_defaults(func=_cmd_models)

    s = sub.add_parser(
        "train", help="train a model on a prepared dataset",
        description="Train MODEL on DATA_DIR (made by `cvatkit prepare`) in its own "
        "process, writing RUN_DIR: run.json, status.json, events.jsonl, checkpoints/, "
        "tensorboard/ and, at the end, export/ (a SavedModel and its label files). "
        "Hyperparameters are key=value lines, e.g. num-steps=100 (see --help-hparams).")
    s.add_argument("--data", metavar="DATA_DIR")
    model_and_hparams_args(s)
    s.add_argument("--weights", metavar="FROM",
                   help="what the run starts from: coco (the model's COCO-trained "
                        "detector), imagenet (its ImageNet backbone), none (random "
                        "initialisation), an earlier run (its folder or one of its "
                        "checkpoints) or a model version in the store "
                        "(s3://.../models/KEY/VERSION); default: the model's own, as "
                        "`cvatkit models` says. Published weights are downloaded once and "
                        "cached")
    s.add_argument("--init-checkpoint", metavar="PATH",
                   help="the same as --weights PATH (a run, checkpoint or store version)")
    s.add_argument("--reinit-heads", action="store_true",
                   help="with a run or store version to start from: keep its backbone, "
                        "start the heads afresh (needed when the class count differs)")
    s.add_argument("--pretrained", action="store_true",
                   help="the same as --weights with the model's best published weights "
                        "(coco, else imagenet)")
    s.add_argument("--eval-data", metavar="DIR",
                   help="evaluate on this prepared dataset's frames instead of DATA_DIR's "
                        "validation split")
    s.add_argument("--run-dir", metavar="RUN_DIR")
    s.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped run from its last checkpoint")
    s.add_argument("--detach", action="store_true",
                   help="return at once; the trainer goes on in the background")
    s.add_argument("--plan", action="store_true",
                   help="show the run's hyperparameters, what the dataset made of the "
                   "defaults (anchors fitted to its boxes) and the notes; train nothing, "
                   "download nothing")
    s.add_argument("--workers", metavar="N", type=int, default=1,
                   help="train in N processes on this machine, each on its own CPU where "
                        "there are enough, under MultiWorkerMirroredStrategy (a check of "
                        "multi-worker training before a cluster; default 1)")
    s.add_argument("--catalog", metavar="FILE", help="a catalog file with your own models")
    s.add_argument("--help-hparams", action="store_true",
                   help="list the hyperparameters and exit")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser(
        "worker", help="run one trainer of a written run in this process (on a cluster)",
        description="Run the trainer of RUN_DIR (written by `cvatkit cluster render`, or any "
        "run) in the foreground: start it, or resume it from its last checkpoint when it "
        "has one. With TF_CONFIG (as Kubeflow's training operator sets it), this process "
        "is one worker of MultiWorkerMirroredStrategy; only the chief (worker 0) writes "
        "RUN_DIR. The exit code is 0 when the run completed or stopped, else 1.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.set_defaults(func=_cmd_worker)

    s = sub.add_parser("stop", help="stop a training run (it saves a checkpoint first)",
                       description="Ask the trainer of RUN_DIR to save a checkpoint and "
                       "stop; resume later with `cvatkit train --resume RUN_DIR`.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.set_defaults(func=_cmd_stop)

    s = sub.add_parser(
        "export", help="export a run again (e.g. with another NMS)",
        description="Export RUN_DIR (a run that has ended) again as a SavedModel with its "
        "label files: into RUN_DIR/export/ (replacing it), or into --out. --checkpoint "
        "picks the best checkpoint (the highest evaluation AP) or the last. --nms picks how "
        "overlapping boxes are pruned: batched (fast on a CPU, the default of new runs) or "
        "v2 (Model Garden's, which runs trained before the choice existed were exported "
        "with).")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--checkpoint", metavar="WHICH", default=None,
                   help="best or last (default: the run's own export-checkpoint "
                        "hyperparameter; the last when no evaluation gave a best)")
    s.add_argument("--nms", metavar="VERSION", default=None,
                   help="batched or v2 (default: the run's own nms hyperparameter)")
    s.add_argument("--out", metavar="DIR", help="a new or empty folder (default: "
                   "RUN_DIR/export)")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser(
        "export-pretrained", help="a COCO-trained detector as a model, with no training",
        description="Export the COCO-trained detector of catalog entry KEY (e.g. "
        "retinanet-spinenet-mobile-coco; downloaded once, cached) as a SavedModel with "
        "COCO's label files in OUT_DIR: pre-annotate with it at once, e.g. `cvatkit "
        "annotate OUT_DIR --task 12 --map person=pedestrian --drop-unmapped`.")
    s.add_argument("key", metavar="KEY")
    s.add_argument("out", metavar="OUT_DIR", help="a new or empty folder")
    s.add_argument("--nms", metavar="VERSION", default="batched",
                   help="batched (the default) or v2")
    s.add_argument("--catalog", metavar="FILE", help="a catalog file with your own models")
    s.set_defaults(func=_cmd_export_pretrained)

    s = sub.add_parser(
        "status", help="the true state of a run, or of every run in a folder",
        description="Print the state of RUN_DIR (starting, running, stopped, completed, "
        "failed), its step, and why it ended; a run whose trainer process is gone without "
        "a word is failed, with the last words of its log. Given a folder of runs, one line "
        "per run, newest first.")
    s.add_argument("path", metavar="RUN_DIR")
    s.set_defaults(func=_cmd_status)


def _cmd_models(args: argparse.Namespace) -> int:
    from ..training import DEFAULT_MODEL, MODEL_ALIASES, load_catalog

    for spec in load_catalog(args.catalog).values():
        default = " (default)" if spec.key == DEFAULT_MODEL else ""
        print(f"{spec.key}{default}: {spec.title}")
        aliases = [a for a, key in MODEL_ALIASES.items() if key == spec.key]
        if aliases and spec.source == "built-in":
            print(f"    also known as: {', '.join(aliases)} (CVAT's training workflow)")
        print(f"    {spec.family}, {spec.backbone}, {spec.image_size} px; batch "
              f"{spec.batch_size} per GPU, learning rate {spec.learning_rate:g}, "
              f"{spec.num_steps} steps" + (f"; made for >= {spec.min_gpus} GPUs"
                                           if spec.min_gpus else ""))
        others = f" (or --weights {' / '.join(spec.other_weights)})" \
            if spec.other_weights else ""
        print(f"    starts from: {spec.weights_note}{others}"
              + ("" if spec.source == "built-in" else f"; from {spec.source}"))
        print(textwrap.fill(spec.advice, width=92, initial_indent="    ",
                            subsequent_indent="    "))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..training import (
        DEFAULT_MODEL,
        PARAMS,
        check_run_dir,
        load_catalog,
        plan_run,
        resume_run,
        start_run,
    )

    if args.help_hparams:
        for p in PARAMS:
            print(f"{p.key:<24} {p.describe()}")
        return 0
    if args.resume:
        if args.data or args.run_dir or args.model or args.workers != 1:
            raise UsageError("--resume RUN_DIR takes no --data, --model, --run-dir or "
                             "--workers: the run already has them")
        run = resume_run(args.resume)
    else:
        if not args.data or not (args.run_dir or args.plan):
            raise UsageError("train needs --data DATA_DIR and --run-dir RUN_DIR (or "
                             "--resume RUN_DIR; --plan needs no --run-dir)")
        if args.run_dir:
            check_run_dir(args.run_dir)  # before any download
        text, origin = hparams_text(args)
        with ProgressBar() as bar:
            plan = plan_run(args.data, args.model or DEFAULT_MODEL, text,
                            hparams_origin=origin, weights=args.weights,
                            init_checkpoint=args.init_checkpoint,
                            reinit_heads=args.reinit_heads,
                            pretrained=args.pretrained, eval_data=args.eval_data,
                            catalog=load_catalog(args.catalog), workers=args.workers,
                            progress=bar, fetch=not args.plan)
        if args.plan:
            print(f"{plan.spec.key} on {plan.data.path} ({plan.data.train_frames} training "
                  f"frames), starting from {plan.weights}")
            print(plan.hparams.as_lines())
        for note in plan.notes:
            print(f"note: {note}")
        if args.plan:
            return 0
        run = start_run(plan, args.run_dir)
    if args.detach:
        print(f"training in the background (pid {run.status().pid}); follow it in "
              f"{run.path}/events.jsonl, stop it with `cvatkit stop {run.path}`")
        return 0
    return _follow(run)


def _cmd_worker(args: argparse.Namespace) -> int:
    from ..training import read_record
    from ..training.worker import main

    read_record(args.run_dir)  # a clear error when RUN_DIR is no run
    return main(args.run_dir, resume=None)


def _follow(run) -> int:
    """Show a run's progress until it ends; Ctrl-C stops it cleanly."""
    from tqdm import tqdm

    from ..runs import EvalEvent, StatusEvent, StepEvent
    from ..training import follow_run, run_summary

    bar = tqdm(total=None, unit="step", desc="training", file=sys.stderr, disable=None,
               dynamic_ncols=True)

    def show(event, progress) -> None:
        if bar.total != progress.total_steps:
            bar.total = progress.total_steps
            bar.refresh()
        if isinstance(event, StepEvent):
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.total_loss:.3f}", lr=f"{event.learning_rate:.2g}",
                            ex_s=f"{event.examples_per_sec:.1f}")
        elif isinstance(event, EvalEvent):
            bar.write(event.summary())
        elif isinstance(event, StatusEvent) and event.state != "running":
            bar.write(f"{event.state}: {event.message}")

    try:
        progress = follow_run(run, show, say=bar.write)
    finally:
        bar.close()
    if progress.state == "failed":
        say_error(progress.failure(run.path))
        return 1
    for line in run_summary(run, progress):
        print(line)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    from ..training import stop_run

    state = stop_run(args.run_dir)
    print(f"{args.run_dir}: {state}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..runs import Run
    from ..training.model_garden.export import export_again

    out = export_again(Run(args.run_dir), nms=args.nms, checkpoint=args.checkpoint,
                       out=args.out)
    print(f"exported {args.run_dir} to {out}")
    return 0


def _cmd_export_pretrained(args: argparse.Namespace) -> int:
    from ..training import load_catalog
    from ..training.model_garden.export import export_pretrained

    with ProgressBar() as bar:
        out = export_pretrained(args.key, args.out, nms=args.nms,
                                catalog=load_catalog(args.catalog), progress=bar)
    print(f"exported the COCO-trained {args.key} to {out}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import RunError, UsageError
    from ..runs import RUN_JSON, Run, list_runs

    folder = Path(args.path)
    if (folder / RUN_JSON).is_file():
        run = Run(folder)
        progress = _progress_of(run)
        print(f"{folder}: {progress.summary()}")
        why = progress.failure(run.path)
        if why:
            print(f"  {why}")
        elif progress.message:
            print(f"  {progress.message}")
        return 0
    runs = list_runs(folder)
    if not runs:
        raise UsageError(f"{folder} is neither a run folder (no {RUN_JSON}) nor a folder "
                         "holding runs")
    for path in runs:  # a damaged run is named, and the others listed still
        try:
            progress = _progress_of(Run(path))
        except RunError as e:
            print(f"{path.name}: damaged — {e}")
            continue
        why = progress.failure(path) if progress.state in ("failed", "stopped") else ""
        print(f"{path.name}: {progress.summary()}" + (f" — {why}" if why else ""))
    return 0


def _progress_of(run) -> RunProgress:
    """What a run's events and status add up to."""
    from ..training import read_record

    progress = RunProgress(read_record(run).hparams.num_steps)
    for event in run.events():
        progress.on_event(event)
    progress.on_status(run.status())
    return progress
