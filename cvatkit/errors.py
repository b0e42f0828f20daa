"""Errors cvatkit raises on purpose.

Every error here is a user-facing message: it names the file, line, frame, label or key
at fault and says what to do. The CLI prints it as one paragraph and exits with code 2;
notebooks and widgets show the message, not a traceback.
"""

from __future__ import annotations


class CvatkitError(Exception):
    """Base of every error cvatkit raises on purpose."""


class UsageError(CvatkitError):
    """A command-line or function argument is out of range or inconsistent."""


class OutputExistsError(CvatkitError):
    """The output folder already holds something cvatkit will not overwrite on its own."""


class DiskFullError(CvatkitError):
    """An output could not be written whole: the disk (or the quota, or the size a
    process may write) ran out. Nothing half-written is left."""

    def __init__(self, dest: object, reason: str) -> None:
        super().__init__(f"{dest} could not be written: {reason}; nothing was left "
                         "half-written. Free some space there, or write elsewhere")
        self.reason = reason


class LimitError(CvatkitError):
    """An input larger than a limit of ``cvatkit.limits`` allows."""


# -- CVAT tasks and datasets ---------------------------------------------------------------

class SourceError(CvatkitError):
    """A task source (export file, folder, server) cannot be read as given."""


class AnnotationError(SourceError):
    """An annotation is malformed or refers to something that does not exist."""


class ServerError(SourceError):
    """A CVAT server refused a request or cannot be reached."""


class DatasetError(CvatkitError):
    """A data folder is not a prepared dataset, or does not fit the run."""


# -- training ------------------------------------------------------------------------------

class CatalogError(CvatkitError):
    """A model key is unknown or a catalog file is malformed."""


class HyperparameterError(CvatkitError):
    """A hyperparameter line is not understood or its value is not allowed."""


class WeightsError(CvatkitError):
    """Initial weights could not be fetched or do not verify."""


class RunError(CvatkitError):
    """A run directory is missing, foreign or in a state that forbids the request."""


# -- models --------------------------------------------------------------------------------

class ModelError(CvatkitError):
    """A model cannot be loaded or used as given (not a SavedModel, wrong labels, ...)."""


class StoreError(CvatkitError):
    """The model store cannot be reached, refuses the request, or holds bad data."""


class ChecksumError(StoreError):
    """A file fetched from the store does not match its manifest."""


class S3ServerError(CvatkitError):
    """The local S3 server could not be started or found."""


MAX_SHOWN = 2000
"""Characters of a message a user is shown at most."""


def brief(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` whole when it is short; else its start, and how much more there was (a
    value of a megabyte echoed back in full helps no one)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} characters more)"
