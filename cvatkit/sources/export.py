"""What the two export formats share: finding frame images in the export, and reopening
the export in a worker process."""

from __future__ import annotations

import functools
from collections import Counter

from ..annotations import Frame
from ..errors import SourceError
from .archive import Container


class ExportSource:
    """Base of the export readers (``CvatXmlSource``, ``CocoSource``)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.description = str(container.path)
        self.skipped: Counter[str] = Counter()

    def image_name(self, frame: Frame) -> str:
        candidates = _image_candidates(frame)
        return next((n for n in candidates if self.container.exists(n)), candidates[0])

    def read_image(self, frame: Frame) -> bytes:
        for name in _image_candidates(frame):
            if self.container.exists(name):
                return self.container.read(name)
        raise SourceError(
            f"{frame.where}: frame {frame.index} names image {frame.name!r}, but "
            f"{self.container.display(_image_candidates(frame)[0])} is not in the export; "
            "export the task again with 'Save images' checked, or put the image there")

    def opener(self):
        """How a worker process opens this export itself."""
        return functools.partial(_reopen, str(self.container.path))

    def close(self) -> None:
        self.container.close()


def _image_candidates(frame: Frame) -> list[str]:
    """Where CVAT puts a frame's image: images/<subset>/ in recent exports, else images/."""
    names = [f"images/{frame.subset}/{frame.name}"] if frame.subset else []
    return names + [f"images/{frame.name}", frame.name]


def _reopen(path: str):
    from . import open_export

    return open_export(path)
