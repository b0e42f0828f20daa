"""Errors cvatkit raises on purpose.

Every error here is a user-facing message: it names the file, line, frame, label or key
at fault and says what to do. The CLI prints it as one paragraph and exits with code 2;
notebooks and widgets show the message, not a traceback.
"""

from __future__ import annotations


class CvatkitError(Exception):
    """Base of every error cvatkit raises on purpose."""


class SourceError(CvatkitError):
    """A task source (export file, folder, server) cannot be read as given."""


class AnnotationError(SourceError):
    """An annotation is malformed or refers to something that does not exist."""


class ServerError(SourceError):
    """A CVAT server refused a request or cannot be reached."""


class OutputExistsError(CvatkitError):
    """The output folder already holds something cvatkit will not overwrite on its own."""


class UsageError(CvatkitError):
    """A command-line or function argument is out of range or inconsistent."""
