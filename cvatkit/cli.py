"""The ``cvatkit`` command line.

User mistakes exit with code 2 and one paragraph saying what is wrong and what to do;
no traceback. Every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Sequence

from .errors import CvatkitError

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except CvatkitError as e:
        _say_error(str(e))
        return EXIT_USER_ERROR
    except OSError as e:  # a file the user named cannot be read or written
        if not e.strerror:
            raise
        where = f": {e.filename}" if e.filename else ""
        _say_error(f"{e.strerror}{where}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _say_error("interrupted; nothing was left half-written")
        return 130


def _say_error(message: str) -> None:
    width = 100
    print(textwrap.fill(f"cvatkit: error: {message}", width=width,
                        subsequent_indent="  ", break_long_words=False,
                        break_on_hyphens=False), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cvatkit",
        description="Train object-detection models on CVAT annotations and pre-annotate "
                    "CVAT tasks with them.")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser("sample", help="write the built-in sample task as CVAT exports",
                       description="Write the built-in synthetic sample task (coloured "
                       "shapes, 3 labels) as OUT_DIR/task.zip plus held-out frames as "
                       "OUT_DIR/test.zip, in a real CVAT export format.")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--frames", type=int, default=None,
                   help="annotated frames in task.zip (default 400)")
    s.add_argument("--test-frames", type=int, default=None,
                   help="held-out frames in test.zip (default 60)")
    s.add_argument("--format", choices=("cvat", "coco"), default="cvat",
                   help="cvat: 'CVAT for images 1.1' (default); coco: 'COCO 1.0'")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_sample)

    s = sub.add_parser(
        "prepare", help="check a task and write it as TFRecords for training",
        description="Read SOURCE (a CVAT export .zip or folder in 'CVAT for images 1.1' or "
        "'COCO 1.0' format, or cvat://TASK_ID on a CVAT server), check it, split it into "
        "train and validation frames and write OUT_DIR: train-*.tfrecord, val-*.tfrecord, "
        "label_map.pbtxt, classes.csv, label_map.json, report.json, val_coco.json.")
    s.add_argument("source", metavar="SOURCE")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--val-split", type=float, default=0.1, metavar="F",
                   help="fraction of frames kept for validation (default 0.1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    s.add_argument("--masks", choices=("auto", "always", "never"), default="auto",
                   help="write instance masks: auto = when the task has polygons or masks")
    s.add_argument("--overwrite", action="store_true",
                   help="replace OUT_DIR if it already holds a dataset")
    s.add_argument("--strict", action="store_true",
                   help="fail instead of dropping unusable shapes")
    _server_args(s)
    s.set_defaults(func=_cmd_prepare)

    s = sub.add_parser("check", help="print a task's dataset report without writing anything",
                       description="Read SOURCE and print what it holds and what is wrong "
                       "with it: frames, shapes per label, clipped and dropped shapes.")
    s.add_argument("source", metavar="SOURCE")
    s.add_argument("--val-split", type=float, default=0.1, metavar="F")
    _server_args(s)
    s.set_defaults(func=_cmd_check)

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
    s.add_argument("--model", metavar="KEY", default=None,
                   help="a model key from `cvatkit models` (default ssd-mobilenet-v2-coco)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--hparams", metavar="TEXT", action="append", default=[],
                   help="key=value pairs, separated by newlines or ';' (repeatable)")
    g.add_argument("--hparams-file", metavar="FILE", help="a file of key=value lines")
    s.add_argument("--init-checkpoint", metavar="PATH",
                   help="start from an earlier run: its folder, one of its checkpoints, or "
                        "a model version in the store (s3://.../models/KEY/VERSION)")
    s.add_argument("--reinit-heads", action="store_true",
                   help="with --init-checkpoint: keep its backbone, start the heads afresh "
                        "(needed when the class count differs)")
    s.add_argument("--pretrained", action="store_true",
                   help="start from the model's published weights (downloaded once, cached)")
    s.add_argument("--eval-data", metavar="DIR",
                   help="evaluate on this prepared dataset's frames instead of DATA_DIR's "
                        "validation split")
    s.add_argument("--run-dir", metavar="RUN_DIR")
    s.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped run from its last checkpoint")
    s.add_argument("--detach", action="store_true",
                   help="return at once; the trainer goes on in the background")
    s.add_argument("--catalog", metavar="FILE", help="a catalog file with your own models")
    s.add_argument("--help-hparams", action="store_true",
                   help="list the hyperparameters and exit")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("stop", help="stop a training run (it saves a checkpoint first)",
                       description="Ask the trainer of RUN_DIR to save a checkpoint and "
                       "stop; resume later with `cvatkit train --resume RUN_DIR`.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.set_defaults(func=_cmd_stop)

    s = sub.add_parser(
        "publish", help="push a trained model to the model store (S3 or a folder)",
        description="Upload a completed run (SavedModel, checkpoints, label files, metrics, "
        "run.json) as a new version under NAMESPACE/models/MODEL_KEY/VERSION/ of the store. "
        "S3 credentials come from the standard AWS configuration.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--store", required=True, metavar="URI",
                   help="s3://bucket/prefix, or a local folder")
    s.add_argument("--namespace", required=True, metavar="NS")
    s.add_argument("--model-key", metavar="KEY", help="default: the run's model key")
    s.add_argument("--create-bucket", action="store_true",
                   help="create the S3 bucket if it does not exist")
    s.set_defaults(func=_cmd_publish)

    s = sub.add_parser("list", help="list the models in the store",
                       description="List the complete model versions of NAMESPACE, newest "
                       "first, with labels, metrics and source task.")
    s.add_argument("--store", required=True, metavar="URI")
    s.add_argument("--namespace", required=True, metavar="NS")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("pull", help="fetch a model version into a folder",
                       description="Download VERSION_URI (as `cvatkit list` prints it) into "
                       "DEST, verifying every file against the version's manifest.")
    s.add_argument("version", metavar="VERSION_URI")
    s.add_argument("dest", metavar="DEST")
    s.set_defaults(func=_cmd_pull)

    s = sub.add_parser(
        "s3-serve", help="run a local S3 server (SeaweedFS) with its data in a folder",
        description="Start SeaweedFS's S3 gateway on 127.0.0.1 with its data in DIR and new "
        "credentials in DIR/credentials (AWS profile cvatkit-local). Prints the environment "
        "that points AWS tools at it.")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--detach", action="store_true", help="return once the server is up")
    s.add_argument("--stop", action="store_true", help="stop the server of DIR")
    s.set_defaults(func=_cmd_s3_serve)

    w = sub.add_parser("train-worker", help=argparse.SUPPRESS)
    w.add_argument("run_dir")
    w.add_argument("--resume", action="store_true")
    w.set_defaults(func=_cmd_train_worker)

    s = sub.add_parser("tasks", help="list the tasks on a CVAT server",
                       description="List the tasks on a CVAT server: id, name, frames, "
                       "status, labels.")
    s.add_argument("--search", help="only tasks whose name contains this text")
    _server_args(s)
    s.set_defaults(func=_cmd_tasks)

    from .cli_inference import add_commands

    add_commands(sub, _server_args)
    return p


def _server_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "CVAT server", "for cvat:// sources. Credentials come from CVAT_ACCESS_TOKEN, or "
        "CVAT_USER and CVAT_PASSWORD, never from the command line.")
    g.add_argument("--server-host", default=None,
                   help="CVAT address, e.g. https://app.cvat.ai (default: $CVAT_HOST)")


def _cmd_sample(args: argparse.Namespace) -> int:
    from .errors import UsageError
    from .sample import DEFAULT_FRAMES, DEFAULT_TEST_FRAMES, write_sample

    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    test_frames = DEFAULT_TEST_FRAMES if args.test_frames is None else args.test_frames
    if frames < 1 or test_frames < 0:
        raise UsageError("--frames must be at least 1 and --test-frames at least 0")
    task = write_sample(args.out_dir, frames=frames, test_frames=test_frames,
                        fmt=args.format, seed=args.seed)
    print(f"sample task: {task.task} ({task.frames} frames)")
    print(f"held-out frames: {task.test} ({task.test_frames} frames)")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .datasets import prepare
    from .sources import open_source

    source = open_source(args.source, server_host=args.server_host)
    try:
        total = source.summary().frames
        with tqdm(total=total, unit="frame", desc="writing TFRecords", file=sys.stderr,
                  disable=None, dynamic_ncols=True) as bar:
            ds = prepare(source, args.out_dir, val_fraction=args.val_split, seed=args.seed,
                         masks=args.masks, overwrite=args.overwrite, strict=args.strict,
                         pbar=bar.update)
    finally:
        source.close()
    print(ds.report.format())
    print(f"dataset written to {ds.path}: {len(ds.train_files)} train and "
          f"{len(ds.val_files)} val shards"
          f"{', with instance masks' if ds.include_masks else ''}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .datasets import check
    from .sources import open_source

    source = open_source(args.source, server_host=args.server_host)
    try:
        report = check(source, val_fraction=args.val_split)
    finally:
        source.close()
    print(report.format(max_problems=50))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .catalog import DEFAULT_MODEL, load_catalog

    for spec in load_catalog(args.catalog).values():
        default = " (default)" if spec.key == DEFAULT_MODEL else ""
        print(f"{spec.key}{default}: {spec.title}")
        print(f"    {spec.family}, {spec.backbone}, {spec.image_size} px; batch "
              f"{spec.batch_size} per GPU, learning rate {spec.learning_rate:g}, "
              f"{spec.num_steps} steps" + (f"; needs >= {spec.min_gpus} GPUs"
                                           if spec.min_gpus else ""))
        print(f"    initial weights: {spec.weights_note}"
              + ("" if spec.source == "built-in" else f"; from {spec.source}"))
        print(textwrap.fill(spec.advice, width=92, initial_indent="    ",
                            subsequent_indent="    "))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .catalog import DEFAULT_MODEL, load_catalog
    from .errors import UsageError
    from .hparams import PARAMS
    from .trainer import plan_run, resume_run, start_run

    if args.help_hparams:
        for p in PARAMS:
            print(f"{p.key:<24} {p.help}")
        return 0
    if args.resume:
        if args.data or args.run_dir or args.model:
            raise UsageError("--resume RUN_DIR takes no --data, --model or --run-dir: the "
                             "run already has them")
        run = resume_run(args.resume)
    else:
        if not args.data or not args.run_dir:
            raise UsageError("train needs --data DATA_DIR and --run-dir RUN_DIR (or "
                             "--resume RUN_DIR)")
        text, origin = "", "--hparams"
        if args.hparams_file:
            try:
                text = open(args.hparams_file, encoding="utf-8").read()
            except OSError as e:
                raise UsageError(f"--hparams-file {args.hparams_file}: {e.strerror}") from None
            origin = args.hparams_file
        elif args.hparams:
            text = "\n".join(h.replace(";", "\n") for h in args.hparams)
        plan = plan_run(args.data, args.model or DEFAULT_MODEL, text, hparams_origin=origin,
                        init_checkpoint=args.init_checkpoint, reinit_heads=args.reinit_heads,
                        pretrained=args.pretrained, eval_data=args.eval_data,
                        catalog=load_catalog(args.catalog), progress=_download_progress())
        for note in plan.notes:
            print(f"note: {note}")
        run = start_run(plan, args.run_dir)
    if args.detach:
        print(f"training in the background (pid {run.status().pid}); follow it in "
              f"{run.path}/events.jsonl, stop it with `cvatkit stop {run.path}`")
        return 0
    return _follow(run)


def _download_progress():
    state: dict[str, object] = {}

    def report(name: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = state.get(name)
        if bar is None:
            bar = state[name] = tqdm(total=total, unit="B", unit_scale=True,
                                     desc=f"downloading {name}", file=sys.stderr)
        bar.update(done - bar.n)  # type: ignore[attr-defined]
        if total is not None and done >= total:
            bar.close()  # type: ignore[attr-defined]

    return report


def _follow(run) -> int:
    """Show a run's progress until it ends; Ctrl-C stops it cleanly."""
    from tqdm import tqdm

    from .runs import EvalEvent, StatusEvent, StepEvent
    from .trainer import stop_run

    total = run.status().total_steps or run.spec()["hparams"]["num-steps"]
    bar = tqdm(total=total, unit="step", desc="training", file=sys.stderr, disable=None,
               dynamic_ncols=True)
    state, message = "running", ""
    started = time.monotonic()
    last_eval = None
    try:
        for event in run.follow():
            if isinstance(event, StepEvent):
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.total_loss:.3f}",
                                lr=f"{event.learning_rate:.2g}",
                                ex_s=f"{event.examples_per_sec:.1f}")
            elif isinstance(event, EvalEvent):
                last_eval = event
                bar.write(event.summary())
            elif isinstance(event, StatusEvent):
                state, message = event.state, event.message
                if event.state != "running":
                    bar.write(f"{event.state}: {event.message}")
    except KeyboardInterrupt:
        bar.write("stopping: saving a checkpoint ...")
        state = stop_run(run.path)
        bar.write(f"{state}; resume with `cvatkit train --resume {run.path}`")
    finally:
        bar.close()
    if state == "failed":
        _say_error(f"training failed: {message or run.status().error}")
        return 1
    if state == "completed" and last_eval is not None:
        frames = run.spec().get("eval_data") or run.spec()["data"]
        print(f"{run.spec()['model']['key']}: COCO AP {last_eval.ap:.3f}, AP@0.5 "
              f"{last_eval.ap50:.3f} on {frames['val_frames']} {last_eval.split} frames; "
              f"{time.monotonic() - started:.0f} s")
    return 0


def _bytes_bar(desc: str):
    from tqdm import tqdm

    return tqdm(unit="B", unit_scale=True, desc=desc, file=sys.stderr, disable=None)


def _cmd_publish(args: argparse.Namespace) -> int:
    from .model_store import publish
    from .store import open_store

    store = open_store(args.store, create_bucket=args.create_bucket)
    with _bytes_bar("uploading") as bar:
        version = publish(args.run_dir, store, args.namespace, args.model_key,
                          progress=bar.update)
    print(f"published {version.uri}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .model_store import list_models
    from .store import open_store

    versions = list_models(open_store(args.store), args.namespace)
    if not versions:
        print(f"no models in {args.store} namespace {args.namespace!r}")
    for v in versions:
        ap = (f"AP {v.metrics['ap']:.3f}, AP@0.5 {v.metrics['ap50']:.3f}"
              if "ap" in v.metrics else "not evaluated")
        print(f"{v.uri}\n    {v.model_key} {v.version}, created {v.created}; {ap}; labels "
              f"{', '.join(v.labels)}; {v.size / 1e6:.1f} MB"
              + (f"; from {v.source_task}" if v.source_task else ""))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from .model_store import pull

    with _bytes_bar("downloading") as bar:
        path = pull(args.version, args.dest, progress=bar.update)
    print(f"pulled {args.version} into {path}")
    return 0


def _cmd_s3_serve(args: argparse.Namespace) -> int:
    from .s3_server import running, serve

    if args.stop:
        server = running(args.dir)
        if server is None:
            print(f"no server is running for {args.dir}")
        else:
            server.stop()
            print(f"stopped the S3 server of {args.dir}")
        return 0
    server = running(args.dir) or serve(args.dir, port=args.port)
    for key, value in server.env().items():
        print(f"export {key}={value}")
    if args.detach:
        return 0
    print(f"S3 on {server.endpoint}; Ctrl-C stops it", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    from .trainer import stop_run

    state = stop_run(args.run_dir)
    print(f"{args.run_dir}: {state}")
    return 0


def _cmd_train_worker(args: argparse.Namespace) -> int:
    from .train_worker import main as worker_main

    return worker_main(args.run_dir, resume=args.resume)


def _cmd_tasks(args: argparse.Namespace) -> int:
    from .sources import connect, list_tasks

    client = connect(args.server_host)
    try:
        tasks = list_tasks(client, search=args.search)
    finally:
        client.close()
    if not tasks:
        print("no tasks" + (f" matching {args.search!r}" if args.search else ""))
        return 0
    print(f"{'id':>6}  {'frames':>6}  {'status':<11} {'updated':<20} name [labels]")
    for t in tasks:
        print(f"{t.id:>6}  {t.frames:>6}  {t.status:<11} {t.updated[:19]:<20} {t.name} "
              f"[{', '.join(t.labels)}]")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
