"""cvatkit: train object-detection models on CVAT annotations, from Jupyter.

The names below are imported on first use, so a command that needs one part of the kit
(publishing a model, say) does not load the others.
"""

from importlib import import_module

_EXPORTS = {
    "Frame": "annotations", "Label": "annotations", "LabelMap": "annotations",
    "Shape": "annotations", "TaskSummary": "annotations",
    "Report": "checks",
    "CvatkitError": "errors", "SourceError": "errors", "AnnotationError": "errors",
    "ServerError": "errors", "OutputExistsError": "errors", "UsageError": "errors",
    "Dataset": "datasets", "check": "datasets", "prepare": "datasets",
    "write_sample": "sample",
    "connect": "sources", "list_tasks": "sources", "open_export": "sources",
    "open_source": "sources",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvatkit' has no attribute {name!r}")


def __dir__():
    return __all__
