"""``cvatkit publish``, ``list``, ``pull`` and ``s3-serve``: the model store."""

from __future__ import annotations

import argparse
import sys
import time

from ..progress import ProgressBar
from .common import store_namespace_arg


def add_commands(sub) -> None:
    s = sub.add_parser(
        "publish", help="push a trained model to the model store (S3 or a folder)",
        description="Upload a completed run (SavedModel, checkpoints, label files, metrics, "
        "run.json) as a new version under NS/models/MODEL_KEY/VERSION/ of the store. "
        "S3 credentials come from the standard AWS configuration.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--store", required=True, metavar="URI",
                   help="s3://bucket/prefix, or a local folder")
    store_namespace_arg(s)
    s.add_argument("--model-key", metavar="KEY", help="default: the run's model key")
    s.add_argument("--create-bucket", action="store_true",
                   help="create the S3 bucket if it does not exist")
    s.set_defaults(func=_cmd_publish)

    s = sub.add_parser("list", help="list the models in the store",
                       description="List the complete model versions in the store's "
                       "namespace NS, newest first, with labels, metrics and source task.")
    s.add_argument("--store", required=True, metavar="URI")
    store_namespace_arg(s)
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


def _cmd_publish(args: argparse.Namespace) -> int:
    from ..store import open_store, publish

    store = open_store(args.store, create_bucket=args.create_bucket)
    with ProgressBar() as bar:
        version = publish(args.run_dir, store, args.store_namespace, args.model_key,
                          progress=bar)
    print(f"published {version.uri}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from ..store import list_models, open_store

    damaged: list[str] = []
    versions = list_models(open_store(args.store), args.store_namespace, damaged=damaged)
    for message in damaged:  # the others are listed all the same
        print(f"note: left out: {message}", file=sys.stderr)
    if not versions:
        print(f"no models in {args.store} namespace {args.store_namespace!r}")
    for v in versions:
        ap = ", ".join(f"{name} {v.metrics[key]:.3f}" for key, name in
                       (("ap", "AP"), ("ap50", "AP@0.5")) if key in v.metrics) \
            or "not evaluated"
        print(f"{v.uri}\n    {v.model_key} {v.version}, created {v.created}; {ap}; labels "
              f"{', '.join(v.labels)}; {v.size / 1e6:.1f} MB"
              + (f"; from {v.source_task}" if v.source_task else ""))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from ..store import pull

    with ProgressBar() as bar:
        path = pull(args.version, args.dest, progress=bar)
    print(f"pulled {args.version} into {path}")
    return 0


def _cmd_s3_serve(args: argparse.Namespace) -> int:
    from ..store.s3_server import running, serve

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
