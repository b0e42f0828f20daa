"""Part of a task as an export of its own: some frames with their annotations, or the whole
task with only those frames' annotations (the rest as nobody has annotated them yet)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from .cvat_xml import write_cvat_xml
from .source import Source


def write_subset(source: Source, dest: Path, frames: Iterable[int], *,
                 rest_unannotated: bool = False, task_name: str | None = None) -> Path:
    """A "CVAT for images 1.1" zip at ``dest`` holding the frames of ``source`` whose
    index is in ``frames``, with their annotations and images; with ``rest_unannotated``,
    every other frame too, without its annotations. Frames keep their names, indexes and
    order; ``task_name`` defaults to the file's stem."""
    wanted = set(frames)
    kept = [frame if frame.index in wanted else replace(frame, shapes=())
            for frame in source.frames() if rest_unannotated or frame.index in wanted]
    write_cvat_xml(dest, kept, source.labels, task_name=task_name or dest.stem,
                   images=source.read_image)
    return dest
