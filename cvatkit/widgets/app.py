"""The whole flow as one widget: Data -> Model -> Train -> Inference -> Publish.

``AppState`` holds each step's state and passes results along: the Data step's prepared
dataset goes to the Model step's checks and to training; the run being watched becomes
the model of the Inference step and the run to publish (and the model to pre-annotate
with); the Data step's CVAT session and task list serve the Inference (``cvat://``
frames) and Annotate steps. ``App`` shows the steps' panels in tabs. Everything a
notebook's parameters cell gives (source, model, hyperparameters, store, store namespace)
can be passed to the constructor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import link

from cvatkit import CvatkitError, UsageError, WorkFolder
from cvatkit.cvat import TEST_ZIP, parse_cvat_uri
from cvatkit.dataset import TrainingData, prepare_training_data, training_dataset_name
from cvatkit.training import RunPlan

from ._errors import error_text, log
from ._progress import TraitProgress
from .annotate import AnnotatePanel, AnnotateState
from .data import DataPanel, DataState
from .inference import InferenceState, InferenceViewer, run_frames
from .model import ModelPanel, ModelState
from .monitor import RunMonitor
from .monitor_state import MonitorState
from .publish import PublishPanel, PublishState

STEPS = ("1. Data", "2. Model", "3. Train", "4. Inference", "5. Publish")


def dataset_name(data: DataState) -> str:
    """The folder name in the work folder's ``datasets/`` for the Data step's source."""
    if data.mode == "sample":
        return training_dataset_name("sample")
    if data.mode == "server":
        return training_dataset_name(data.source_uri, host=data.connected_to)
    return training_dataset_name(data.export_path.strip().rstrip("/") or "export")


class AppState:
    """Each step's state, wired so that results pass from step to step."""

    def __init__(self, *, workdir: str | Path | None = None, source: str | None = None,
                 model: str | None = None, hparams: str | None = None,
                 store: str | None = None, store_namespace: str | None = None,
                 gpus_detected: int | None = None, weights: str | None = None,
                 jobs: str | None = None, namespace: str | None = None) -> None:
        """``namespace`` is the older name of ``store_namespace``."""
        self.work = WorkFolder.at(workdir)
        self.workdir = self.work.path
        self.data = DataState(sample_dir=str(self.work.sample),
                              upload_dir=str(self.work.uploads))
        if jobs:
            self.data.jobs = jobs
        self._prefill_source(source)
        self.model = self._model_state(model, hparams, gpus_detected)
        if weights:
            self.model.init_checkpoint = str(weights)
        self.monitor = MonitorState(runs_root=str(self.work.runs))
        self.inference = InferenceState()
        self.publish = PublishState(store=store or "",
                                    namespace=store_namespace or namespace or "")
        # One store and namespace for starting points and for publishing.
        link((self.publish, "store"), (self.model, "store"))
        link((self.publish, "namespace"), (self.model, "namespace"))
        self.annotate = AnnotateState(data=self.data)
        self._auto_frames = ""   # the frames the app filled in (the user's own are kept)

        self.data.observe(self._dataset_changed, names="dataset_path")
        self.data.observe(self._report_changed, names="report")
        self.data.observe(self._sample_written, names="sample_path")
        self.data.observe(self._connection_changed, names="connected_to")
        self.monitor.observe(self._runs_listed, names="runs")
        self.monitor.observe(self._run_attached, names="run_dir")
        self.monitor.list_runs()
        message = self.model.message
        self.model.list_runs(str(self.work.runs))  # earlier runs to start from
        self.model.message = self.model.message or message
        if self.data.sample_path:
            self._sample_written()

    @property
    def dataset_dir(self) -> Path:
        """Where the Data step's current source is prepared for training."""
        return self.work.dataset(dataset_name(self.data))

    # -- what the Train step's Start button calls ---------------------------------------

    def prepare_data(self) -> TrainingData | None:
        """The prepared datasets of the Data step's source: written now, unless those
        there were made from the same annotations; None with the reason in the Data step's
        ``error``. The sample task follows the library's rule (``prepare_training_data``):
        it trains on all its frames and is evaluated on its held-out ones."""
        data = self.data
        if data.mode == "sample" and not data.sample_path and not data.use_sample():
            return None
        self.monitor.activity = f"preparing the dataset of {data.source_uri} ..."
        split = self.model.values.get("val-split")  # the run's choice, else the default
        with TraitProgress(self.monitor, "activity",
                           prefix=f"preparing the dataset of {data.source_uri}: ") as progress:
            if data.mode == "sample" and Path(data.sample_path).parent == self.work.sample:
                prepared = prepare_training_data("sample", self.workdir, say=log.info,
                                                 progress=progress,
                                                 masks=self.model.spec.masks, val_split=split)
                data.dataset_path = str(prepared.train)
                return prepared
            ds = data.prepare_dataset(self.dataset_dir, overwrite=True, reuse=True,
                                      progress=progress, masks=self.model.spec.masks,
                                      **({} if split is None else {"val_fraction": split}))
        if ds is None:
            return None
        return TrainingData(train=ds.path, eval=None, test_source=None)

    def plan_training(self) -> RunPlan | None:
        """Prepare the data if needed and plan the run the Model step describes; None
        with the reason in the Train step's ``error`` (and the step's own)."""
        self.monitor.error = ""
        self.monitor.runs_root = str(self.work.runs)
        try:
            prepared = self.prepare_data()
            if prepared is None:
                self.monitor.error = f"the data is not ready: {self.data.error}"
                return None
            path = str(prepared.train)
            if not self.model.set_data(path):
                self.monitor.error = f"the model step: {self.model.message}"
                return None
            with TraitProgress(self.monitor, "activity") as progress:  # published weights
                plan = self.model.plan(path, eval_data=prepared.eval, progress=progress)
            if plan is None:
                self.monitor.error = f"the model step: {self.model.message}"
            return plan
        except Exception as e:  # noqa: BLE001  (the Start button must show, not raise)
            self.monitor.error = error_text(e)
            return None

    # -- wiring ---------------------------------------------------------------------------

    def _prefill_source(self, source: str | None) -> None:
        text = (source or "").strip()
        if not text or text == "sample":
            self.data.mode = "sample"
        elif text.startswith("cvat://"):
            self.data.mode = "server"
            try:
                kind, number = parse_cvat_uri(text)
            except UsageError as e:
                self.data.error = str(e)
            else:
                if kind == "project":
                    self.data.project_id = number
                else:
                    self.data.task_id = number
        else:
            self.data.export_path = text
            self.data.mode = "export"

    @staticmethod
    def _model_state(model: str | None, hparams: str | None,
                     gpus_detected: int | None) -> ModelState:
        kwargs: dict[str, Any] = {"text": hparams or ""}
        if model:
            kwargs["model"] = model
        try:
            return ModelState(gpus_detected=gpus_detected, **kwargs)
        except CvatkitError as e:  # an unknown model key: say so, keep the rest
            kwargs.pop("model", None)
            state = ModelState(gpus_detected=gpus_detected, **kwargs)
            state.message = str(e)
            return state

    def _dataset_changed(self, change) -> None:
        if change.new:
            self.model.set_data(change.new)

    def _report_changed(self, _change=None) -> None:
        report = self.data.last_report
        self.model.task_labels = list(report.labels) if report is not None else []

    def _sample_written(self, _change=None) -> None:
        test = Path(self.data.sample_path).with_name(TEST_ZIP)
        if test.is_file():
            self._add_frames(str(test))

    def _connection_changed(self, change) -> None:
        self.inference.client = self.data.client
        if change.new:
            self.annotate.target = "server"

    def _runs_listed(self, _change=None) -> None:
        runs = list(self.monitor.runs)
        self.publish.run_choices = runs
        self.inference.model_choices = list(dict.fromkeys(
            [*runs, *self.inference.model_choices]))

    def _run_attached(self, change) -> None:
        run_dir = change.new
        if not run_dir:
            return
        self.inference.model = run_dir
        self.publish.run_dir = run_dir
        self.annotate.model = run_dir
        try:
            frames = run_frames(run_dir)
        except CvatkitError:
            frames = ""
        if frames:
            self._add_frames(frames)
            if not self.inference.frames.strip() or self.inference.frames == self._auto_frames:
                self.inference.frames = self._auto_frames = frames

    def _add_frames(self, frames: str) -> None:
        self.inference.frame_choices = list(dict.fromkeys(
            [frames, *self.inference.frame_choices]))
        if not self.inference.frames.strip():
            self.inference.frames = self._auto_frames = frames

    def close(self) -> None:
        self.data.close()


class App(W.VBox):
    """The steps in tabs: Data, Model, Train (the run monitor), Inference, Publish.

    ``workdir`` (default ``$CVATKIT_WORKDIR``, else ``cvatkit-work`` in the current
    folder) holds the sample task, the prepared datasets and the runs; the other
    arguments prefill the steps (a notebook passes its parameters; ``namespace`` is the
    older name of ``store_namespace``). ``background`` and
    ``autopoll`` are for tests: False runs every action in the caller's thread."""

    def __init__(self, *, workdir: str | Path | None = None, source: str | None = None,
                 model: str | None = None, hparams: str | None = None,
                 store: str | None = None, store_namespace: str | None = None,
                 weights: str | None = None, background: bool = True,
                 autopoll: bool = True, gpus_detected: int | None = None,
                 jobs: str | None = None, namespace: str | None = None,
                 **kwargs: Any) -> None:
        self.state = s = AppState(workdir=workdir, source=source, model=model,
                                  hparams=hparams, store=store,
                                  store_namespace=store_namespace or namespace,
                                  gpus_detected=gpus_detected, weights=weights, jobs=jobs)
        self.data = DataPanel(s.data, background=background)
        self.model = ModelPanel(s.model, background=background)
        self.monitor = RunMonitor(s.monitor, plan=s.plan_training, autopoll=autopoll,
                                  background=background)
        self.inference = InferenceViewer(s.inference, background=background)
        self.publish = PublishPanel(s.publish, background=background)
        self.annotate = AnnotatePanel(s.annotate, background=background)
        self.tabs = W.Tab(children=[self.data, self.model, self.monitor, self.inference,
                                    W.VBox([self.publish, self.annotate])], titles=STEPS)
        super().__init__([self.tabs], **kwargs)

    def show(self, step: str) -> None:
        """Open a step's tab by its name (``"Inference"``) or title."""
        for i, title in enumerate(STEPS):
            if step.lower() in title.lower():
                self.tabs.selected_index = i
                return
        raise ValueError(f"no step {step!r}; the steps are {', '.join(STEPS)}")

    def close(self) -> None:
        for panel in (self.data, self.model, self.monitor, self.inference, self.publish,
                      self.annotate):
            panel.close()
        self.state.close()
        super().close()
