"""ipywidgets views over cvatkit (task picker, model form, run monitor, ...).

Each view is a plain state object (``traitlets.HasTraits``) that does the work through
cvatkit and that tests drive directly, plus a widget that lays out its controls:

- ``DataState`` / ``DataPanel``: the sample task, a CVAT export or a task on a server;
  its dataset report and pictures (shapes per label, object sizes, the first frames);
  ``prepare_dataset`` before training.
- ``ModelState`` / ``ModelPanel``: model, GPUs, starting checkpoint, hyperparameters
  (``key=value`` text and a form kept in step, checked as you type).
- ``MonitorState`` (``monitor_state.py``) / ``RunMonitor`` (``monitor.py``):
  Start/Stop/Resume, re-attaching to earlier runs, live loss, learning-rate and AP plots.
- ``InferenceState`` / ``InferenceViewer``: a model's predictions on test frames (made
  once), a score-threshold slider that only filters them, the gallery and the evaluation.
- ``PublishState`` / ``PublishPanel``: publishing a run to the model store.
- ``AnnotateState`` / ``AnnotatePanel``: pre-annotating a CVAT task or an export, the label
  mapping previewed first.
- ``AppState`` / ``App``: the steps as tabs, passing results from one to the next.

``TraitProgress`` shows a job's progress (``cvatkit.Progress``) on a state's traits.
``plain_errors()`` makes a notebook show cvatkit's errors as their message, without a
traceback.
"""

from ._errors import plain_errors
from ._progress import TraitProgress
from .annotate import AnnotatePanel, AnnotateState
from .app import App, AppState
from .data import DataPanel, DataState
from .inference import InferenceState, InferenceViewer
from .model import ModelPanel, ModelState
from .monitor import RateLimiter, RenderMeter, RunMonitor
from .monitor_state import MonitorState
from .publish import PublishPanel, PublishState

__all__ = ["AnnotatePanel", "AnnotateState", "App", "AppState", "DataPanel", "DataState",
           "InferenceState", "InferenceViewer", "ModelPanel", "ModelState", "MonitorState",
           "PublishPanel", "PublishState", "RateLimiter", "RenderMeter", "RunMonitor",
           "TraitProgress", "plain_errors"]
