"""cvatkit: train object-detection models on CVAT annotations, from Jupyter.

The job in stages, a package each: ``cvatkit.cvat`` (CVAT exports, servers, the sample
task), ``cvatkit.dataset`` (checks and TFRecords), ``cvatkit.training`` (catalog,
hyperparameters, runs), ``cvatkit.inference`` (detectors, predictions, evaluation),
``cvatkit.annotate`` (pre-annotation) and ``cvatkit.store`` (the model store);
``cvatkit.pipeline`` runs them in a few calls. The names below, the core of them all,
are imported on first use, so a command that needs one part of the kit does not load
the others.
"""

from .lazy import lazy_names
from .logs import quiet_tensorflow

quiet_tensorflow()

_EXPORTS = {
    "Frame": "records", "Label": "records", "LabelMap": "records", "Shape": "records",
    "TaskSummary": "records",
    "CvatkitError": "errors", "SourceError": "errors", "AnnotationError": "errors",
    "ServerError": "errors", "OutputExistsError": "errors", "UsageError": "errors",
    "brief": "errors",
    "Progress": "progress", "no_progress": "progress", "ProgressBar": "progress",
    "BYTES": "progress", "FRAMES": "progress",
    "write_bytes_file": "files", "write_text_file": "files", "redacted": "addresses",
    "Run": "runs", "RUN_JSON": "runs", "CHECKPOINTS": "runs", "TERMINAL": "runs",
    "run_of_checkpoint": "runs", "list_runs": "runs",
    "new_run_path": "runs", "WorkFolder": "work_folder",
    "RunProgress": "run_progress", "Series": "run_progress",
    "format_duration": "run_progress",
    "Dataset": "dataset", "Report": "dataset", "check": "dataset", "prepare": "dataset",
    "write_sample": "cvat", "connect": "cvat", "list_tasks": "cvat", "open_export": "cvat",
    "open_source": "cvat",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
