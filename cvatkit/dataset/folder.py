"""A prepared dataset folder, as ``prepare`` writes it and training reads it.

The folder holds the TFRecord shards (``train-*.tfrecord``, ``val-*.tfrecord``), the
label files, ``report.json``, ``val_coco.json`` (the validation split as COCO ground
truth) and ``dataset.json``, which says the rest: frames per split, the split, masks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cvat import HOST_ENV
from ..errors import DatasetError
from ..label_files import read_label_map
from ..limits import TEXT
from ..records import LabelMap
from .checks import Report

DATASET_JSON = "dataset.json"
REPORT_JSON = "report.json"
VAL_COCO_JSON = "val_coco.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A prepared dataset folder."""

    path: Path
    labels: LabelMap
    train_frames: int
    val_frames: int
    val_fraction: float
    """The share of frames kept for validation when it was prepared."""
    include_masks: bool
    """Whether its records hold instance masks (for mask models)."""
    mask_shapes: int = 0
    """The task's polygons and masks: what masks could be made of (prepared with masks
    or not)."""
    source: str = ""
    """Where the task came from: an export's path or ``cvat://7 on https://host``."""
    task: str = ""
    """The task's name."""
    train_files: tuple[str, ...] = ()
    val_files: tuple[str, ...] = ()
    report: Report | None = None
    """What ``prepare`` found in the task; None when read back from the folder."""
    reused: bool = False
    """Whether ``prepare(reuse=True)`` found it already made from the same annotations."""

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict[str, Any]:
        """What a run records of its dataset (``run.json``)."""
        return {"path": str(self.path), "labels": list(self.labels.names),
                "train_frames": self.train_frames, "val_frames": self.val_frames,
                "include_masks": self.include_masks, "mask_shapes": self.mask_shapes,
                "val_fraction": self.val_fraction,
                "train_files": list(self.train_files), "val_files": list(self.val_files),
                "source": self.source, "task": self.task}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Dataset:
        """The dataset a run recorded (``to_json``); a store version's record names no
        path (it was the training machine's): it reads as ``Path("")``, the current
        folder, which nothing of a pulled version reads."""
        return cls(path=Path(obj.get("path", "")), labels=LabelMap.from_names(obj["labels"]),
                   train_frames=int(obj["train_frames"]), val_frames=int(obj["val_frames"]),
                   val_fraction=float(obj.get("val_fraction", 0.0)),
                   include_masks=bool(obj.get("include_masks", False)),
                   mask_shapes=int(obj.get("mask_shapes", 0)),
                   train_files=tuple(obj.get("train_files", ())),
                   val_files=tuple(obj.get("val_files", ())),
                   source=str(obj.get("source", "")), task=str(obj.get("task", "")))


def is_dataset(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / DATASET_JSON).is_file()


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """The prepared dataset in ``path`` (made by ``cvatkit prepare``), checked whole."""
    folder = Path(path)
    meta_file = folder / DATASET_JSON
    if not meta_file.is_file():
        raise DatasetError(
            f"{folder} is not a prepared dataset (no {DATASET_JSON}); make one with "
            f"`cvatkit prepare SOURCE {folder}`")
    try:
        TEXT.check(meta_file.stat().st_size, str(meta_file))
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"{meta_file} is damaged ({e}); prepare the dataset again") from None
    labels = read_label_map(folder)
    files = {split: tuple(meta.get(f"{split}_files", ())) for split in ("train", "val")}
    missing = [n for names in files.values() for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"{folder} lacks {', '.join(missing[:3])}; prepare it again")
    if list(labels.names) != list(meta.get("labels", [])):
        raise DatasetError(f"{folder}: the label files and {DATASET_JSON} disagree; prepare "
                           "the dataset again")
    return Dataset(path=folder.resolve(), labels=labels,
                   train_frames=int(meta.get("train_frames", 0)),
                   val_frames=int(meta.get("val_frames", 0)),
                   val_fraction=float(meta.get("val_fraction", 0.0)),
                   include_masks=bool(meta.get("include_masks", False)),
                   mask_shapes=int(meta.get("mask_shapes", 0)),
                   train_files=files["train"], val_files=files["val"],
                   source=str(meta.get("source", "")), task=str(meta.get("task") or ""))


def dataset_folder_name(source: str, *, host: str | None = None) -> str:
    """The folder under ``workdir/datasets`` a source is prepared in: its name, and a
    digest of where it is (two exports named task.zip in two folders get two datasets;
    ``cvat://ID`` is a task of ``host``, default ``$CVAT_HOST``)."""
    if source.startswith("cvat://"):
        where = f"{source} on {host if host is not None else os.environ.get(HOST_ENV, '')}"
        rest = source[len("cvat://"):].strip("/")
        name = rest.replace("project/", "project-") if rest.startswith("project/") else (
            "task-" + rest)
    else:
        path = Path(source).expanduser().resolve()
        where, name = str(path), path.name.removesuffix(".zip")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "task"
    return f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"
