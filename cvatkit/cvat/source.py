"""What every task source offers (a summary, the labels, frames with shapes, image bytes),
and what the two export formats share: finding frame images in the export, and reopening
the export in a worker process."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol

from ..errors import AnnotationError, SourceError
from ..files import name_problem
from ..limits import IMAGE
from ..records import Frame, LabelMap, TaskSummary
from .container import Container


UNLABELLED = "shape without a label"
"""The kind under which ``Source.skipped`` counts shapes that name no label."""


class Source(Protocol):
    """A CVAT task to read: an export file or folder, or a task on a server.

    ``frames()`` yields metadata only (names, sizes, shapes); pixels are read one frame
    at a time with ``read_image`` so memory stays bounded whatever the task size.
    """

    description: str
    """How to name the source in messages: a path or ``cvat://7 on https://host``."""

    skipped: Counter[str]
    """Annotations the reader left out, by kind (``polyline``, ``tag``, ``track``...),
    filled while ``frames()`` runs."""

    left_out: Counter[str]
    """Frames ``frames()`` did not yield, by why (``in a job in progress``)."""

    frames_by_job: Counter[str]
    """Every frame by the state of the CVAT job that holds it; empty for exports."""

    notes: list[str]
    """What a reader of the source should know (a choice made for them)."""

    @property
    def labels(self) -> LabelMap: ...

    def summary(self) -> TaskSummary: ...

    def frames(self) -> Iterator[Frame]: ...

    def read_image(self, frame: Frame) -> bytes:
        """The frame's encoded image, exactly as stored (JPEG stays JPEG)."""
        ...

    def image_name(self, frame: Frame) -> str:
        """Where the frame's image lives, for messages."""
        ...

    def task_lines(self) -> list[str]:
        """A line per task, for a source of several (a project); else none."""
        ...

    def opener(self) -> Callable[[], Source] | None:
        """A picklable way for a worker process to open the same source, or None when
        the source cannot be shared (frames are then encoded in threads)."""
        ...

    def close(self) -> None: ...


class ExportSource:
    """Base of the export readers (``CvatXmlSource``, ``CocoSource``)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.description = str(container.path)
        self.skipped: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.frames_by_job: Counter[str] = Counter()
        self.notes: list[str] = []

    def task_lines(self) -> list[str]:
        return []

    def image_name(self, frame: Frame) -> str:
        candidates = _image_candidates(frame)
        return next((n for n in candidates if self.container.exists(n)), candidates[0])

    def read_image(self, frame: Frame) -> bytes:
        for name in _image_candidates(frame):
            if self.container.exists(name):
                return self.container.read(name, limit=IMAGE)
        raise SourceError(
            f"{frame.where}: frame {frame.index} names image {frame.name!r}, but "
            f"{self.container.display(_image_candidates(frame)[0])} is not in the export; "
            "export the task again with 'Save images' checked, or put the image there")

    def opener(self):
        """How a worker process opens this export itself."""
        return functools.partial(_reopen, type(self), str(self.container.path))

    def close(self) -> None:
        self.container.close()


def check_image_name(name: str, subset: str, where: str) -> None:
    """An export's frame names its image inside the export (``images/[SUBSET/]NAME``): a
    name (or subset) that would lead out of it is refused, naming where it is written."""
    for what, value in (("image name", name), ("subset", subset)):
        problem = name_problem(value) if value or what == "image name" else None
        if problem is not None:
            raise AnnotationError(
                f"{where}: the {what} {value!r} would lead outside the export ({problem}); "
                "a frame's image lies inside its export: fix the name in the file, or "
                "export the task from CVAT again")


def _image_candidates(frame: Frame) -> list[str]:
    """Where CVAT puts a frame's image: images/<subset>/ in recent exports, else images/."""
    names = [f"images/{frame.subset}/{frame.name}"] if frame.subset else []
    return names + [f"images/{frame.name}", frame.name]


def _reopen(cls: type[ExportSource], path: str) -> ExportSource:
    return cls(Container(path))
