"""What the command groups share: the CVAT server option, the model store's namespace,
the error line."""

from __future__ import annotations

import argparse
import sys


def say_error(message: str) -> None:
    """``cvatkit: error: ...`` on stderr as one line, never wrapped: terminals and notebook
    cells wrap it where they show it, a log keeps it whole, and a path in it can be copied
    out as it is. A password in an address is never shown, nor more than ``MAX_SHOWN``
    characters."""
    from ..addresses import redacted
    from ..errors import brief

    print(f"cvatkit: error: {brief(redacted(' '.join(message.splitlines())))}",
          file=sys.stderr)


def server_args(p: argparse.ArgumentParser, *, jobs: bool = False) -> None:
    """The CVAT server options; ``jobs``: also ``--jobs``, for commands that read a task's
    annotated frames."""
    from ..frame_choices import AUTO, JOBS_HELP

    g = p.add_argument_group(
        "CVAT server", "for cvat:// sources. Credentials come from CVAT_ACCESS_TOKEN, or "
        "CVAT_USER and CVAT_PASSWORD, never from the command line.")
    g.add_argument("--server-host", default=None,
                   help="CVAT address, e.g. https://app.cvat.ai (default: $CVAT_HOST)")
    if jobs:
        g.add_argument("--jobs", default=AUTO, metavar="WHICH", help=JOBS_HELP)


STORE_NAMESPACE_HELP = ("the model store's namespace: a team's or project's folder in "
                        "the store, e.g. lab")


def store_namespace_arg(p: argparse.ArgumentParser) -> None:
    """``--store-namespace NS``, required, and its older spelling ``--namespace``, which
    the store's commands still take. (The cluster's commands take ``--namespace`` for the
    Kubernetes namespace.)"""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--store-namespace", metavar="NS", help=STORE_NAMESPACE_HELP)
    g.add_argument("--namespace", metavar="NS", dest="store_namespace",
                   help="the older name of --store-namespace")


def model_and_hparams_args(s, file_help: str = "a file of key=value lines") -> None:
    """--model and the hyperparameters, as text (--hparams) or a file (``file_help``)."""
    s.add_argument("--model", metavar="KEY", default=None,
                   help="a model key from `cvatkit models`, or one of the names CVAT's "
                        "training workflow used (default retinanet-spinenet-mobile-coco)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--hparams", metavar="TEXT", action="append", default=[],
                   help="key=value pairs, separated by newlines or ';' (repeatable)")
    g.add_argument("--hparams-file", metavar="FILE", help=file_help)


def hparams_text(args: argparse.Namespace) -> tuple[str, str]:
    """The hyperparameter lines of ``--hparams`` (``;`` separates lines too) or of
    ``--hparams-file``, and where they came from (for messages)."""
    from ..training import hparams_given

    text, origin = hparams_given("\n".join(h.replace(";", "\n") for h in args.hparams or ()),
                                 args.hparams_file or "")
    return text, origin if args.hparams_file else "--hparams"
