"""``cvatkit predict``, ``evaluate`` and ``annotate``: a trained model put to use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..frame_choices import FRAME_CHOICES, FRAMES_HELP
from ..errors import UsageError
from ..progress import ProgressBar
from .common import server_args


def add_commands(sub) -> None:
    _add_predict(sub)
    _add_evaluate(sub)
    _add_rank(sub)
    _add_annotate(sub)
    _add_serverless(sub)


def _add_serverless(sub) -> None:
    s = sub.add_parser(
        "serverless", help="write a model as a CVAT serverless function (Automatic "
        "annotation in CVAT's own menu)",
        description="Write MODEL (a run folder, its export/, a SavedModel folder or a "
        "model-store version URI) into OUT_DIR as a CVAT serverless (Nuclio) function: "
        "function.yaml and function-gpu.yaml, the handler main.py, the model and what the "
        "handler needs. Deployed with `nuctl deploy --project-name cvat --path OUT_DIR "
        "--platform local` (or to the team's Nuclio), it is listed in CVAT's Models and "
        "runs from a task's Actions > Automatic annotation. Labels that have a text "
        "attribute 'score' keep each shape's score.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder")
    s.add_argument("--name", metavar="NAME",
                   help="the Nuclio function's name (default: cvatkit- and the model's)")
    s.add_argument("--display-name", metavar="TEXT",
                   help="what CVAT's Models list shows (default: the name)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace OUT_DIR if it holds a function written before")
    _model_args(s, batch=False)
    s.set_defaults(func=_cmd_serverless)


def _cmd_serverless(args: argparse.Namespace) -> int:
    from ..annotate.serverless import write_function
    from ..inference import check_threshold, load_detector

    check_threshold(args.threshold)
    detector = load_detector(args.model, labels=args.labels)
    done = write_function(detector, args.out_dir, name=args.name,
                          display_name=args.display_name, threshold=args.threshold,
                          max_detections=args.max_detections, overwrite=args.overwrite)
    print(f"serverless function {done.name} written to {done.path} "
          f"(labels: {', '.join(done.labels)})")
    cpu, gpu = done.deploy_lines()
    print(f"deploy it to the Nuclio CVAT uses:\n  {cpu}\n  on a GPU: {gpu}")
    print("then in CVAT: a task's Actions > Automatic annotation > "
          f"{args.display_name or done.name}")
    return 0


def _add_predict(sub) -> None:
    s = sub.add_parser(
        "predict", help="run a model over frames and draw what it finds",
        description="Run MODEL (a run folder, its export/, a SavedModel folder or a "
        "model-store version URI) over FRAMES: image files or folders of them, a CVAT "
        "export (.zip or folder) or cvat://TASK_ID. Writes OUT/predictions.json, a picture "
        "per frame for the first --draw frames in OUT/pictures/ and OUT/gallery.png.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("frames", metavar="FRAMES", nargs="+")
    s.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    s.add_argument("--draw", type=int, default=16, metavar="N",
                   help="pictures of the first N frames (default 16; 0 for none)")
    s.add_argument("--no-ground-truth", action="store_true",
                   help="leave the task's own annotations out of the pictures")
    s.add_argument("--limit", type=int, default=None, metavar="N", help="only N frames")
    _model_args(s)
    server_args(s)
    s.set_defaults(func=_cmd_predict)


def _add_evaluate(sub) -> None:
    s = sub.add_parser(
        "evaluate", help="score a model against a task's annotations",
        description="Predict every frame of SOURCE (a CVAT export or cvat://TASK_ID) and "
        "compare with its annotations: COCO AP, AP@0.5 and AP per label (pycocotools), and "
        "at the threshold the share of annotated objects found (IoU >= 0.5, right label) "
        "and the false boxes per frame.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("source", metavar="SOURCE")
    s.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    s.add_argument("--limit", type=int, default=None, metavar="N", help="only N frames")
    s.add_argument("--map", action="append", default=[], metavar="MODEL=TASK",
                   help="count a model label as a task label of another name (repeatable; "
                   "names that differ only in case are matched anyway)")
    s.add_argument("--drop-unmapped", action="store_true",
                   help="leave out predictions of model labels the task does not have "
                   "(by default they count as false boxes)")
    s.add_argument("--mistakes", metavar="FILE.csv",
                   help="write every frame's mistakes (missed, false, wrong-label and poorly "
                   "placed boxes) and the likely annotation mistakes, worst frames first")
    s.add_argument("--plots", metavar="DIR",
                   help="draw per-label precision-recall curves (pr_curves.png) and the "
                   "confusion matrix (confusion.png) into DIR")
    s.add_argument("--confident", type=float, default=0.8, metavar="C",
                   help="a prediction scoring at least C that the annotations contradict is "
                   "listed as a likely annotation mistake (default 0.8)")
    s.add_argument("--review-tag", metavar="TAG",
                   help="with cvat://TASK_ID: put the frame tag TAG (a label of type Tag in "
                   "the task) on the frames with likely annotation mistakes, for reviewers "
                   "to filter by in CVAT")
    _model_args(s)
    server_args(s, jobs=True)
    s.set_defaults(func=_cmd_evaluate)


def _add_rank(sub) -> None:
    s = sub.add_parser(
        "rank", help="rank frames not yet annotated: which to annotate next",
        description="Predict the frames of SOURCE that have no annotations yet (a CVAT "
        "export, cvat://TASK_ID, or image files and folders) and rank them by the model's "
        "uncertainty: detections near the threshold, and disagreement between the frame "
        "and its mirror image. Annotating the most uncertain frames first teaches the "
        "model most per frame.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("source", metavar="SOURCE", nargs="+")
    s.add_argument("--out", metavar="FILE.csv", help="write the whole ranking as CSV")
    s.add_argument("--top", type=int, default=20, metavar="K",
                   help="show (and tag, and draw) the K most uncertain frames (default 20)")
    s.add_argument("--gallery", metavar="FILE.png",
                   help="draw the top K frames with the model's detections")
    s.add_argument("--tag", metavar="TAG",
                   help="with cvat://TASK_ID: put the frame tag TAG (a label of type Tag in "
                   "the task) on the top K frames")
    s.add_argument("--include-annotated", action="store_true",
                   help="rank annotated frames too")
    s.add_argument("--limit", type=int, default=None, metavar="N", help="only N frames")
    _model_args(s)
    server_args(s)
    s.set_defaults(func=_cmd_rank)


def _add_annotate(sub) -> None:
    s = sub.add_parser(
        "annotate", help="pre-annotate a CVAT task (or write a file CVAT can upload)",
        description="Predict a task's frames and add the shapes to it: on a CVAT server "
        "with --task (through cvat-sdk's annotate_task), or offline with --source EXPORT "
        "--out FILE, which writes a 'CVAT for images 1.1' annotations file for CVAT's "
        "Upload annotations. Only frames nobody annotated get predictions unless --frames "
        "says otherwise. The label mapping is shown first; model labels the task lacks "
        "are refused unless mapped (--map) or dropped (--drop-unmapped). Shapes equal to "
        "ones already on the task are never written twice, so a failed run can be re-run.")
    s.add_argument("model", metavar="MODEL")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--task", type=int, metavar="ID", help="a task on the CVAT server")
    where.add_argument("--project", type=int, metavar="ID",
                       help="a project on the CVAT server: each of its tasks")
    where.add_argument("--source", metavar="EXPORT", help="a CVAT export (.zip or folder)")
    s.add_argument("--out", metavar="FILE", help="with --source: the annotations file to "
                   "write (.xml, or .zip holding annotations.xml)")
    s.add_argument("--overwrite", action="store_true",
                   help="with --out: replace the file if it exists")
    s.add_argument("--dry-run", type=int, default=None, metavar="N",
                   help="predict the first N frames and show what would be written; "
                   "write nothing")
    s.add_argument("--clear-existing", action="store_true",
                   help="replace the task's annotations instead of adding to them "
                   "(every frame gets predictions)")
    s.add_argument("--frames", choices=FRAME_CHOICES, default=None, help=FRAMES_HELP)
    s.add_argument("--map", action="append", default=[], metavar="MODEL=TASK",
                   help="send a model label to a task label of another name (repeatable)")
    s.add_argument("--drop-unmapped", action="store_true",
                   help="leave out predictions of model labels the task does not have")
    _model_args(s, batch=False)
    server_args(s)
    s.set_defaults(func=_cmd_annotate)


def _model_args(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--threshold", type=float, default=0.5, metavar="T",
                   help="keep detections scoring at least T, 0..1 (default 0.5)")
    g.add_argument("--max-detections", type=int, default=100, metavar="N",
                   help="at most N detections per frame (default 100)")
    g.add_argument("--labels", metavar="FILE",
                   help="label map for SavedModels that carry none (label_map.pbtxt, "
                   "classes.csv or label_map.json)")
    if batch:
        g.add_argument("--batch-size", type=int, default=8, metavar="N",
                       help="frames per model call when the model takes batches (default 8)")


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..inference import (
        check_threshold,
        load_detector,
        open_frames,
        predict,
        save_predictions,
    )

    check_threshold(args.threshold)
    detector = load_detector(args.model, labels=args.labels)
    frames = open_frames(args.frames, server_host=args.server_host)
    try:
        with ProgressBar() as bar:
            predictions = predict(detector, frames, threshold=args.threshold,
                                  max_detections=args.max_detections,
                                  batch_size=args.batch_size, limit=args.limit,
                                  keep_images=max(args.draw, 0), progress=bar)
            written = save_predictions(
                predictions, args.out, labels=detector.labels.names,
                task_labels=frames.labels.names if hasattr(frames, "labels") else (),
                ground_truth=not args.no_ground_truth,
                about={"model": args.model, "threshold": args.threshold})
    finally:
        if hasattr(frames, "close"):
            frames.close()
    data = json.loads(written["predictions"].read_text())
    shapes = sum(len(f["shapes"]) for f in data["frames"])
    print(f"{shapes} shapes on {len(data['frames'])} frames -> {written['predictions']}")
    if "gallery" in written:
        print(f"pictures: {written['pictures']}/, gallery: {written['gallery']}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..annotate import match_labels, parse_label_pairs
    from ..cvat import open_source, tag_source_frames
    from ..files import write_text_file
    from ..inference import (
        SCORE_FLOOR,
        check_threshold,
        evaluate,
        load_detector,
        predict,
        review,
        save_evaluation_plots,
    )

    check_threshold(args.threshold)
    check_threshold(args.confident, what="--confident")
    mapping = parse_label_pairs(args.map)
    if args.review_tag is not None and not args.source.startswith("cvat://"):
        raise UsageError(f"--review-tag tags frames of a task on a CVAT server: give the task "
                         f"as cvat://TASK_ID (or a project as cvat://project/PROJECT_ID), "
                         f"not {args.source}")
    if args.mistakes and Path(args.mistakes).is_dir():
        raise UsageError(f"--mistakes {args.mistakes} is a folder; give the CSV file to write")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise UsageError(f"--plots {args.plots} is a file; give the folder to draw into")
    detector = load_detector(args.model, labels=args.labels)
    source = open_source(args.source, server_host=args.server_host, jobs=args.jobs)
    try:
        if args.review_tag is not None:  # the task's tag label, before predicting anything
            tag_source_frames(source, args.review_tag, ())
        plan = match_labels(detector.labels.names, source.labels.names, mapping=mapping,
                          drop_unmapped=True, task=source.description)
        print(plan.format(), flush=True)
        with ProgressBar() as bar:
            predictions = [
                replace(p, frame=replace(p.frame, shapes=plan.rename(
                    p.frame.shapes, keep_unmapped=not args.drop_unmapped)))
                for p in predict(detector, source, threshold=min(SCORE_FLOOR, args.threshold),
                                 max_detections=args.max_detections,
                                 batch_size=args.batch_size, limit=args.limit,
                                 progress=bar)]
        labels = [*plan.targets, *source.labels.names]
        if not args.drop_unmapped:
            labels += plan.dropped
        result = evaluate(predictions, labels, threshold=args.threshold)
        mistakes = review(predictions, labels, threshold=args.threshold,
                          confident=args.confident)
        print(f"{args.model} on {source.description}")
        print(result.format())
        print()
        print(mistakes.format())
        if args.json:
            write_text_file(Path(args.json), json.dumps(
                {**result.to_dict(), "review": mistakes.to_dict()}, indent=1) + "\n")
        if args.mistakes:
            write_text_file(Path(args.mistakes), mistakes.csv_text())
            print(f"mistakes: {args.mistakes}")
        if args.plots:
            drawn = save_evaluation_plots(result, mistakes, args.plots)
            print(f"plots: {', '.join(str(p) for p in drawn)}")
        if args.review_tag is not None:
            for tagged in tag_source_frames(source, args.review_tag,
                                            mistakes.suspect_frame_names()):
                print(tagged.format())
    finally:
        source.close()
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    from ..cvat import tag_source_frames
    from ..files import write_text_file
    from ..inference import (
        check_threshold,
        gallery_figure,
        load_detector,
        open_frames,
        rank_frames,
        save_png,
    )

    check_threshold(args.threshold)
    if args.top < 1:
        raise UsageError(f"--top {args.top}: give the number of frames to pick, 1 or more")
    server = len(args.source) == 1 and args.source[0].startswith("cvat://")
    if args.tag is not None and not server:
        raise UsageError("--tag puts a frame tag on a task on a CVAT server: give the task as "
                         "cvat://TASK_ID (or a project as cvat://project/PROJECT_ID), not "
                         f"{' '.join(args.source)}")
    for flag, path in (("--out", args.out), ("--gallery", args.gallery)):
        if path and Path(path).is_dir():
            raise UsageError(f"{flag} {path} is a folder; give the file to write")
    detector = load_detector(args.model, labels=args.labels)
    frames = open_frames(args.source, server_host=args.server_host)
    try:
        if args.tag is not None:  # the task's tag label, before predicting anything
            tag_source_frames(frames, args.tag, ())
        with ProgressBar() as bar:
            ranking, shown = rank_frames(
                detector, frames, threshold=args.threshold,
                include_annotated=args.include_annotated,
                max_detections=args.max_detections, batch_size=args.batch_size,
                limit=args.limit, progress=bar,
                keep_images=args.top if args.gallery else 0)
        print(ranking.format(top=args.top))
        if args.out:
            write_text_file(Path(args.out), ranking.csv_text())
            print(f"ranking: {args.out}")
        if args.gallery:
            save_png(gallery_figure([
                (p.image, p.frame.shapes, (), f"#{i} frame {p.frame.index}")
                for i, p in enumerate(shown, start=1)]), args.gallery)
            print(f"gallery: {args.gallery}")
        if args.tag is not None:
            picked = [(r.frame.index, r.frame.name) for r in ranking.top(args.top)]
            for tagged in tag_source_frames(frames, args.tag, picked):
                print(tagged.format())
    finally:
        if hasattr(frames, "close"):
            frames.close()
    return 0


def _cmd_annotate(args: argparse.Namespace) -> int:
    from ..annotate import annotate_export, annotate_project, annotate_task, parse_label_pairs
    from ..inference import check_threshold, load_detector

    check_threshold(args.threshold)
    mapping = parse_label_pairs(args.map)
    if args.task is not None and args.task < 1:
        raise UsageError(f"task {args.task}: a CVAT task's id is a whole number from 1 on")
    if args.project is not None and args.project < 1:
        raise UsageError(f"project {args.project}: a CVAT project's id is a whole number "
                         "from 1 on")
    if args.source is None and args.out:
        raise UsageError("--out goes with --source (offline); with --task or --project the "
                         "shapes go straight to the CVAT server")
    detector = load_detector(args.model, labels=args.labels)
    common = dict(mapping=mapping, drop_unmapped=args.drop_unmapped,
                  threshold=args.threshold, max_detections=args.max_detections,
                  clear_existing=args.clear_existing, dry_run=args.dry_run,
                  frames=args.frames, on_mapping=lambda plan: print(plan.format(), flush=True))
    if args.source:
        from ..cvat import open_export

        if not args.out and args.dry_run is None:
            raise UsageError("with --source, give --out FILE (.xml or .zip) for the "
                             "annotations file, or --dry-run N")
        source = open_export(args.source)
        try:
            with ProgressBar() as bar:
                result = annotate_export(detector, source, args.out, progress=bar,
                                         overwrite=args.overwrite, **common)
        finally:
            source.close()
    else:
        from ..cvat import connect

        client = connect(args.server_host)
        bar = ProgressBar()
        try:
            if args.project is not None:
                results = annotate_project(
                    client, args.project, detector, progress=bar,
                    on_task=lambda r: print(r.format(mapping=False), flush=True), **common)
                total = sum(r.total for r in results)
                verb = "would write" if args.dry_run is not None else "wrote"
                print(f"project {args.project}: {verb} {total} shapes on "
                      f"{len(results)} tasks")
                return 0
            result = annotate_task(client, args.task, detector, progress=bar, **common)
        finally:
            bar.close()
            client.close()
    print(result.format(mapping=False))
    return 0
