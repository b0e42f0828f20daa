"""Pre-annotating the next task with a trained model.

``AnnotateState`` pre-annotates a task on the Data step's CVAT server, or an export into
an annotations file CVAT uploads. The label mapping is previewed first (``preview()``);
writing is refused until the current inputs have been previewed, and a dry run shows what
would be written without writing. ``AnnotatePanel`` lays out its controls.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import Bool, Enum, Float, HasTraits, Instance, Int, Unicode, observe

from cvatkit import LabelMap, UsageError, list_tasks, open_export
from cvatkit.annotate import (FRAME_CHOICES, FRAMES_HELP, AnnotateResult, LabelMatch,
                              annotate_export, annotate_task, match_labels, parse_label_pairs)
from cvatkit.cvat import server_host
from cvatkit.inference import Detector, check_threshold, load_detector

from ._background import Background
from ._errors import error_html, pre_html, reports_errors
from ._progress import TraitProgress
from .data import DataState, task_row

DRY_RUN_FRAMES = 5
TARGETS = ("export", "server")


class AnnotateState(HasTraits):
    """Pre-annotating a task (on the Data step's CVAT server) or an export with a model."""

    model = Unicode("", help="a run folder, its export/, a SavedModel folder or a "
                             "model-store version URI")
    target = Enum(TARGETS, default_value="export",
                  help="server: a task on the Data step's CVAT server; export: a CVAT "
                       "export, written as an annotations file")
    task_id = Int(None, allow_none=True, help="the task on the server")
    export_path = Unicode("", help="a CVAT export (.zip or folder)")
    out_file = Unicode("", help="the annotations file to write for an export (.xml or .zip)")
    mapping_text = Unicode("", help="model label = task label, one pair a line")
    drop_unmapped = Bool(False, help="leave out predictions of labels the task lacks")
    threshold = Float(0.5, min=0.0, max=1.0, help="keep predictions scoring at least this")
    clear_existing = Bool(False, help="replace the task's annotations instead of adding")
    frames = Enum(FRAME_CHOICES, default_value=FRAME_CHOICES[0], help=FRAMES_HELP)
    dry_run_frames = Int(DRY_RUN_FRAMES, min=1, help="frames a dry run predicts")
    mapping = Instance(LabelMatch, allow_none=True,
                       help="the mapping of the last preview; None until previewed")
    mapping_preview = Unicode("", help="the mapping as text, shown before writing")
    previewed = Bool(False, help="the mapping was previewed for the current inputs")
    busy = Bool(False)
    frames_done = Int(0, help="frames predicted so far by the current run")
    result = Unicode("", help="what the last run wrote (or would write)")
    status = Unicode("")
    error = Unicode("", help="what went wrong last, as the user should read it")

    def __init__(self, *, data: DataState | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        """The Data step: its CVAT session and its list of tasks."""
        self.detector: Detector | None = None
        self._loaded = ""
        self.last_result: AnnotateResult | None = None

    @property
    def client(self):
        return self.data.client if self.data is not None else None

    # -- actions (buttons call these; errors land in .error) ------------------------------

    @reports_errors()
    def preview(self) -> LabelMatch:
        """Load the model, read the task's labels and show which task label each model
        label becomes; nothing is predicted or written. Unmapped labels are refused here."""
        pairs = parse_label_pairs(self.mapping_text)
        detector = self._detector()
        labels, where = self._task_labels()
        plan = match_labels(detector.labels.names, labels.names, task=where, mapping=pairs,
                            drop_unmapped=self.drop_unmapped)
        self._show_mapping(plan)
        self.previewed = True
        self.status = "mapping checked: dry-run a few frames, or annotate"
        return plan

    @reports_errors()
    def run(self, dry_run: int | None = None) -> AnnotateResult:
        """Write the pre-annotations (to the server task, or the export's ``out_file``);
        ``dry_run=N``: predict the first N frames and show what would be written, writing
        nothing. Refused until the mapping was previewed for the current inputs."""
        if not self.previewed:
            raise UsageError("preview the label mapping first; annotating is possible once "
                             "you have seen which task label each model label becomes")
        if self.busy:
            raise UsageError("an annotation run is going on; wait for it to finish")
        check_threshold(self.threshold)
        pairs = parse_label_pairs(self.mapping_text)
        self.busy = True
        self.result = ""
        self.frames_done = 0
        try:
            detector = self._detector()
            common = dict(mapping=pairs, drop_unmapped=self.drop_unmapped,
                          threshold=self.threshold, clear_existing=self.clear_existing,
                          frames=None if self.clear_existing else self.frames,
                          dry_run=dry_run, on_mapping=self._show_mapping)
            what = "dry run" if dry_run is not None else "annotating"
            progress = TraitProgress(self, "status", done="frames_done")
            if self.target == "export":
                out = self.out_file.strip()
                if dry_run is None and not out:
                    raise UsageError("give the annotations file to write (.xml, or .zip "
                                     "holding annotations.xml)")
                source = self._open_export()
                try:
                    self.status = f"{what}: {source.description} ..."
                    with progress:
                        result = annotate_export(detector, source, out or None,
                                                 progress=progress, **common)
                finally:
                    source.close()
            else:
                client, task_id = self._server_task()
                self.status = f"{what}: task {task_id} ..."
                with progress:
                    result = annotate_task(client, task_id, detector, progress=progress,
                                           **common)
            self.last_result = result
            self.result = result.format(mapping=False)
            self.status = "dry run done: nothing was written" if dry_run is not None else (
                "done")
            return result
        finally:
            self.busy = False

    # -- helpers ----------------------------------------------------------------------------

    @observe("model", "target", "task_id", "export_path", "mapping_text", "drop_unmapped",
             "frames")
    def _inputs_changed(self, change) -> None:
        """A preview stands for the inputs it was made with."""
        with self.hold_trait_notifications():
            self.previewed = False
            self.mapping = None
            self.mapping_preview = ""

    def _show_mapping(self, plan: LabelMatch) -> None:
        self.mapping = plan
        self.mapping_preview = plan.format()

    def _detector(self) -> Detector:
        model = self.model.strip()
        if not model:
            raise UsageError("give the model: a run folder, its export/, a SavedModel "
                             "folder or a model-store version URI")
        if self.detector is None or self._loaded != model:
            self.status = f"loading {model} ..."
            self.detector = load_detector(model)
            self._loaded = model
        return self.detector

    def _open_export(self):
        path = self.export_path.strip()
        if not path:
            raise UsageError("give the CVAT export to pre-annotate (a .zip or a folder)")
        return open_export(Path(path).expanduser())

    def _server_task(self):
        client = self.client
        if client is None:
            raise UsageError("connect to a CVAT server first (the Data step)")
        if self.task_id is None:
            raise UsageError("pick the task to pre-annotate")
        return client, int(self.task_id)

    def _task_labels(self) -> tuple[LabelMap, str]:
        """The target's labels and how messages name it (as cvatkit's annotate does)."""
        if self.target == "export":
            source = self._open_export()
            try:
                return source.labels, source.description
            finally:
                source.close()
        client, task_id = self._server_task()
        tasks = list(self.data.tasks) if self.data is not None else []
        summary = next((t for t in tasks if t.id == task_id), None)
        if summary is None:
            summary = next((t for t in list_tasks(client) if t.id == task_id), None)
        if summary is None:
            raise UsageError(f"task {task_id} is not on {server_host(client)}; refresh the "
                             "task list and pick another")
        return LabelMap.from_names(summary.labels), f"task {task_id} on {server_host(client)}"


class AnnotatePanel(W.VBox):
    """Model, task or export, label mapping, preview, dry run and annotate over an
    ``AnnotateState``.

    ``background``: previewing and annotating run in a thread (tests pass False)."""

    def __init__(self, state: AnnotateState | None = None, *, background: bool = True,
                 **kwargs: Any) -> None:
        self.state = state if state is not None else AnnotateState()
        self.actions = Background(background, "cvatkit-annotate")
        wide = W.Layout(width="min(100%, 640px)")
        self.model = W.Combobox(description="Model", options=[], ensure_option=False,
                                layout=wide, placeholder="a run folder or a store version")
        self.target = W.ToggleButtons(options=[("CVAT export -> file", "export"),
                                               ("task on the CVAT server", "server")])
        self.export_path = W.Text(description="Export", layout=wide,
                                  placeholder="the CVAT export to pre-annotate")
        self.out_file = W.Text(description="Write to", layout=wide,
                               placeholder="annotations.xml (or .zip) for CVAT's Upload")
        self.task = W.Dropdown(description="Task", options=[], layout=wide)
        self.task_note = W.HTML()
        self.mapping_text = W.Textarea(description="Mapping", continuous_update=True,
                                       placeholder="model label=task label, one a line\n"
                                                   "car=vehicle",
                                       layout=W.Layout(width="min(100%, 640px)",
                                                       height="5em"))
        self.drop_unmapped = W.Checkbox(description="drop labels the task lacks",
                                        indent=False)
        self.clear_existing = W.Checkbox(description="replace the task's annotations",
                                         indent=False)
        self.frames = W.Dropdown(
            description="Frames", layout=wide,
            options=[("not annotated yet", "unannotated"),
                     ("not annotated, in jobs nobody opened (server)", "new-jobs"),
                     ("all (adds to what is there)", "all")])
        self.threshold = W.FloatSlider(description="Score ≥", min=0.0, max=1.0, step=0.01,
                                       readout_format=".2f")
        self.dry_run_frames = W.BoundedIntText(description="Dry-run", min=1, max=1000,
                                               layout=W.Layout(width="160px"))
        self.preview_button = W.Button(description="Preview mapping", icon="eye")
        self.dry_run_button = W.Button(description="Dry run", icon="flask")
        self.annotate_button = W.Button(description="Annotate", icon="pencil",
                                        button_style="warning")
        self.mapping_preview = W.HTML()
        self.result = W.HTML()
        self.annotate_status = W.HTML()
        self.annotate_error = W.HTML()
        self._wire()

        self._export_box = W.VBox([self.export_path, self.out_file])
        self._server_box = W.VBox([self.task, self.task_note])
        super().__init__([
            W.HTML("<h4>Pre-annotate a task</h4>"), self.model, self.target,
            self._export_box, self._server_box, self.mapping_text,
            W.HBox([self.drop_unmapped, self.clear_existing]), self.frames, self.threshold,
            W.HBox([self.preview_button, self.dry_run_frames, self.dry_run_button,
                    self.annotate_button]),
            self.annotate_status, self.annotate_error, self.mapping_preview, self.result],
            **kwargs)
        self._show_tasks()
        self._show_annotate()

    def _wire(self) -> None:
        """Controls to state and back; buttons to the state's actions."""
        a = self.state
        for name, control in (("model", self.model), ("target", self.target),
                              ("export_path", self.export_path), ("out_file", self.out_file),
                              ("mapping_text", self.mapping_text),
                              ("drop_unmapped", self.drop_unmapped),
                              ("clear_existing", self.clear_existing),
                              ("frames", self.frames),
                              ("threshold", self.threshold),
                              ("dry_run_frames", self.dry_run_frames)):
            W.link((a, name), (control, "value"))
        self.task.observe(self._on_pick, names="value")
        a.observe(self._show_task, names="task_id")
        if a.data is not None:
            a.data.observe(self._show_tasks, names=["tasks", "connected_to"])
        self.preview_button.on_click(lambda _b: self.actions.run(a.preview))
        self.dry_run_button.on_click(
            lambda _b: self.actions.run(lambda: a.run(dry_run=a.dry_run_frames)))
        self.annotate_button.on_click(lambda _b: self.actions.run(a.run))
        W.dlink((a, "clear_existing"), (self.frames, "disabled"))  # replacing: every frame
        a.observe(self._show_annotate, names=["target", "mapping_preview", "previewed",
                                              "result", "status", "error", "busy"])

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background action to end (for scripts and tests)."""
        self.actions.wait(timeout)

    def _show_tasks(self, _change=None) -> None:
        data = self.state.data
        tasks = list(data.tasks) if data is not None else []
        self.task.options = [(task_row(t), t.id) for t in tasks]
        ids = {t.id for t in tasks}
        self.task.value = (self.state.task_id if self.state.task_id in ids
                           else None)
        connected = data is not None and data.connected_to
        self.task_note.value = ("" if connected else
                                "<small>connect to the CVAT server in the Data step</small>")

    def _on_pick(self, change) -> None:
        if change.new is not None and change.new != self.state.task_id:
            self.state.task_id = change.new

    def _show_task(self, change) -> None:
        values = {v for _label, v in self.task.options}
        self.task.value = change.new if change.new in values else None

    def _show_annotate(self, _change=None) -> None:
        a = self.state
        self._export_box.layout.display = "" if a.target == "export" else "none"
        self._server_box.layout.display = "" if a.target == "server" else "none"
        self.mapping_preview.value = pre_html(a.mapping_preview)
        self.result.value = pre_html(a.result)
        self.annotate_status.value = (f"<small>{html.escape(a.status)}</small>"
                                      if a.status else "")
        self.annotate_error.value = error_html(a.error)
        self.preview_button.disabled = a.busy
        self.dry_run_button.disabled = a.busy or not a.previewed
        self.annotate_button.disabled = a.busy or not a.previewed
