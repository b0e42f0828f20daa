"""The folder the kit works in, the same for the app, the notebooks and the command line.

::

    cvatkit-work/                 (or $CVATKIT_WORKDIR, or the folder given)
        sample/                   the built-in sample task: task.zip, test.zip
        uploads/                  exports uploaded through the app
        datasets/NAME/            prepared datasets (``dataset_folder_name`` names them)
        runs/YYYYmmdd-HHMMSS-MODEL/   training runs

A cluster's workflow keeps ``datasets/`` and ``runs/`` on its claim too, each named after
the workflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .runs import new_run_path

WORKDIR_ENV = "CVATKIT_WORKDIR"
DEFAULT_WORKDIR = "cvatkit-work"
SAMPLE = "sample"
UPLOADS = "uploads"
DATASETS = "datasets"
RUNS = "runs"


@dataclass(frozen=True)
class WorkFolder:
    """Where the sample task, uploads, prepared datasets and runs are kept."""

    path: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None = None) -> WorkFolder:
        """The folder given; else ``$CVATKIT_WORKDIR``; else ``cvatkit-work`` in the
        current folder (``~`` expanded; nothing is created)."""
        given = path if path not in (None, "") else os.environ.get(WORKDIR_ENV)
        return cls(Path(given or DEFAULT_WORKDIR).expanduser())

    @property
    def sample(self) -> Path:
        return self.path / SAMPLE

    @property
    def uploads(self) -> Path:
        return self.path / UPLOADS

    @property
    def datasets(self) -> Path:
        return self.path / DATASETS

    @property
    def runs(self) -> Path:
        return self.path / RUNS

    def dataset(self, name: str) -> Path:
        """The folder of the prepared dataset ``name``."""
        return self.datasets / name

    def run(self, name: str) -> Path:
        """The folder of the run ``name``."""
        return self.runs / name

    def new_run(self, model_key: str) -> Path:
        """A run folder not yet taken (``runs.new_run_path``)."""
        return new_run_path(self.runs, model_key)
