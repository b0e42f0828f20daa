"""The ``cvatkit`` command line.

User mistakes exit with code 2 and one paragraph saying what is wrong and what to do;
no traceback. Every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..errors import CvatkitError
from ..logs import set_verbose
from . import cluster, data, inference, store, training
from .common import say_error

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        set_verbose()
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except CvatkitError as e:
        say_error(str(e))
        return EXIT_USER_ERROR
    except OSError as e:  # a file the user named cannot be read or written
        if not e.strerror:
            raise
        where = f": {e.filename}" if e.filename else ""
        say_error(f"{e.strerror}{where}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        say_error("interrupted; nothing was left half-written")
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cvatkit",
        description="Train object-detection models on CVAT annotations and pre-annotate "
                    "CVAT tasks with them.")
    p.add_argument("--verbose", action="store_true",
                   help="let TensorFlow's start-up lines, logging and warnings through "
                   "(as CVATKIT_VERBOSE=1 does)")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for group in (data, training, store, inference, cluster):
        group.add_commands(sub)
    return p
