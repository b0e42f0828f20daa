"""Run a detector over frames: image files, a CVAT export or a task on a CVAT server.

Frames are decoded by a small thread pool ahead of the model (decoding releases the GIL),
so loading overlaps with compute; frames of the same size go to the model in batches
when its signature takes batches.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cvat import Source, open_source
from ..errors import SourceError, UsageError
from ..images import decode_rgb
from ..progress import FRAMES, Progress, no_progress
from ..records import Frame, Shape
from .detector import Detector, check_threshold

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """A frame with the shapes the model found (``frame.shapes``, each with its score)."""

    frame: Frame
    ground_truth: tuple[Shape, ...] = ()
    """The frame's annotations when it came from a task; empty for plain image files."""
    image: np.ndarray | None = None
    """The decoded RGB frame, for the first ``keep_images`` frames only."""

    def shapes_at(self, threshold: float) -> tuple[Shape, ...]:
        """The predicted shapes scored ``threshold`` or more."""
        return tuple(s for s in self.frame.shapes if s.confidence >= threshold)


@dataclass(frozen=True)
class _Item:
    frame: Frame | None  # None for image files: sized once decoded
    name: str
    read: Callable[[], bytes]
    position: int  # 0, 1, 2... in the order given


def image_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Image files named or found (recursively, sorted) under folders named."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"{path} does not exist")
    return out


def open_frames(items: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                client=None, server_host: str | None = None,
                jobs: str = "all") -> Source | list[str]:
    """What to predict on: a task source for a CVAT export (.zip or a folder with
    annotations), ``cvat://ID`` or ``cvat://project/ID`` (on ``client`` when given, else
    ``server_host`` or the environment's server), otherwise the image files and folders
    named. A task's frames are those of all its jobs unless ``jobs`` says otherwise."""
    items = [items] if isinstance(items, (str, os.PathLike)) else list(items)
    texts = [os.fspath(i).strip() for i in items if os.fspath(i).strip()]
    if not texts:
        raise UsageError("give the frames to run on: a CVAT export (.zip or folder), "
                         "cvat://TASK_ID, or image files or folders")
    first = Path(texts[0]).expanduser()
    is_task = texts[0].startswith("cvat://") or first.suffix == ".zip" or (
        first.is_dir() and ((first / "annotations.xml").is_file()
                            or (first / "annotations").is_dir()))
    if not is_task:
        return [str(Path(t).expanduser()) for t in texts]
    if len(texts) > 1:
        raise UsageError(f"{texts[0]} is a task: give it alone, or give image files only")
    return open_source(texts[0], client=client, server_host=server_host, jobs=jobs)


def predict(detector: Detector, frames: Source | Sequence[str | os.PathLike[str]], *,
            threshold: float = 0.5, max_detections: int = 100, batch_size: int = 8,
            polygons: bool = False, limit: int | None = None, keep_images: int = 0,
            progress: Progress = no_progress, workers: int = 2,
            only: Callable[[Frame], bool] | None = None) -> Iterator[Prediction]:
    """Predictions for each frame, in order. ``frames`` is a task source or image paths.

    ``only`` picks a task's frames to predict (the others are neither read nor
    predicted); ``limit`` stops after that many frames; ``keep_images`` keeps the decoded pixels of
    the first that many frames (for pictures); ``progress`` is told of the frames predicted
    (``predicting``; how many in all when they are image files).
    """
    check_threshold(threshold)  # here, not when the first prediction is asked for
    if batch_size < 1 or max_detections < 1:
        raise UsageError("batch size and max detections must be at least 1")
    if limit is not None and limit < 0:
        raise UsageError(f"limit {limit}: give the number of frames to predict, or None")
    if detector.info.batch_size is not None:
        batch_size = detector.info.batch_size
    return _predict(detector, frames, threshold, max_detections, batch_size, polygons,
                    limit, keep_images, progress, workers, only)


def _predict(detector: Detector, frames, threshold: float, max_detections: int,
             batch_size: int, polygons: bool, limit: int | None, keep_images: int,
             progress: Progress, workers: int,
             only: Callable[[Frame], bool] | None) -> Iterator[Prediction]:
    total = None
    if not _is_source(frames):
        frames = image_files(frames)  # type: ignore[arg-type]
        total = len(frames) if limit is None else min(len(frames), limit)
    progress.start("predicting", total, unit=FRAMES)
    items = _items(frames)
    if only is not None:
        items = (item for item in items if item.frame is None or only(item.frame))
    if limit is not None:
        items = _take(items, limit)
    groups = _SizeGroups(batch_size, window=WINDOW_BATCHES * batch_size)

    def run(batch: list[tuple[_Item, np.ndarray]]) -> list[Prediction]:
        return list(_run(detector, batch, threshold, max_detections, polygons, keep_images,
                         progress))

    for item, image in _decoded(items, workers, ahead=max(2 * batch_size, 4)):
        yield from groups.add(item, image, run)
    yield from groups.flush(run)


WINDOW_BATCHES = 4
"""Frames of other sizes wait for a full batch of their own size for at most this many
batches' worth of frames: a task of mixed sizes (A, B, A, B...) still goes to the model in
full batches, while the frames held back stay few."""


class _SizeGroups:
    """Frames grouped by size into batches, predictions handed back in the frames' order.

    A batch goes to the model when it is full, or when the frames held back reach
    ``window`` (then the batch holding the oldest frame goes, full or not)."""

    def __init__(self, batch_size: int, window: int) -> None:
        self.batch_size, self.window = batch_size, max(window, batch_size)
        self.waiting: dict[tuple[int, ...], list[tuple[_Item, np.ndarray]]] = {}
        self.done: dict[int, Prediction] = {}
        self.order: deque[int] = deque()  # positions not yet handed back, in order

    def add(self, item: _Item, image: np.ndarray, run) -> Iterator[Prediction]:
        self.order.append(item.position)
        group = self.waiting.setdefault(image.shape, [])
        group.append((item, image))
        if len(group) == self.batch_size:
            self._run(image.shape, run)
        elif sum(len(g) for g in self.waiting.values()) >= self.window:
            self._run(self._oldest(), run)
        yield from self._ready()

    def flush(self, run) -> Iterator[Prediction]:
        while self.waiting:
            self._run(self._oldest(), run)
            yield from self._ready()

    def _oldest(self) -> tuple[int, ...]:
        return min(self.waiting, key=lambda shape: self.waiting[shape][0][0].position)

    def _run(self, shape: tuple[int, ...], run) -> None:
        batch = self.waiting.pop(shape)
        for (item, _), prediction in zip(batch, run(batch)):
            self.done[item.position] = prediction

    def _ready(self) -> Iterator[Prediction]:
        while self.order and self.order[0] in self.done:
            yield self.done.pop(self.order.popleft())


def _is_source(frames) -> bool:
    return hasattr(frames, "read_image") and hasattr(frames, "frames")


def _items(frames: Source | Sequence[str | os.PathLike[str]]) -> Iterator[_Item]:
    if _is_source(frames):
        source: Source = frames  # type: ignore[assignment]
        for i, frame in enumerate(source.frames()):
            yield _Item(frame, source.image_name(frame),
                        lambda frame=frame: source.read_image(frame), i)
        return
    for i, path in enumerate(image_files(frames)):  # type: ignore[arg-type]
        yield _Item(None, str(path), path.read_bytes, i)


def _take(items: Iterator[_Item], limit: int) -> Iterator[_Item]:
    for i, item in enumerate(items):
        if i >= limit:
            return
        yield item


def _decoded(items: Iterator[_Item], workers: int,
             ahead: int) -> Iterator[tuple[_Item, np.ndarray]]:
    """Items with their pixels, in order, decoded up to ``ahead`` frames in advance."""
    def load(item: _Item) -> np.ndarray:
        try:
            data = item.read()
        except OSError as e:
            raise SourceError(f"{item.name} cannot be read ({e})") from None
        return decode_rgb(data, item.name)

    pending: deque[tuple[_Item, Future[np.ndarray]]] = deque()
    with ThreadPoolExecutor(max_workers=max(workers, 1),
                            thread_name_prefix="cvatkit-decode") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(load, item)))
                if len(pending) >= ahead:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _run(detector: Detector, batch: list[tuple[_Item, np.ndarray]], threshold: float,
         max_detections: int, polygons: bool, keep_images: int,
         progress: Progress) -> Iterator[Prediction]:
    images = [image for _, image in batch]
    results = detector.detect(images, threshold=threshold, max_detections=max_detections,
                              polygons=polygons)
    for (item, image), shapes in zip(batch, results):
        height, width = image.shape[:2]
        given = item.frame
        frame = Frame(index=given.index if given else item.position,
                      name=given.name if given else item.name, width=width, height=height,
                      shapes=tuple(shapes), subset=given.subset if given else "")
        progress.advance(1)
        yield Prediction(frame=frame, ground_truth=given.shapes if given else (),
                         image=image if item.position < keep_images else None)


def frame_pixels(source: Source, frame: Frame) -> np.ndarray:
    """A task frame's pixels, decoded to RGB (read again, e.g. to draw it later)."""
    return decode_rgb(source.read_image(frame), source.image_name(frame))
