"""A CVAT project read as one source: the frames of all its tasks, with the project's
label set.

Teams keep a dataset as a project of many tasks (one per batch of images). Two tasks
may hold frames of the same name, so each frame is named after its task too
(``task-7/img_0001.jpg``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from ..errors import AnnotationError
from ..records import Frame, LabelMap, TaskSummary
from .jobs import AUTO
from .sdk import label_map_from_cvat
from .server import CvatServerSource, server_error


def project_frame_name(task_id: int, name: str) -> str:
    """The name a task's frame has in its project's source."""
    return f"task-{task_id}/{name}"


class CvatProjectSource:
    """Every task of a CVAT project (``cvat://project/ID``), one ``CvatServerSource`` a
    task; ``jobs`` applies to each task on its own."""

    def __init__(self, client, project_id: int, *, jobs: tuple[str, ...] = (AUTO,)) -> None:
        self.client = client
        self.project_id = int(project_id)
        host = client.api_map.host
        self.description = f"cvat://project/{project_id} on {host}"
        try:
            self._project = client.projects.retrieve(self.project_id)
            labels = self._project.get_labels()
            tasks = sorted(self._project.get_tasks(), key=lambda t: int(t.id))
        except Exception as e:
            raise server_error(e, host, f"read project {project_id}") from None
        try:
            self._labels = label_map_from_cvat(labels)
        except AnnotationError as e:
            raise AnnotationError(f"{self.description}: {e}") from None
        self.skipped: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.frames_by_job: Counter[str] = Counter()
        self.notes: list[str] = []
        self._empty = [t for t in tasks if not int(t.size or 0)]
        if self._empty:
            self.notes.append(
                f"{len(self._empty)} of the project's tasks hold no frames yet (task "
                + ", ".join(str(t.id) for t in self._empty) + ")")
        self.parts = [CvatServerSource(client, int(t.id), jobs=jobs)
                      for t in tasks if int(t.size or 0)]
        if not self.parts:
            raise AnnotationError(
                f"{self.description}: the project has no task with frames; add a task with "
                "images to it in CVAT, or give a task as cvat://TASK_ID")
        for part in self.parts:
            self.notes += part.notes
        self._read: dict[int, int] = {}

    @property
    def labels(self) -> LabelMap:
        return self._labels

    def summary(self) -> TaskSummary:
        return project_summary(self._project, self._project.get_labels(),
                               self.client.api_map.host,
                               frames=sum(p.frame_count for p in self.parts))

    def frames(self) -> Iterator[Frame]:
        self.skipped.clear()
        self.left_out.clear()
        self.frames_by_job.clear()
        self._read.clear()
        for part in self.parts:
            self._read[part.task_id] = 0
            for frame in part.frames():
                self._read[part.task_id] += 1
                yield replace(frame, name=project_frame_name(part.task_id, frame.name))
            self.skipped.update(part.skipped)
            self.left_out.update(part.left_out)
            self.frames_by_job.update(part.frames_by_job)

    def task_lines(self) -> list[str]:
        lines = []
        for part in self.parts:
            gone = sum(part.left_out.values())
            lines.append(f"task {part.task_id} {part.summary().name!r}: "
                         f"{self._read.get(part.task_id, 0)} frames"
                         + (f" ({gone} left out)" if gone else ""))
        return lines

    def task_ids(self) -> list[int]:
        return [p.task_id for p in self.parts]

    def task_frame(self, number: int, name: str) -> tuple[int, int]:
        """The task and the frame number in it of this source's frame ``name``."""
        part, _ = self._owner(Frame(index=number, name=name, width=0, height=0))
        return part.task_id, number

    @property
    def frame_count(self) -> int:
        return sum(p.frame_count for p in self.parts)

    def _owner(self, frame: Frame) -> tuple[CvatServerSource, Frame]:
        """The task source a frame of this project comes from, and the frame as that
        task names it (the frame number is the task's own)."""
        task, _, name = frame.name.partition("/")
        part = next((p for p in self.parts if project_frame_name(p.task_id, "") == task + "/"),
                    None)
        if part is None or not name:
            raise AnnotationError(f"{self.description} has no frame {frame.name!r}")
        return part, replace(frame, name=name)

    def image_name(self, frame: Frame) -> str:
        part, own = self._owner(frame)
        return part.image_name(own)

    def read_image(self, frame: Frame) -> bytes:
        part, own = self._owner(frame)
        return part.read_image(own)

    def opener(self) -> None:
        return None  # the client's session lives in this process

    def close(self) -> None:
        for part in self.parts:
            part.close()


def project_summary(project, labels, host: str, *, frames: int | None = None) -> TaskSummary:
    """A TaskSummary for a ``models.ProjectRead`` (or a Project proxy): a project is picked
    where a task is."""
    updated = getattr(project, "updated_date", None)
    tasks = getattr(project, "tasks", None)
    count = getattr(tasks, "count", None)
    return TaskSummary(
        id=int(project.id),
        name=str(project.name),
        labels=label_map_from_cvat(labels).names if labels else (),
        frames=int(frames or 0),
        status=str(getattr(project.status, "value", project.status) or ""),
        updated=updated.isoformat() if hasattr(updated, "isoformat") else str(updated or ""),
        source=f"cvat://project/{project.id}",
        media_type="image",
        extra={"host": host, "kind": "project",
               **({"tasks": int(count)} if count is not None else {})},
    )


def list_projects(client, *, search: str | None = None) -> list[TaskSummary]:
    """Every project the user can see (newest first), with its labels."""
    host = client.api_map.host
    try:
        out = [project_summary(p, p.get_labels(), host) for p in client.projects.list()
               if not search or search.lower() in str(p.name).lower()]
    except Exception as e:
        raise server_error(e, host, "list projects") from None
    return sorted(out, key=lambda t: t.id or 0, reverse=True)
