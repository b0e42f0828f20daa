"""What every task source offers: a summary, the labels, frames with shapes, image bytes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol

from ..annotations import Frame, LabelMap, TaskSummary


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

    def opener(self) -> Callable[[], Source] | None:
        """A picklable way for a worker process to open the same source, or None when
        the source cannot be shared (frames are then encoded in threads)."""
        ...

    def close(self) -> None: ...
