"""Pre-annotate a task with a detector: on a CVAT server, or offline into a file that
CVAT's "Upload annotations" takes ("CVAT for images 1.1").

Both paths show the label mapping first, refuse unmapped labels unless told to drop
them, can do a dry run on a few frames, and never write a shape twice: predictions equal
to a shape already on the task are left out, so a failed upload can simply be run again.
By default only frames nobody annotated get predictions (``FRAME_CHOICES``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..cvat import CvatServerSource, Source, cvat_xml_bytes, server_error, write_cvat_xml
from ..frame_choices import ALL_FRAMES, FRAME_CHOICES, NEW_JOBS, UNANNOTATED
from ..errors import CvatkitError, OutputExistsError, ServerError, UsageError
from ..files import write_bytes_file
from ..inference import Detector, Prediction, check_threshold, predict
from ..progress import FRAMES, Progress, no_progress
from ..records import Frame, LabelMap
from .function import DetectorFunction
from .matching import LabelMatch, match_labels
from .shapes import DROPPED, EXISTING, shape_key, shape_kind, task_shapes

ANNOTATED = "already annotated"


def check_frames_choice(frames: str | None, clear_existing: bool, *,
                        server: bool) -> str:
    """The frames choice to use (``None``: the default, ``all`` when clearing)."""
    if frames is None:
        return ALL_FRAMES if clear_existing else UNANNOTATED
    if frames not in FRAME_CHOICES:
        raise UsageError(f"frames={frames!r}: choose one of {', '.join(FRAME_CHOICES)}")
    if clear_existing and frames != ALL_FRAMES:
        raise UsageError(f"--clear-existing replaces every frame's annotations, so it goes "
                         f"with all frames, not --frames {frames}")
    if frames == NEW_JOBS and not server:
        raise UsageError("--frames new-jobs needs the task's jobs, which only a CVAT server "
                         "knows: give --task ID, or --frames unannotated for an export")
    return frames


@dataclass(frozen=True, kw_only=True)
class AnnotateResult:
    """What a pre-annotation did (or, for a dry run, would do)."""

    task: str
    mapping: LabelMatch
    frames: int
    shapes: dict[str, int]
    """Shapes written (or planned) per task label."""
    skipped_existing: int = 0
    skipped_frames: dict[str, int] = field(default_factory=dict)
    """Frames given no predictions, by why (``already annotated``, ``in a job ...``)."""
    dropped: int = 0
    dry_run: bool = False
    predictions: tuple[Prediction, ...] = field(default=(), repr=False)
    """A dry run's frames with the shapes it would write."""
    out: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.shapes.values())

    def format(self, *, mapping: bool = True) -> str:
        verb = "would write" if self.dry_run else "wrote"
        per = ", ".join(f"{n} {c}" for n, c in self.shapes.items() if c) or "nothing"
        lines = [self.mapping.format()] if mapping else []
        lines.append(f"{self.task}: {verb} {self.total} shapes on {self.frames} frames "
                     f"({per})")
        for why, count in sorted(self.skipped_frames.items()):
            lines.append(f"  {count} frames {why} were left as they are (--frames all "
                         "predicts on them too)")
        if self.skipped_existing:
            lines.append(f"  {self.skipped_existing} predictions equal to shapes already "
                         "there were not written again")
        if self.dropped:
            lines.append(f"  {self.dropped} predictions of unmapped labels were dropped")
        if self.out is not None:
            lines.append(f"  annotations file: {self.out} (CVAT: Actions > Upload "
                         "annotations > CVAT 1.1)")
        for p in self.predictions:  # a dry run: what each frame would get
            shapes = ", ".join(f"{s.label} {s.kind} {s.score:.2f}" for s in p.frame.shapes)
            lines.append(f"  frame {p.frame.index} {p.frame.name}: {shapes or 'nothing'}")
        return "\n".join(lines)


def output_kinds(labels: LabelMap, has_masks: bool) -> dict[str, str]:
    """The shape to write for each task label (``shape_kind``)."""
    return {label.name: shape_kind(label.type, has_masks) for label in labels}


def _match(detector: Detector, task_labels: LabelMap, task: str,
           mapping: Mapping[str, str] | None, drop_unmapped: bool,
           on_mapping: Callable[[LabelMatch], object] | None) -> LabelMatch:
    match = match_labels(detector.labels.names, task_labels.names, mapping=mapping,
                         drop_unmapped=drop_unmapped, task=task)
    if on_mapping is not None:
        on_mapping(match)
    return match


def annotate_export(detector: Detector, source: Source, out: str | os.PathLike[str] | None, *,
                    mapping: Mapping[str, str] | None = None, drop_unmapped: bool = False,
                    threshold: float = 0.5, max_detections: int = 100,
                    clear_existing: bool = False, dry_run: int | None = None,
                    overwrite: bool = False, progress: Progress = no_progress,
                    on_mapping: Callable[[LabelMatch], object] | None = None,
                    frames: str | None = None) -> AnnotateResult:
    """Pre-annotations of an export's frames as ``out`` (``.xml``, or ``.zip`` holding
    annotations.xml): the task's own shapes are kept unless ``clear_existing``; only
    frames without shapes get predictions unless ``frames`` is ``all``
    (``FRAMES_HELP``). A file already at ``out`` is refused unless ``overwrite``."""
    check_threshold(threshold)
    choice = check_frames_choice(frames, clear_existing, server=False)
    if out is None and dry_run is None:
        raise UsageError("give the annotations file to write (--out FILE.xml or .zip), or "
                         "--dry-run N")
    dest = Path(out) if out is not None else None
    if dest is not None and dest.is_dir():
        raise UsageError(f"{dest} is a folder; give the annotations file to write "
                         "(.xml, or .zip holding annotations.xml)")
    if dest is not None and dest.suffix not in (".xml", ".zip"):
        raise UsageError(f"{dest}: the annotations file is written as .xml or .zip")
    if dest is not None and dry_run is None and dest.exists() and not overwrite:
        raise OutputExistsError(f"{dest} already exists; give another file, or --overwrite "
                                "to replace it")
    labels_ = source.labels
    plan = _match(detector, labels_, source.description, mapping, drop_unmapped, on_mapping)
    kinds = output_kinds(labels_, detector.info.has_masks)
    given = list(source.frames())  # read once: what is skipped, and what is written
    skip = {} if choice == ALL_FRAMES else {f.key: ANNOTATED for f in given if f.shapes}
    if dry_run is not None:
        return _dry_run(detector, source, plan, kinds, source.description, threshold=threshold,
                        max_detections=max_detections, clear_existing=clear_existing,
                        frames=dry_run, progress=progress, skip=skip, key=lambda f: f.key)
    counts: Counter[str] = Counter()
    predicted: dict[str, Frame] = {}
    for p in predict(detector, source, threshold=threshold, max_detections=max_detections,
                     progress=progress, only=lambda f: f.key not in skip):
        existing = () if clear_existing else p.ground_truth
        new = task_shapes(p.frame, plan.target, kinds.__getitem__,
                          {shape_key(s) for s in existing}, counts)
        predicted[p.frame.key] = replace(p.frame, shapes=tuple(existing) + tuple(new))
    assert dest is not None
    written = [predicted.get(f.key, f) for f in given]
    result = _result(source.description, plan, len(written), counts,
                     skipped_frames=dict(Counter(skip.values())))
    name = source.summary().name or "pre-annotations"
    if dest.suffix == ".zip":
        write_cvat_xml(dest, written, labels_, task_name=name)
    else:
        write_bytes_file(dest, cvat_xml_bytes(written, labels_, task_name=name))
    return replace(result, out=dest)


def annotate_task(client, task_id: int, detector: Detector, *,
                  mapping: Mapping[str, str] | None = None, drop_unmapped: bool = False,
                  threshold: float = 0.5, max_detections: int = 100,
                  clear_existing: bool = False, dry_run: int | None = None,
                  progress: Progress = no_progress,
                  on_mapping: Callable[[LabelMatch], object] | None = None,
                  frames: str | None = None) -> AnnotateResult:
    """Pre-annotate task ``task_id`` through ``cvat_sdk.auto_annotation.annotate_task``.

    ``frames`` picks the frames that get predictions (``FRAMES_HELP``; by default those
    nobody annotated). ``dry_run=N`` predicts the first N of them and writes nothing.
    ``progress`` is told of the frames predicted (``predicting task N on HOST``).
    ``on_mapping`` is shown the label mapping before any frame is predicted.
    """
    from cvat_sdk.auto_annotation import annotate_task as sdk_annotate_task

    check_threshold(threshold)
    choice = check_frames_choice(frames, clear_existing, server=True)
    if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 1:
        raise UsageError(f"task {task_id!r}: a CVAT task's id is a whole number from 1 on")
    host = client.api_map.host
    where = f"task {task_id} on {host}"
    try:
        task = client.tasks.retrieve(task_id)
    except Exception as e:
        raise server_error(e, host, f"read task {task_id}") from None
    chunk_type = str(getattr(task, "data_original_chunk_type", "imageset") or "imageset")
    if str(getattr(task, "media_type", "image")) == "video" or chunk_type == "video":
        raise UsageError(
            f"{where} is a video task; cvat-sdk's annotate_task pre-annotates image tasks "
            "only. Create the task from images (extract the video's frames), or export it "
            "and use `cvatkit annotate MODEL --source EXPORT --out FILE`")
    source = CvatServerSource(client, task_id)
    plan = _match(detector, source.labels, where, mapping, drop_unmapped, on_mapping)
    kinds = output_kinds(source.labels, detector.info.has_masks)
    shapes_now, annotated = ({}, set()) if clear_existing else source.current_annotations()
    skip = _frames_to_skip(source, choice, annotated)
    if dry_run is not None:
        return _dry_run(detector, source, plan, kinds, where, threshold=threshold,
                        max_detections=max_detections, clear_existing=clear_existing,
                        frames=dry_run, progress=no_progress, skip=skip)
    existing = {name: {shape_key(s) for s in shapes} for name, shapes in shapes_now.items()}
    function = DetectorFunction(detector, mapping=plan, kinds=kinds, threshold=threshold,
                                max_detections=max_detections, existing=existing, skip=skip)
    try:
        sdk_annotate_task(client, task_id, function, pbar=_reporter(progress, where),
                          clear_existing=clear_existing, conf_threshold=threshold)
    except CvatkitError:
        raise  # the model or a frame, not the upload: says so itself (retrying won't help)
    except Exception as e:
        from cvat_sdk.auto_annotation import BadFunctionError

        if isinstance(e, BadFunctionError):
            raise UsageError(f"{where} does not accept these predictions: {e}") from None
        planned = sum(c for k, c in function.counts.items() if k not in (EXISTING, DROPPED))
        cause = server_error(e, host, f"upload {planned} shapes to task {task_id}")
        raise ServerError(
            f"{cause} Nothing is lost: run the same command again; shapes that already "
            "reached the task are not written twice") from None
    return _result(where, plan, source.frame_count, function.counts,
                   skipped_frames=dict(Counter(skip.values())))


def annotate_project(client, project_id: int, detector: Detector, *,
                     on_mapping: Callable[[LabelMatch], object] | None = None,
                     on_task: Callable[[AnnotateResult], object] | None = None,
                     **options) -> list[AnnotateResult]:
    """Pre-annotate every task of project ``project_id`` that holds frames, one
    ``annotate_task`` each (same ``options``); ``on_mapping`` is shown the first task's
    label mapping (a project's tasks share its labels), ``on_task`` each task's result
    as it is done. A run that stops half-way is run again: frames already annotated are
    left alone."""
    if isinstance(project_id, bool) or not isinstance(project_id, int) or project_id < 1:
        raise UsageError(f"project {project_id!r}: a CVAT project's id is a whole number "
                         "from 1 on")
    host = client.api_map.host
    try:
        tasks = sorted(client.projects.retrieve(project_id).get_tasks(),
                       key=lambda t: int(t.id))
    except Exception as e:
        raise server_error(e, host, f"read project {project_id}") from None
    tasks = [t for t in tasks if int(t.size or 0)]
    if not tasks:
        raise UsageError(f"project {project_id} on {host} has no task with frames; add "
                         "a task with images to it in CVAT")
    results = []
    for i, task in enumerate(tasks):
        result = annotate_task(client, int(task.id), detector,
                               on_mapping=on_mapping if i == 0 else None, **options)
        if on_task is not None:
            on_task(result)
        results.append(result)
    return results


def _reporter(progress: Progress, where: str):
    """``progress`` as the ``ProgressReporter`` that cvat-sdk's ``annotate_task`` reports
    its frames to."""
    from cvat_sdk.core.progress import ProgressReporter

    class Reporter(ProgressReporter):
        done = 0

        def start2(self, total: int, *, desc: str | None = None, **kwargs) -> None:
            self.done = 0
            progress.start(desc or f"predicting {where}", total, unit=FRAMES)

        def report_status(self, count: int) -> None:  # the count so far
            self.advance(count - self.done)

        def advance(self, delta: int) -> None:
            self.done += delta
            progress.advance(delta)

    return Reporter()


def _frames_to_skip(source: CvatServerSource, choice: str,
                    annotated: set[int]) -> dict[str, str]:
    """Frame name -> why it gets no predictions, for the frames ``choice`` leaves out
    (``annotated``: the frames that hold annotations)."""
    if choice == ALL_FRAMES:
        return {}
    names = source.frame_names()
    skip = {names[k]: ANNOTATED for k in annotated if k in names}
    if choice == NEW_JOBS:
        for k, name in names.items():
            state = source.jobs.state_of(k)
            if name not in skip and state != "new":
                skip[name] = f"in a job {state}"
    return skip


def _result(task: str, plan: LabelMatch, frames: int, counts: Counter[str],
            **more) -> AnnotateResult:
    return AnnotateResult(task=task, mapping=plan, frames=frames,
                          shapes={t: counts[t] for t in plan.targets},
                          skipped_existing=counts[EXISTING], dropped=counts[DROPPED], **more)


def _dry_run(detector: Detector, source, plan: LabelMatch, kinds: Mapping[str, str],
             task: str, *, threshold: float, max_detections: int, clear_existing: bool,
             frames: int, progress: Progress, skip: Mapping[str, str],
             key: Callable[[Frame], str] = lambda f: f.name) -> AnnotateResult:
    """What would be written on the first ``frames`` frames not in ``skip``; nothing is
    written."""
    if frames < 1:
        raise UsageError(f"--dry-run {frames}: give the number of frames to try, at least 1")
    counts: Counter[str] = Counter()
    predictions = []
    for p in predict(detector, source, threshold=threshold, max_detections=max_detections,
                     limit=frames, progress=progress, only=lambda f: key(f) not in skip):
        known = set() if clear_existing else {shape_key(s) for s in p.ground_truth}
        new = task_shapes(p.frame, plan.target, kinds.__getitem__, known, counts)
        predictions.append(Prediction(frame=replace(p.frame, shapes=tuple(new)),
                                      ground_truth=p.ground_truth))
    return _result(task, plan, len(predictions), counts, dry_run=True,
                   predictions=tuple(predictions), skipped_frames=dict(Counter(skip.values())))
