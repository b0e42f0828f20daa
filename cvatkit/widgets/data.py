"""Picking the task to train on: the built-in sample, a CVAT export, or a task on a server.

``DataState`` holds the choice and does the work (connect, list, check, prepare) through
cvatkit; ``DataPanel`` lays out its controls. Credentials are never state: the panel's
password boxes are read and emptied when Connect is clicked, ``DataState.connect`` passes
them to the login and forgets them (the client keeps the session), so they appear in no
trait, no ``repr``, no saved widget state and no file, whether the login works or not.

Each check of a task also gives its pictures: shapes per label, object sizes and the first
frames with their annotations. ``DataState.draw_pictures`` draws them from what the check
read (only the frames' images are read again); the panel calls it in a thread after each
check, so the report shows at once and the pictures follow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import Bool, Bytes, Enum, HasTraits, Int, List, Unicode, observe

from cvatkit import Frame, Progress, TaskSummary, UsageError, no_progress, write_bytes_file
from cvatkit.cvat import (JOB_CHOICES, JOBS_HELP, SAMPLE_FRAMES, Source, connect, disconnect,
                          list_projects, list_tasks, open_export, open_source, parse_cvat_uri,
                          parse_jobs, server_host, write_sample)
from cvatkit.dataset import Dataset, Report, check_frames, prepare
from cvatkit.inference import (annotated_frames_figure, box_sizes, label_colors, labels_figure,
                               sizes_figure)

from ._background import Background
from ._errors import error_html, pre_html, reports_errors
from .inference import figure_png

MODES = ("sample", "export", "server")
REPORT_PROBLEMS = 20
"""Dropped-shape messages the report shows (the rest are counted)."""
SHOWN_FRAMES = 8
"""Frames the pictures show with their annotations, by default."""
COLUMNS = 4
PICTURES = ("labels", "sizes", "frames")
"""The pictures of a checked task: shapes per label, object sizes, the first frames."""


@dataclass(frozen=True)
class _Checked:
    """A checked source: what its pictures are drawn from."""

    key: tuple[str, str]
    """(mode, source_uri) when it was checked."""
    report: Report
    frames: tuple[Frame, ...]
    """The first frames to draw, checked (metadata only)."""
    sizes: tuple[float, ...]
    """Every kept shape's size (``box_sizes``)."""
    reopen: Callable[[], Source]


class DataState(HasTraits):
    """Where the training data comes from, its dataset report, and the last error."""

    mode = Enum(MODES, default_value="sample",
                help="sample: the built-in task; export: a CVAT export; server: a CVAT task")
    host = Unicode("", help="CVAT address, e.g. https://app.cvat.ai (default $CVAT_HOST)")
    user = Unicode("", help="CVAT user name, to log in with a password")
    connected_to = Unicode("", help="the host of the live session, '' when not connected")
    tasks = List(help="TaskSummary records of the server's tasks, newest first")
    projects = List(help="TaskSummary records of the server's projects, newest first")
    search = Unicode("", help="show only tasks whose id, name, status or labels contain this")
    task_id = Int(None, allow_none=True, help="the picked server task")
    project_id = Int(None, allow_none=True, help="the picked server project (all its tasks)")
    jobs = Unicode(JOB_CHOICES[0], help=JOBS_HELP)
    export_path = Unicode("", help="a CVAT export: .zip or folder")
    upload_dir = Unicode("cvatkit-uploads", help="where use_upload keeps uploaded exports")
    sample_dir = Unicode("cvatkit-sample", help="where use_sample writes the sample task")
    sample_path = Unicode("", help="the sample task's export, once written")
    dataset_path = Unicode("", help="the folder prepare_dataset wrote last")
    report = Unicode("", help="the dataset report of the current source, as text")
    checks = Int(0, help="how many times a source was checked: its pictures follow each")
    shown_frames = Int(SHOWN_FRAMES, min=0, help="frames drawn with their annotations")
    drawing = Bool(False, help="the pictures are being drawn")
    labels_picture = Bytes(b"", help="shapes per label, a bar chart as a PNG")
    sizes_picture = Bytes(b"", help="object sizes, a histogram as a PNG")
    frames_picture = Bytes(b"", help="the first frames with their annotations, as a PNG")
    error = Unicode("", help="what went wrong last, as the user should read it")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = None
        self.last_report: Report | None = None
        self._checked: _Checked | None = None
        self.figures: dict[str, Any] = {}
        """The pictures as matplotlib figures, by name (``PICTURES``)."""

    # -- what the rest of the app reads ----------------------------------------------------

    @property
    def source_uri(self) -> str:
        """The current source as ``cvatkit prepare`` takes it ('' if none is chosen)."""
        if self.mode == "server":
            if self.project_id is not None:
                return f"cvat://project/{self.project_id}"
            return "" if self.task_id is None else f"cvat://{self.task_id}"
        return self.export_path.strip() if self.mode == "export" else self.sample_path

    @property
    def client(self):
        """The logged-in CVAT client (None when not connected): other steps (pre-annotation,
        inference on ``cvat://`` frames) use the same session."""
        return self._client

    def shown_tasks(self) -> list[TaskSummary]:
        """The tasks that match ``search``."""
        return self._matching(self.tasks)

    def shown_sources(self) -> list[TaskSummary]:
        """The projects, then the tasks, that match ``search``."""
        return self._matching(self.projects) + self._matching(self.tasks)

    def _matching(self, found: list[TaskSummary]) -> list[TaskSummary]:
        needle = self.search.strip().lower()
        if not needle:
            return list(found)
        return [t for t in found
                if needle in f"{t.id} {t.name} {t.status} {' '.join(t.labels)}".lower()]

    def to_dict(self) -> dict[str, Any]:
        """The choice, without credentials (safe to log or save)."""
        return {name: getattr(self, name) for name in self.trait_names()
                if name not in ("tasks", "projects", "report")
                and not name.endswith("_picture")}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v not in ("", None))
        return f"DataState({fields})"

    # -- actions (buttons call these; errors land in .error) --------------------------------

    @reports_errors()
    def connect(self, *, token: str = "", password: str = "") -> bool:
        """Log in to ``host`` with ``token`` (a Personal Access Token), else ``user`` and
        ``password``, else the environment's credentials, and list its tasks. The secret is
        used for the login only: the client keeps the session."""
        self.close()
        token = token or None
        client = connect(self.host.strip() or None, access_token=token,
                         user=None if token else (self.user.strip() or None),
                         password=None if token else (password or None))
        self._client = client
        self.connected_to = server_host(client)
        self.mode = "server"
        self._list_tasks()
        return True

    @reports_errors()
    def refresh_tasks(self) -> bool:
        """List the server's tasks again."""
        self._list_tasks()
        return True

    @reports_errors()
    def select_task(self, task_id: int | None) -> bool:
        """Pick a server task (its report is made by ``load_report``: that reads the task)."""
        if task_id is not None and self.tasks and task_id not in {t.id for t in self.tasks}:
            raise UsageError(f"task {task_id} is not among the tasks of "
                             f"{self.connected_to or 'the server'}; refresh the list")
        self._pick(task_id, None)
        return True

    @reports_errors()
    def select_project(self, project_id: int | None) -> bool:
        """Pick a server project: all its tasks, with its labels."""
        if project_id is not None and project_id not in {p.id for p in self.projects}:
            raise UsageError(f"project {project_id} is not among the projects of "
                             f"{self.connected_to or 'the server'}; refresh the list")
        self._pick(None, project_id)
        return True

    def _pick(self, task_id: int | None, project_id: int | None) -> None:
        if (task_id, project_id) != (self.task_id, self.project_id) or self.mode != "server":
            self._forget_report()
        self.task_id, self.project_id = task_id, project_id
        self.mode = "server"

    @reports_errors()
    def select_source(self, uri: str | None) -> bool:
        """Pick ``cvat://TASK_ID`` or ``cvat://project/PROJECT_ID`` (None: nothing)."""
        found = parse_cvat_uri(uri) if uri else None
        if found is None:
            return self.select_task(None)
        kind, number = found
        return self.select_project(number) if kind == "project" else self.select_task(number)

    def _forget_report(self) -> None:
        self.report = ""
        self.last_report = None
        self._forget_pictures()

    @reports_errors()
    def use_sample(self, out_dir: str | os.PathLike[str] | None = None, *,
                   frames: int = SAMPLE_FRAMES) -> bool:
        """Write the built-in sample task into ``out_dir`` and show its report."""
        if out_dir is not None:
            self.sample_dir = os.fspath(out_dir)
        if not self.sample_dir.strip():
            raise UsageError("give a folder for the sample task")
        task = write_sample(self.sample_dir.strip(), frames=frames, overwrite=True)
        self.sample_path = str(task.task)
        self.mode = "sample"
        self._load_report()
        return True

    @reports_errors()
    def use_export(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Use the CVAT export at ``path`` (default: ``export_path``) and show its report."""
        if path is not None:
            self.export_path = os.fspath(path)
        if not self.export_path.strip():
            raise UsageError("give the path of a CVAT export (a .zip or a folder)")
        self.mode = "export"
        self._load_report()
        return True

    @reports_errors()
    def use_upload(self, name: str, content: bytes) -> bool:
        """Keep an export uploaded from the browser (a CVAT export .zip) in
        ``upload_dir`` and use it, as ``use_export`` does."""
        base = Path(name).name
        if not base.lower().endswith(".zip"):
            raise UsageError(f"{name!r} is not a .zip: upload the zip CVAT exports "
                             "(Actions > Export task dataset)")
        if not content:
            raise UsageError(f"{base} is empty; export the task from CVAT again")
        dest = write_bytes_file(Path(self.upload_dir).expanduser() / base, bytes(content))
        return self.use_export(dest)

    @reports_errors()
    def load_report(self) -> bool:
        """Read the current source and show what it holds and what is wrong with it."""
        self._load_report()
        return True

    @reports_errors()
    def prepare_dataset(self, out_dir: str | os.PathLike[str], *, overwrite: bool = False,
                        val_fraction: float = 0.1, progress: Progress = no_progress,
                        reuse: bool = False, masks: str = "auto") -> Dataset | None:
        """Write the current source as a training dataset (TFRecords) into ``out_dir``
        (``reuse``: keep the one there if it was made from the same annotations and
        masks; ``masks`` as ``prepare`` takes it, e.g. the chosen model's ``spec.masks``).

        Returns the ``Dataset`` (its ``path`` is what ``plan_run`` takes), or None with the
        reason in ``error``."""
        source = self._open()
        try:
            ds = prepare(source, out_dir, val_fraction=val_fraction, overwrite=overwrite,
                         progress=progress, reuse=reuse, masks=masks)
        finally:
            source.close()
        if self._checked is not None and self._checked.key != (self.mode, self.source_uri):
            self._forget_pictures()  # they show another source
        self.last_report = ds.report
        self.report = ds.report.format(max_problems=REPORT_PROBLEMS)
        self.dataset_path = str(ds.path)
        return ds

    @reports_errors()
    def draw_pictures(self) -> bool:
        """Draw the last checked source's pictures (``PICTURES``): the charts from what
        the check read, then its first ``shown_frames`` frames, whose images are read now.
        Pictures of a source checked before another are dropped. Blocks: the panel calls
        it in a thread."""
        checked = self._checked
        if checked is None:
            raise UsageError("check a task first: the pictures show what it holds")
        self.drawing = True
        try:
            report = checked.report
            colors = label_colors(report.labels)
            counts = {n: report.shapes_per_label.get(n, 0) for n in report.labels}
            self._show(checked, "labels", labels_figure(counts, colors=colors))
            self._show(checked, "sizes", sizes_figure(checked.sizes))
            if checked.frames:
                source = checked.reopen()
                try:
                    fig = annotated_frames_figure(source, checked.frames, columns=COLUMNS,
                                                  colors=colors)
                finally:
                    source.close()
                self._show(checked, "frames", fig)
        finally:
            self.drawing = False
        return True

    def close(self) -> None:
        """End the server session, if any."""
        client, self._client = self._client, None
        self.connected_to = ""
        if client is not None:
            disconnect(client)

    # -- helpers -------------------------------------------------------------------------

    @observe("mode")
    def _mode_changed(self, change) -> None:
        self.report = ""
        self.last_report = None
        self._forget_pictures()

    def _show(self, checked: _Checked, name: str, fig) -> None:
        if self._checked is not checked:
            return  # another source was checked meanwhile
        png = figure_png(fig)
        self.figures = {**self.figures, name: fig}
        setattr(self, f"{name}_picture", png)

    def _forget_pictures(self) -> None:
        self._checked = None
        self.figures = {}
        for name in PICTURES:
            setattr(self, f"{name}_picture", b"")

    def _list_tasks(self) -> None:
        if self._client is None:
            raise UsageError("connect to a CVAT server first")
        self.projects = list_projects(self._client)
        self.tasks = list_tasks(self._client)
        if self.task_id is not None and self.task_id not in {t.id for t in self.tasks}:
            self.task_id = None
        if self.project_id is not None and self.project_id not in {
                p.id for p in self.projects}:
            self.project_id = None

    def _open(self) -> Source:
        return self._opener()()

    def _opener(self) -> Callable[[], Source]:
        """How to open the current source, now or later (a missing choice is refused
        now)."""
        if self.mode == "server":
            if self._client is None:
                raise UsageError("connect to a CVAT server first")
            if not self.source_uri:
                raise UsageError("pick a task or a project from the list first")
            uri, client, jobs = self.source_uri, self._client, self.jobs
            parse_jobs(jobs)  # a mistake is said now, not when the source is read
            return lambda: open_source(uri, client=client, jobs=jobs)
        if self.mode == "export":
            if not self.export_path.strip():
                raise UsageError("give the path of a CVAT export (a .zip or a folder)")
            path = Path(self.export_path.strip()).expanduser()
            return lambda: open_export(path)
        if not self.sample_path:
            raise UsageError("write the sample task first ('Use the sample task')")
        sample = self.sample_path
        return lambda: open_export(sample)

    def _load_report(self) -> None:
        self.report = ""
        self._forget_pictures()
        opener = self._opener()
        source = opener()
        try:
            frames, report = check_frames(source)
        finally:
            source.close()
        self.last_report = report
        self._checked = _Checked(key=(self.mode, self.source_uri), report=report,
                                 frames=tuple(frames[:self.shown_frames]),
                                 sizes=tuple(box_sizes(frames)), reopen=opener)
        self.report = report.format(max_problems=REPORT_PROBLEMS)
        self.checks += 1


def task_row(task: TaskSummary) -> str:
    """One line of the task list (a project's says so, and how many tasks it has)."""
    labels = ", ".join(task.labels) or "no labels"
    if task.extra.get("kind") == "project":
        return (f"project #{task.id}  {task.name}  ·  {task.extra.get('tasks', '?')} tasks  ·  "
                f"{task.status or '?'}  ·  {labels}")
    return (f"#{task.id}  {task.name}  ·  {task.frames} frames  ·  {task.status or '?'}"
            f"  ·  {labels}")


class DataPanel(W.VBox):
    """Controls over a ``DataState``: source mode, server login, task list, report and
    the task's pictures.

    ``background``: the pictures are drawn in a thread after each check, so the page
    stays responsive (tests pass False)."""

    def __init__(self, state: DataState | None = None, *, background: bool = True,
                 **kwargs: Any) -> None:
        self.state = s = state if state is not None else DataState()
        self.actions = Background(background, "cvatkit-data")
        wide = W.Layout(width="min(100%, 640px)")
        self.mode = W.ToggleButtons(options=[("Sample task", "sample"),
                                             ("CVAT export", "export"),
                                             ("CVAT server", "server")])
        self.sample_dir = W.Text(description="Folder", layout=wide)
        self.sample_button = W.Button(description="Use the sample task", icon="magic",
                                      layout=W.Layout(width="auto"))
        self.export_path = W.Text(description="Export", layout=wide,
                                  placeholder="a CVAT export: task.zip or its folder")
        self.export_button = W.Button(description="Open export", icon="folder-open")
        self.upload = W.FileUpload(accept=".zip", multiple=False,
                                   description="Upload a .zip", layout=W.Layout(width="auto"))
        self.upload_note = W.HTML(
            "<small>or upload the zip CVAT exports (up to the server's message size, "
            "10 MB by default; give bigger exports by their path on this machine)</small>")
        self.host = W.Text(description="Server", placeholder="https://app.cvat.ai")
        self.user = W.Text(description="User", placeholder="with a password")
        self.token = W.Password(description="Token", placeholder="Personal Access Token")
        self.password = W.Password(description="Password")
        self.connect_button = W.Button(description="Connect", icon="plug")
        self.connection = W.HTML()
        self.search = W.Text(description="Search", placeholder="id, name, status or label",
                             continuous_update=True)
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.tasks = W.Select(options=[], rows=8, layout=W.Layout(width="100%"))
        self.jobs = W.Combobox(description="Jobs", options=list(JOB_CHOICES),
                               ensure_option=False, layout=wide,
                               placeholder="auto, finished, all, or stages and states")
        self.jobs_note = W.HTML(
            "<small>auto: the frames of finished jobs (completed, or in validation or "
            "acceptance), or all frames when none is finished; or list stages and states, "
            "e.g. <code>completed</code></small>")
        self.check_button = W.Button(description="Check task", icon="check")
        self.report = W.HTML()
        self.error = W.HTML()
        self.drawing = W.HTML()
        self.labels_picture = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.sizes_picture = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.frames_picture = W.Image(format="png", layout=W.Layout(max_width="100%"))

        for name in ("mode", "sample_dir", "export_path", "host", "user", "search", "jobs"):
            W.link((s, name), (getattr(self, name), "value"))
        self.sample_button.on_click(lambda _b: s.use_sample())
        self.export_button.on_click(lambda _b: s.use_export())
        self.upload.observe(self._on_upload, names="value")
        self.connect_button.on_click(self._connect)
        self.refresh_button.on_click(lambda _b: s.refresh_tasks())
        self.check_button.on_click(lambda _b: s.load_report())
        self.tasks.observe(self._on_pick, names="value")
        s.observe(self._show_tasks, names=["tasks", "projects", "search"])
        s.observe(self._show_selected, names=["task_id", "project_id"])
        s.observe(self._show_mode, names="mode")
        s.observe(self._show_text, names=["report", "error", "connected_to", "tasks"])
        for name in PICTURES:
            W.dlink((s, f"{name}_picture"), (getattr(self, f"{name}_picture"), "value"))
        s.observe(lambda _change: self.actions.run(s.draw_pictures), names="checks")
        s.observe(self._show_pictures,
                  names=["drawing", *(f"{name}_picture" for name in PICTURES)])

        self._sample_box = W.HBox([self.sample_dir, self.sample_button])
        self._export_box = W.VBox([W.HBox([self.export_path, self.export_button]),
                                   W.HBox([self.upload, self.upload_note])])
        self._server_box = W.VBox([
            W.HBox([self.host, self.connect_button]),
            W.HBox([self.token, W.HTML("&nbsp;or&nbsp;"), self.user, self.password]),
            self.connection,
            W.HBox([self.search, self.refresh_button]),
            W.HTML("<small>projects, then tasks: #id · name · frames · status · "
                   "labels</small>"),
            self.tasks, self.jobs, self.jobs_note, self.check_button])
        charts = W.HBox([self.labels_picture, self.sizes_picture],
                        layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        super().__init__([self.mode, self._sample_box, self._export_box, self._server_box,
                          self.error, self.report, self.drawing, charts,
                          self.frames_picture], **kwargs)
        self._show_tasks()
        self._show_mode()
        self._show_text()
        self._show_pictures()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the pictures being drawn in the background (for scripts and tests)."""
        self.actions.wait(timeout)

    def close(self) -> None:
        self.state.close()
        super().close()

    def _on_upload(self, change) -> None:
        files = list(change.new or ())
        if not files:
            return
        item = files[0]
        name = item["name"] if isinstance(item, dict) else item.name
        content = item["content"] if isinstance(item, dict) else item.content
        self.upload.value = ()  # the bytes are not kept in the widget
        self.state.use_upload(name, bytes(content))

    def _connect(self, _button=None) -> None:
        """Take the secrets out of their boxes (emptying them at once, so they neither stay
        in the page nor in any saved widget state) and log in with them."""
        token, password = self.token.value, self.password.value
        self.token.value = self.password.value = ""
        self.state.connect(token=token, password=password)

    def _on_pick(self, change) -> None:
        if change.new is not None and change.new != self.state.source_uri:
            self.state.select_source(change.new)

    def _show_tasks(self, _change=None) -> None:
        shown = self.state.shown_sources()
        self.tasks.options = [(task_row(t), t.source) for t in shown]
        picked = self.state.source_uri
        self.tasks.value = picked if picked in {t.source for t in shown} else None

    def _show_selected(self, _change=None) -> None:
        picked = self.state.source_uri
        values = {value for _label, value in self.tasks.options}
        self.tasks.value = picked if picked in values else None

    def _show_mode(self, _change=None) -> None:
        for mode, box in (("sample", self._sample_box), ("export", self._export_box),
                          ("server", self._server_box)):
            box.layout.display = "" if self.state.mode == mode else "none"

    def _show_text(self, _change=None) -> None:
        s = self.state
        self.report.value = pre_html(s.report)
        self.error.value = error_html(s.error)
        self.connection.value = (f"connected to {s.connected_to}: {len(s.tasks)} tasks"
                                 if s.connected_to else "")

    def _show_pictures(self, _change=None) -> None:
        s = self.state
        self.drawing.value = "<small>drawing the pictures ...</small>" if s.drawing else ""
        for name in PICTURES:
            image = getattr(self, f"{name}_picture")
            image.layout.display = "" if getattr(s, f"{name}_picture") else "none"
