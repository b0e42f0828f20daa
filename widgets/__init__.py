"""ipywidgets views over cvatkit (task picker, model form, run monitor, ...).

Each view is a plain state object (``traitlets.HasTraits``) that does the work through
cvatkit and that tests drive directly, plus a widget that lays out its controls:

- ``DataState`` / ``DataPanel``: the sample task, a CVAT export or a task on a server;
  its dataset report; ``prepare_dataset`` before training.
- ``ModelState`` / ``ModelPanel``: model, GPUs, starting checkpoint, hyperparameters
  (``key=value`` text and a form kept in step, checked as you type).
- ``MonitorState`` (``progress.py``) / ``RunMonitor`` (``monitor.py``): Start/Stop/Resume,
  re-attaching to earlier runs, live loss, learning-rate and AP plots.
"""

from .data import DataPanel, DataState
from .model import ModelPanel, ModelState
from .monitor import MonitorState, RateLimiter, RunMonitor

__all__ = ["DataPanel", "DataState", "ModelPanel", "ModelState", "MonitorState",
           "RateLimiter", "RunMonitor"]
