"""From a task source to a training-ready dataset folder.

``prepare`` reads the task once for its annotations (checking and cleaning them), splits
it, then streams the frames into TFRecord shards. The folder is built aside and renamed
into place at the end, so it appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..cvat import UNLABELLED, Source
from ..errors import AnnotationError, CvatkitError, OutputExistsError, UsageError
from ..files import folder_written_aside, require_new_or_empty
from ..label_files import write_label_files
from ..processes import end_with_parent
from ..progress import FRAMES, Progress, no_progress
from ..records import Frame, LabelMap
from .checks import Checker, Report
from .folder import (DATASET_JSON, FORMAT_VERSION, REPORT_JSON, VAL_COCO_JSON, Dataset, is_dataset,
                     load_dataset)
from .split import DEFAULT_VAL_FRACTION, split_val
from .statistics import STATISTICS_JSON, measure
from .tfrecords import EncodedFrame, ShardWriter, encode_frame

_IN_FLIGHT = 32
_BATCH = 16
PROCESS_POOL_MIN_FRAMES = 256


def prepare(source: Source, out_dir: str | os.PathLike[str], *,
            val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
            masks: str = "auto", overwrite: bool = False, strict: bool = False,
            workers: int = 2, progress: Progress = no_progress,
            reuse: bool = False) -> Dataset:
    """Check, split and write ``source`` as a dataset in ``out_dir``.

    ``masks``: ``auto`` writes instance masks when the task has polygons or masks,
    ``always`` / ``never`` force it. ``strict`` turns dropped shapes into an error.
    ``progress`` is told of the frames written (``writing TFRecords``).
    ``reuse``: when ``out_dir`` already holds a dataset made with the same settings from
    the same annotations (frames, sizes, shapes and labels, compared by their digest),
    return it as it is (``reused``) instead of writing it again; else (with
    ``overwrite``) it is replaced.
    """
    _check_fraction(val_fraction)
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"--seed {seed}: give a whole number from 0 to {2**32 - 1}")
    if masks not in ("auto", "always", "never"):
        raise UsageError(f"masks must be auto, always or never, got {masks!r}")
    out = Path(out_dir)
    _check_out_dir(out, overwrite or reuse)

    # Worker processes start while the annotations are read.
    pool = _start_pool(source, workers)
    try:
        return _prepare(source, out, pool, val_fraction=val_fraction, seed=seed,
                        masks=masks, strict=strict, workers=workers,
                        progress=progress, reuse=reuse, overwrite=overwrite)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _prepare(source: Source, out: Path, pool, *, val_fraction: float, seed: int,
             masks: str, strict: bool, workers: int, progress: Progress, reuse: bool,
             overwrite: bool) -> Dataset:
    frames, report = _read_checked(source)
    if strict and report.problems:
        raise AnnotationError(
            f"{len(report.problems)} shapes are unusable and --strict is set; the first: "
            f"{report.problems[0]}")
    if strict and report.skipped.get(UNLABELLED):
        raise AnnotationError(
            f"{source.description}: {report.skipped[UNLABELLED]} shapes name no label and "
            "--strict is set; give them their label in CVAT and export again")
    digest = annotations_digest(frames, source.labels)
    mask_shapes = sum(s.kind != "rectangle" for f in frames for s in f.shapes)
    include_masks = masks == "always" or (masks == "auto" and mask_shapes > 0)
    settings = {"val_fraction": val_fraction, "seed": seed, "include_masks": include_masks}
    if reuse:
        found = _same_dataset(out, digest, settings, source.labels, report)
        if found is not None:
            return found
        if not overwrite:
            _check_out_dir(out, False)  # another dataset is there: refused as usual

    val_names = split_val((f.key for f in frames), val_fraction, seed)
    splits = {"train": [f for f in frames if f.key not in val_names],
              "val": [f for f in frames if f.key in val_names]}
    report.train_frames, report.val_frames = len(splits["train"]), len(splits["val"])
    ids = {f.key: n for n, f in enumerate(frames, start=1)}
    with folder_written_aside(out) as tmp:
        progress.start("writing TFRecords", len(frames), unit=FRAMES)
        formats: Counter[str] = Counter()
        files = {split: _write_split(source, tmp, split, subset, ids, include_masks, workers,
                                     pool, formats, progress)
                 for split, subset in splits.items()}
        write_label_files(source.labels, tmp)
        _write_coco_gt(tmp / VAL_COCO_JSON, splits["val"], ids, source.labels, include_masks)
        (tmp / REPORT_JSON).write_text(report.to_json(), encoding="utf-8")
        # the training frames' sizes: what a run's recipe is fitted to
        (tmp / STATISTICS_JSON).write_text(
            measure(splits["train"] or splits["val"], source.labels.names).to_json(),
            encoding="utf-8")
        meta = {
            "format": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": source.description,
            "task": report.task,
            "task_id": report.task_id,
            "labels": list(source.labels.names),
            "frames": len(frames),
            "train_frames": len(splits["train"]),
            "val_frames": len(splits["val"]),
            "val_fraction": val_fraction,
            "seed": seed,
            "include_masks": include_masks,
            "mask_shapes": mask_shapes,
            "train_files": list(files["train"]),
            "val_files": list(files["val"]),
            "val_coco": VAL_COCO_JSON,
            "image_formats": dict(formats),
            "annotations_digest": digest,
            "masks": masks,
        }
        (tmp / DATASET_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return Dataset(path=out, labels=source.labels, train_frames=len(splits["train"]),
                   val_frames=len(splits["val"]), val_fraction=val_fraction,
                   include_masks=include_masks, mask_shapes=mask_shapes,
                   train_files=files["train"],
                   val_files=files["val"], source=source.description, task=report.task,
                   report=report)


def _write_split(source: Source, folder: Path, split: str, frames: list[Frame],
                 ids: dict[str, int], include_masks: bool, workers: int, pool,
                 formats: Counter[str], progress: Progress) -> tuple[str, ...]:
    """One split's frames as TFRecord shards in ``folder``; the shards' names."""
    if not frames:
        return ()
    writer = ShardWriter(folder, split, len(frames))
    try:
        for enc in _encode_all(source, frames, ids, include_masks, workers, pool):
            writer.write(enc.example)
            formats[enc.image_format + (f" (re-encoded from {enc.reencoded_from})"
                                        if enc.reencoded_from else "")] += 1
            progress.advance(1)
    finally:
        writer.close()
    return tuple(p.name for p in writer.paths)


def check(source: Source, *, val_fraction: float = DEFAULT_VAL_FRACTION,
          seed: int = 0) -> Report:
    """The dataset report of ``source`` (what ``prepare`` would write), writing nothing."""
    return check_frames(source, val_fraction=val_fraction, seed=seed)[1]


def check_frames(source: Source, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                 seed: int = 0) -> tuple[list[Frame], Report]:
    """The frames ``prepare`` would write (metadata only: shapes clipped to their frame,
    unusable ones dropped) and ``check``'s report of them, from one read of the task."""
    _check_fraction(val_fraction)
    frames, report = _read_checked(source)
    val = split_val((f.key for f in frames), val_fraction, seed)
    report.val_frames, report.train_frames = len(val), len(frames) - len(val)
    return frames, report


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction <= 1.0:
        raise UsageError(
            f"the validation split (--val-split) must be between 0 and 1 (1: every frame "
            f"for evaluation, as for a test set), got {val_fraction}")


def _read_checked(source: Source) -> tuple[list[Frame], Report]:
    """Every frame's metadata, checked and cleaned, and the report of what was found."""
    summary = source.summary()
    report = Report(source=source.description, task=summary.name, task_id=summary.id)
    checker = Checker(source.labels, report)
    frames = [checker.check(frame) for frame in source.frames()]
    report.skipped = dict(Counter(source.skipped))
    report.sizes = measure(frames, source.labels.names).format() if frames else []
    report.frames_by_job = dict(source.frames_by_job)
    report.left_out = dict(source.left_out)
    report.tasks = source.task_lines()
    report.notes = list(source.notes)
    if not frames:
        extra = ""
        if report.left_out:
            extra = (" to train on: " + ", ".join(
                f"{n} frames {why}" for why, n in sorted(report.left_out.items()))
                + " were left out; finish those jobs in CVAT, or choose others with --jobs "
                "(--jobs all takes every frame)")
        elif report.skipped.get("track"):
            extra = (" (it holds tracks only: that is a 'CVAT for video 1.1' export; export "
                     "the task as 'CVAT for images 1.1')")
        raise AnnotationError(f"{source.description}: the task has no frames{extra}")
    if not any(f.shapes for f in frames):
        dropped = (f" ({len(report.problems)} unusable shapes were dropped; the first: "
                   f"{report.problems[0]})" if report.problems else "")
        raise AnnotationError(
            f"{source.description}: none of the task's {len(frames)} frames has a shape to "
            f"train on{dropped}; annotate some frames in CVAT first")
    return frames, report


def annotations_digest(frames: list[Frame], labels: LabelMap) -> str:
    """A SHA-256 of what a dataset is made from: the labels, and each frame's name,
    size and shapes, in order."""
    h = hashlib.sha256(repr(tuple(labels)).encode())
    for f in frames:
        h.update(repr((f.subset, f.name, f.width, f.height, f.shapes)).encode())
    return h.hexdigest()


def _same_dataset(out: Path, digest: str, settings: dict, labels: LabelMap,
                  report: Report) -> Dataset | None:
    """The dataset in ``out`` if it was made from these annotations with these settings."""
    try:
        meta = json.loads((out / DATASET_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("annotations_digest") != digest or meta.get("format") != FORMAT_VERSION \
            or any(meta.get(k) != v for k, v in settings.items()):
        return None
    try:
        found = load_dataset(out)
    except CvatkitError:
        return None
    report.train_frames, report.val_frames = found.train_frames, found.val_frames
    return replace(found, path=out, labels=labels, report=report, reused=True)


def _start_pool(source: Source, workers: int):
    """Worker processes for big exports (started now, used once the frames are known)."""
    opener = getattr(source, "opener", lambda: None)()
    if workers <= 1 or opener is None:
        return None
    try:
        expected = source.summary().frames
    except Exception:  # noqa: BLE001  (the first pass will report it properly)
        return None
    if expected < PROCESS_POOL_MIN_FRAMES:
        return None
    import multiprocessing

    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(opener, os.getpid()))
    for _ in range(workers):
        pool.submit(int)
    return pool


def _encode_all(source: Source, frames: list[Frame], ids: dict[str, int],
                include_masks: bool, workers: int, pool=None):
    """Encoded frames, in order, with a bounded number in flight so memory stays flat.

    Big tasks from an export are encoded by worker processes (each opens the export
    itself); others by a small thread pool.
    """
    jobs = [(f, ids[f.key]) for f in frames]
    if pool is not None:
        batches = [jobs[i:i + _BATCH] for i in range(0, len(jobs), _BATCH)]
        yield from _in_order(pool, lambda batch: pool.submit(_encode_batch, batch,
                                                             include_masks),
                             batches, in_flight=2 * workers, flatten=True, own=False)
        return
    local = _LocalEncoder(source, include_masks)
    if workers <= 1:
        yield from map(local, jobs)
        return
    threads = ThreadPoolExecutor(max_workers=workers)
    yield from _in_order(threads, lambda job: threads.submit(local, job), jobs,
                         in_flight=_IN_FLIGHT, flatten=False, own=True)


def _in_order(pool, submit, items, *, in_flight: int, flatten: bool, own: bool):
    pending = []
    it = iter(items)
    try:
        for item in it:
            pending.append(submit(item))
            if len(pending) >= in_flight:
                break
        while pending:
            done = pending.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(submit(nxt))
            if flatten:
                yield from done.result()
            else:
                yield done.result()
    finally:
        for p in pending:
            p.cancel()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


class _LocalEncoder:
    def __init__(self, source: Source, include_masks: bool) -> None:
        self.source, self.include_masks = source, include_masks

    def __call__(self, job: tuple[Frame, int]) -> EncodedFrame:
        frame, source_id = job
        return encode_frame(frame, self.source.read_image(frame), self.source.labels,
                            source_id=source_id, image_name=self.source.image_name(frame),
                            include_masks=self.include_masks)


_worker_source: Source | None = None


def _worker_init(opener, parent: int) -> None:
    global _worker_source
    end_with_parent(parent)  # a prepare that is killed leaves no worker behind
    _worker_source = opener()


def _encode_batch(batch: list[tuple[Frame, int]], include_masks: bool) -> list[EncodedFrame]:
    assert _worker_source is not None
    encoder = _LocalEncoder(_worker_source, include_masks)
    return [encoder(job) for job in batch]


def _write_coco_gt(path: Path, frames: list[Frame], ids: dict[str, int], labels: LabelMap,
                   include_masks: bool) -> None:
    """The validation split as COCO ground truth, for Model Garden's COCO evaluator."""
    from ..geometry import clipped_bbox, mask_bitmap, shape_area

    images, anns = [], []
    for frame in frames:
        image_id = ids[frame.key]
        images.append({"id": image_id, "file_name": frame.name, "width": frame.width,
                       "height": frame.height})
        for shape in frame.shapes:
            x0, y0, x1, y1 = clipped_bbox(shape, frame.width, frame.height)
            ann = {"id": len(anns) + 1, "image_id": image_id,
                   "category_id": labels.id_of(shape.label),
                   "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                   "iscrowd": 0}
            if include_masks:
                import numpy as np
                from pycocotools import mask as coco_mask

                bitmap = mask_bitmap(shape, frame.width, frame.height)
                rle = coco_mask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                ann["segmentation"] = rle
                ann["area"] = shape_area(shape, frame.width, frame.height)
            anns.append(ann)
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": label.id, "name": label.name} for label in labels]}
    path.write_text(json.dumps(doc), encoding="utf-8")


def _check_out_dir(out: Path, overwrite: bool) -> None:
    if is_dataset(out):
        if not overwrite:
            raise OutputExistsError(
                f"{out} already holds a dataset; pass --overwrite to replace it, or choose "
                "another OUT_DIR")
        return
    require_new_or_empty(out, "choose an empty or new OUT_DIR", not_ours="a cvatkit dataset")
