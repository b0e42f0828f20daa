"""cvatkit: train object-detection models on CVAT annotations, from Jupyter."""

from .annotations import Frame, Label, LabelMap, Shape, TaskSummary
from .checks import Report
from .errors import AnnotationError, CvatkitError, OutputExistsError, ServerError, SourceError, UsageError
from .prepare import Dataset, check, prepare
from .sample import write_sample
from .sources import connect, list_tasks, open_export, open_source

__all__ = [
    "Frame", "Label", "LabelMap", "Shape", "TaskSummary", "Report", "Dataset",
    "CvatkitError", "SourceError", "AnnotationError", "ServerError", "OutputExistsError",
    "UsageError", "check", "prepare", "write_sample", "open_source", "open_export", "connect",
    "list_tasks",
]
__version__ = "0.1.0"
