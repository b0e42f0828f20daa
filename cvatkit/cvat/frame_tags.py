"""Frame-level tags on a CVAT task: how cvatkit marks frames for people to look at
(``needs-review`` on likely annotation mistakes, ``next`` on the frames to annotate next).

A tag is a label of type *tag* in CVAT; the task must have one of that name (CVAT: the
task's Labels > Add label > type Tag). Tags go in the same annotations request as
shapes (PATCH ``?action=create``), and a frame that already has the tag is not tagged
again, so running twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ServerError, UsageError
from .server import server_error, server_host


@dataclass(frozen=True, kw_only=True)
class TagResult:
    task_id: int
    tag: str
    added: tuple[int, ...]
    """Frames tagged now."""
    already: tuple[int, ...]
    """Frames that had the tag before."""

    def format(self) -> str:
        added = sorted(self.added)
        text = (f"task {self.task_id}: tagged {len(added)} frames {self.tag!r}"
                + (f" ({', '.join(map(str, added[:20]))}"
                   f"{', ...' if len(added) > 20 else ''})" if added else ""))
        if self.already:
            text += f"; {len(self.already)} had the tag already"
        return text + f" (CVAT: filter the job by the tag {self.tag!r})"


def tag_frames(client, task_id: int, tag: str, frames: Iterable[int]) -> TagResult:
    """Put the frame tag ``tag`` on ``frames`` (task frame numbers) of task ``task_id``."""
    import cvat_sdk.models as models
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    host = server_host(client)
    frames = list(dict.fromkeys(int(f) for f in frames))
    try:
        task = client.tasks.retrieve(task_id)
        labels = task.get_labels()
    except Exception as e:
        raise server_error(e, host, f"read task {task_id}") from None
    size = int(task.size or 0)
    outside = [f for f in frames if not 0 <= f < size]
    if outside:
        raise UsageError(f"frame {outside[0]} is not in task {task_id} on {host} "
                         f"(frames 0 to {size - 1})")
    label = next((lb for lb in labels if lb.name == tag), None)
    if label is None or str(getattr(label, "type", "")) != "tag":
        tags = [lb.name for lb in labels if str(getattr(lb, "type", "")) == "tag"]
        what = (f"its label {tag!r} is of type {label.type}, not tag" if label is not None
                else f"it has no tag label {tag!r}")
        raise UsageError(
            f"cannot tag frames of task {task_id} on {host}: {what}. Add a label of type Tag "
            f"named {tag!r} to the task in CVAT (the task's Labels > Add label), or pick one "
            f"of its tag labels ({', '.join(tags) or 'it has none'})")
    try:
        current = task.get_annotations()
    except Exception as e:
        raise server_error(e, host, f"read the annotations of task {task_id}") from None
    tagged = {int(t.frame) for t in (current.tags or []) if t.label_id == label.id}
    already = tuple(f for f in frames if f in tagged)
    todo = tuple(f for f in frames if f not in tagged)
    if todo:
        request = models.PatchedLabeledDataRequest(tags=[
            models.LabeledImageRequest(frame=f, label_id=label.id) for f in todo])
        try:
            task.update_annotations(request, action=AnnotationUpdateAction.CREATE)
        except Exception as e:
            cause = server_error(e, host, f"tag {len(todo)} frames of task {task_id}")
            raise ServerError(f"{cause} Run the same command again: frames already tagged "
                              "are not tagged twice") from None
    return TagResult(task_id=int(task_id), tag=tag, added=todo, already=already)


def tag_source_frames(source, tag: str, frames: Iterable[tuple[int, str]]) -> list[TagResult]:
    """Put the frame tag ``tag`` on ``frames`` (number and name, as the source gives them)
    of a server source: a task's, or a project's, each frame in its own task. With no
    frames, only checks that every task has the tag label. An export has no server to tag
    on: refused."""
    place = getattr(source, "task_frame", None)
    if place is None:
        raise UsageError(f"{source.description} is not on a CVAT server: tags go on a task "
                         "or project there; give it as cvat://TASK_ID or "
                         "cvat://project/PROJECT_ID")
    by_task: dict[int, list[int]] = {task: [] for task in source.task_ids()}
    for number, name in frames:
        task, index = place(number, name)
        by_task[task].append(index)
    return [tag_frames(source.client, task, tag, indexes) for task, indexes in by_task.items()]
