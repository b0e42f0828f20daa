"""``cvatkit sample``, ``check``, ``prepare`` and ``tasks``: the data to train on."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import server_args


def add_commands(sub) -> None:
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
    s.add_argument("--overwrite", action="store_true",
                   help="replace task.zip and test.zip if OUT_DIR already holds them")
    s.set_defaults(func=_cmd_sample)

    s = sub.add_parser(
        "prepare", help="check a task and write it as TFRecords for training",
        description="Read SOURCE (a CVAT export .zip or folder in 'CVAT for images 1.1' or "
        "'COCO 1.0' format, or cvat://TASK_ID or cvat://project/PROJECT_ID on a CVAT server; "
        "--jobs says which jobs' frames), check it, split it into "
        "train and validation frames and write OUT_DIR: train-*.tfrecord, val-*.tfrecord, "
        "label_map.pbtxt, classes.csv, label_map.json, report.json, val_coco.json.")
    s.add_argument("source", metavar="SOURCE")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--val-split", type=float, default=0.1, metavar="F",
                   help="fraction of frames kept for validation (default 0.1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    s.add_argument("--model", metavar="KEY",
                   help="prepare what this model (see `cvatkit models`) reads: instance "
                   "masks for mask models only")
    s.add_argument("--masks", choices=("auto", "always", "never"), default=None,
                   help="write instance masks: auto = when the task has polygons or masks "
                   "(the default without --model)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace OUT_DIR if it already holds a dataset")
    s.add_argument("--strict", action="store_true",
                   help="fail instead of dropping unusable shapes")
    server_args(s, jobs=True)
    s.set_defaults(func=_cmd_prepare)

    s = sub.add_parser("check", help="print a task's dataset report without writing anything",
                       description="Read SOURCE and print what it holds and what is wrong "
                       "with it: frames, shapes per label, clipped and dropped shapes.")
    s.add_argument("source", metavar="SOURCE")
    s.add_argument("--val-split", type=float, default=0.1, metavar="F")
    server_args(s, jobs=True)
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("tasks", help="list the projects and tasks on a CVAT server",
                       description="List the projects and tasks on a CVAT server: the "
                       "address to give as SOURCE, frames (tasks) or tasks (projects), "
                       "status, name, labels.")
    s.add_argument("--search", help="only those whose name contains this text")
    server_args(s)
    s.set_defaults(func=_cmd_tasks)


def _cmd_sample(args: argparse.Namespace) -> int:
    from ..cvat import SAMPLE_FRAMES, SAMPLE_TEST_FRAMES, write_sample

    frames = SAMPLE_FRAMES if args.frames is None else args.frames
    test_frames = SAMPLE_TEST_FRAMES if args.test_frames is None else args.test_frames
    task = write_sample(args.out_dir, frames=frames, test_frames=test_frames,
                        fmt=args.format, seed=args.seed, overwrite=args.overwrite)
    print(f"sample task: {task.task} ({task.frames} frames)")
    print(f"held-out frames: {task.test} ({task.test_frames} frames)")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from ..cvat import open_source
    from ..dataset import prepare
    from ..progress import ProgressBar

    masks = args.masks
    if args.model:
        from ..training import get_model

        if masks is not None:
            raise UsageError("give --model (to prepare what it reads) or --masks, not both")
        masks = get_model(args.model).masks
    source = open_source(args.source, server_host=args.server_host, jobs=args.jobs)
    try:
        with ProgressBar() as bar:
            ds = prepare(source, args.out_dir, val_fraction=args.val_split, seed=args.seed,
                         masks=masks or "auto", overwrite=args.overwrite,
                         strict=args.strict, progress=bar)
    finally:
        source.close()
    print(ds.report.format())
    print(f"dataset written to {ds.path}: {len(ds.train_files)} train and "
          f"{len(ds.val_files)} val shards"
          f"{', with instance masks' if ds.include_masks else ''}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ..cvat import open_source
    from ..dataset import check

    source = open_source(args.source, server_host=args.server_host, jobs=args.jobs)
    try:
        report = check(source, val_fraction=args.val_split)
    finally:
        source.close()
    print(report.format(max_problems=50))
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from ..cvat import connect, list_tasks
    from ..cvat.projects import list_projects

    client = connect(args.server_host)
    try:
        projects = list_projects(client, search=args.search)
        tasks = list_tasks(client, search=args.search)
    finally:
        client.close()
    if not tasks and not projects:
        print("no projects or tasks" + (f" matching {args.search!r}" if args.search else ""))
        return 0
    width = max(len(t.source) for t in projects + tasks)
    print(f"{'source':<{width}}  {'size':>10}  {'status':<11} {'updated':<19} name [labels]")
    for t in projects + tasks:
        size = (f"{t.extra.get('tasks', '?')} tasks" if t.extra.get("kind") == "project"
                else f"{t.frames} frames")
        print(f"{t.source:<{width}}  {size:>10}  {t.status:<11} {t.updated[:19]:<19} "
              f"{t.name} [{', '.join(t.labels)}]")
    return 0
