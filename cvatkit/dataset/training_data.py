"""What a run trains and is evaluated on, for a source given by name: one rule for the
notebooks and the app.

The built-in sample task trains on all of its frames (no validation split unless asked)
and is evaluated on its held-out frames (``test.zip``, a task of its own); any other task
keeps ``val-split`` of its frames for validation. Each is prepared once in the work
folder's ``datasets/`` and reused while its annotations and what is asked of them stay
the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cvat import SAMPLE_FRAMES, SAMPLE_TEST_FRAMES, TASK_ZIP, TEST_ZIP, open_source, write_sample
from ..progress import Progress, no_progress
from ..work_folder import SAMPLE, WorkFolder
from .folder import dataset_folder_name
from .preparation import prepare
from .split import DEFAULT_VAL_FRACTION

Say = Callable[[str], object]


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    """The prepared datasets of a source."""

    train: Path
    """The prepared dataset to train on."""
    eval: Path | None
    """Held-out frames to evaluate on (the sample's test frames), when there are any."""
    test_source: str | None
    """The held-out frames as a task (an export path), for pictures and evaluation."""


def training_dataset_name(source: str, *, host: str | None = None) -> str:
    """The folder in the work folder's ``datasets/`` that ``source`` is prepared in:
    ``sample`` for the built-in task, else ``dataset_folder_name`` (``cvat://`` tasks of
    ``host``, default ``$CVAT_HOST``)."""
    return SAMPLE if source == SAMPLE else dataset_folder_name(source, host=host)


def prepare_training_data(source: str, workdir: str | os.PathLike[str] | None = None, *,
                          say: Say = print, progress: Progress = no_progress,
                          sample_frames: int = SAMPLE_FRAMES,
                          sample_test_frames: int = SAMPLE_TEST_FRAMES, masks: str = "auto",
                          val_split: float | None = None, jobs: str = "auto") -> TrainingData:
    """The dataset(s) to train on, prepared once in the work folder (``WorkFolder.at``)
    and reused (prepared again when the annotations or what is asked of them changed).

    ``source`` is ``sample`` (the built-in task, written first when the work folder has
    none), a CVAT export path,
    ``cvat://TASK_ID`` or ``cvat://project/PROJECT_ID``; ``jobs`` picks the jobs whose
    frames are taken (``open_source``). ``masks`` as ``prepare`` takes it (a model's
    ``ModelSpec.masks``). ``val_split`` is the share of a task's frames kept for validation
    (default 0.1; the sample keeps none unless asked). ``progress`` counts the frames
    written."""
    work = WorkFolder.at(workdir)
    if source == SAMPLE:
        sample = work.sample
        if not (sample / TEST_ZIP).exists():
            say(f"writing the sample task to {sample}")
            write_sample(sample, frames=sample_frames, test_frames=sample_test_frames,
                         overwrite=True)
        pairs = [(sample / TASK_ZIP, work.dataset(training_dataset_name(SAMPLE)),
                  val_split or 0.0),
                 (sample / TEST_ZIP, work.dataset(f"{SAMPLE}-test"), 1.0)]
    else:
        pairs = [(Path(source) if "://" not in source else source,
                  work.dataset(training_dataset_name(source)),
                  DEFAULT_VAL_FRACTION if val_split is None else val_split)]
    for src, out, fraction in pairs:
        opened = open_source(src, jobs=jobs if src is pairs[0][0] else "auto")
        try:
            for note in opened.notes:
                say(f"note: {note}")
            say(f"preparing {opened.description} -> {out}")
            ds = prepare(opened, out, val_fraction=fraction, masks=masks, overwrite=True,
                         reuse=True, progress=progress)
        finally:
            opened.close()
        if ds.reused:
            say(f"dataset {out} was already prepared from these annotations")
        else:
            say(ds.report.format())
    if source == SAMPLE:
        return TrainingData(train=pairs[0][1], eval=pairs[1][1],
                            test_source=str(pairs[1][0]))
    return TrainingData(train=pairs[0][1], eval=None, test_source=None)
