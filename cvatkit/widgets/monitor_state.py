"""A training run's progress, read from its folder: what the run monitor shows.

The trainer is its own process writing its run directory (``status.json``,
``events.jsonl``); ``MonitorState.poll()`` reads the events written since its last call
(never blocking) into a ``cvatkit.RunProgress`` (one series per plotted quantity, the
state, speed and time left), and mirrors what the status line shows in traits. It also
starts, stops and resumes runs through ``cvatkit.training``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from traitlets import Float, HasTraits, Int, List, Unicode

from cvatkit import TERMINAL, Run, RunProgress, UsageError, list_runs, new_run_path
from cvatkit.training import RunPlan, read_record, resume_run, start_run, stop_run

from ._errors import error_text, reports_errors


class MonitorState(HasTraits):
    """A run folder's progress as the plots and the status line need it."""

    runs_root = Unicode("runs", help="the folder that holds run folders")
    runs = List(help="run folders under runs_root, newest first")
    run_dir = Unicode("", help="the attached run ('' for none)")
    state = Unicode("", help="the run's state: starting, running, ..., or '' if none")
    step = Int(0)
    total_steps = Int(0)
    steps_per_sec = Float(0.0, help="training speed of the last logged interval")
    eta_seconds = Float(None, allow_none=True, help="time left, while training")
    run_error = Unicode("", help="why the run failed, as the trainer said")
    message = Unicode("", help="the trainer's last status message")
    error = Unicode("", help="why the last action (start, stop, ...) did not work")
    activity = Unicode("", help="what Start is doing before the run exists (preparing "
                                "the dataset, ...); '' when nothing")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.RLock()
        """Held while the series change (poll) or are read (a redraw in another thread)."""
        self._reset()

    def _reset(self, total_steps: int = 0) -> None:
        self._offset = 0
        self.progress = RunProgress(total_steps)
        """The attached run's curves, step, speed and verdict."""

    @property
    def active(self) -> bool:
        """Whether the attached run is starting, training or stopping."""
        return bool(self.run_dir) and self.progress.active

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    # -- reading -----------------------------------------------------------------------

    def poll(self) -> bool:
        """Read what the trainer wrote since the last call; whether anything changed.
        Never blocks and never raises (a problem goes to ``error``)."""
        if not self.run_dir:
            return False
        try:
            with self.lock:
                return self._poll(Run(self.run_dir))
        except Exception as e:  # noqa: BLE001  (the poller must go on; the user reads it)
            text = error_text(e)
            changed = text != self.error
            self.error = text
            return changed

    def _poll(self, run: Run) -> bool:
        events, self._offset = run.read_events(self._offset)
        p = self.progress
        for event in events:
            p.on_event(event)
        p.on_status(run.status())
        last = p.last_status
        message = "" if last is None else (
            f"{last.state}: {last.message}" if last.message else last.state)
        before = self._snapshot()
        with self.hold_trait_notifications():
            self.state, self.run_error, self.step = p.state, p.error, p.step
            self.total_steps, self.steps_per_sec = p.total_steps, p.steps_per_sec
            self.eta_seconds, self.message = p.eta(), message
        return bool(events) or self._snapshot() != before

    def _snapshot(self) -> tuple:
        return (self.state, self.run_error, self.step, self.total_steps, self.steps_per_sec,
                self.eta_seconds, self.message)

    def summary(self) -> str:
        """The status line: what Start is doing, else the run's own (``RunProgress``)."""
        if self.activity:
            return self.activity
        if not self.run_dir:
            return "no run attached"
        return self.progress.summary()

    # -- actions (buttons call these; errors land in .error) ----------------------------

    @reports_errors()
    def attach(self, run_dir: str | os.PathLike[str]) -> bool:
        """Follow the run in ``run_dir`` (any run: running, stopped or finished)."""
        run = Run(run_dir)
        record = read_record(run)  # a RunError says what is wrong with the folder
        with self.lock:
            self._reset(record.hparams.num_steps)
            self.message = self.run_error = ""
            self.run_dir = str(run.path)
            self._poll(run)
        return True

    @reports_errors()
    def start(self, plan: RunPlan, run_dir: str | os.PathLike[str] | None = None) -> bool:
        """Start training ``plan`` in its own process, in ``run_dir`` (default: a new
        folder under ``runs_root``), and attach to it."""
        run_dir = run_dir if run_dir is not None else self.new_run_dir(plan.spec.key)
        start_run(plan, run_dir, detach=True)
        self._list_runs()
        self.attach(run_dir)
        return not self.error

    @reports_errors()
    def stop(self, *, wait: float = 120.0) -> str | None:
        """Ask the trainer to save a checkpoint and stop (waits up to ``wait`` s);
        the state it ended in."""
        self._need_run()
        state = stop_run(self.run_dir, wait=wait)
        self.poll()
        return state

    @reports_errors()
    def resume(self) -> bool:
        """Start the trainer of a stopped or failed run again from its last checkpoint."""
        self._need_run()
        resume_run(self.run_dir)
        self.poll()
        return True

    @reports_errors()
    def list_runs(self) -> list[str]:
        """The run folders under ``runs_root``, newest first (also kept in ``runs``)."""
        return self._list_runs()

    def new_run_dir(self, name: str) -> str:
        """A fresh folder under ``runs_root`` (``new_run_path``)."""
        return str(new_run_path(self.runs_root, name))

    def _list_runs(self) -> list[str]:
        self.runs = [str(p) for p in list_runs(self.runs_root)]
        return list(self.runs)

    @staticmethod
    def describe_run(run_dir: str) -> str:
        """How the run picker names a run: its folder and state."""
        name = Path(run_dir).name
        try:
            st = Run(run_dir).status()
        except Exception:  # noqa: BLE001  (a damaged folder still gets a name)
            return f"{name} (damaged)"
        if not st.state:
            return name
        return f"{name} ({'trainer gone' if st.gone else st.state})"

    def _need_run(self) -> None:
        if not self.run_dir:
            raise UsageError("no run is attached: start one, or pick an earlier run")
