"""A training run's progress, read from its folder: what the run monitor shows.

The trainer is its own process writing its run directory (``status.json``,
``events.jsonl``); ``MonitorState.poll()`` reads the events written since its last call
(never blocking) and keeps one series per plotted quantity, the state, speed and ETA.
It also starts, stops and resumes runs through cvatkit.trainer.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import Float, HasTraits, Int, List, Unicode

from cvatkit.errors import UsageError
from cvatkit.runs import RUN_JSON, TERMINAL, EvalEvent, Run, StatusEvent, StepEvent
from cvatkit.trainer import RunPlan, resume_run, start_run, stop_run

from ._errors import error_text, reports_errors

ACTIVE = ("starting", "running", "stopping")
LOST = ("the trainer process ended without a word (killed, or out of memory?); see "
        "trainer.log in the run folder, and resume the run")


@dataclass
class Series:
    """One plotted quantity: its values by step."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: int, value: float) -> None:
        # A resumed run logs again from its last checkpoint: those points replace the old.
        while self.steps and self.steps[-1] >= step:
            self.steps.pop()
            self.values.pop()
        self.steps.append(step)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.steps)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


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

    def _reset(self) -> None:
        self._offset = 0
        self._speed = 0.0
        self.losses: dict[str, Series] = {}
        """One series per loss component the model reports (cls_loss, box_loss, ...)."""
        self.total_loss = Series()
        self.learning_rate = Series()
        self.ap = Series()
        self.ap50 = Series()
        self.last_eval: EvalEvent | None = None
        self._spec_total = 0

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
        for event in events:
            self._apply(event)
        st = run.status()
        state, run_error = st.state, st.error
        if state not in TERMINAL and st.pid and not run.is_alive():
            state, run_error = "failed", run_error or LOST
        step = max(st.step, self.total_loss.steps[-1] if self.total_loss else 0)
        total = st.total_steps or self._spec_total
        speed = self._speed
        eta = ((total - step) / speed if state in ACTIVE and speed > 0 and total > step
               else None)
        before = self._snapshot()
        with self.hold_trait_notifications():
            self.state, self.run_error, self.step = state, run_error, step
            self.total_steps, self.steps_per_sec, self.eta_seconds = total, speed, eta
        return bool(events) or self._snapshot() != before

    def _snapshot(self) -> tuple:
        return (self.state, self.run_error, self.step, self.total_steps, self.steps_per_sec,
                self.eta_seconds, self.message)

    def _apply(self, event) -> None:
        if isinstance(event, StepEvent):
            for name, value in event.losses.items():
                self.losses.setdefault(name, Series()).add(event.step, value)
            self.total_loss.add(event.step, event.total_loss)
            self.learning_rate.add(event.step, event.learning_rate)
            self._speed = event.steps_per_sec
        elif isinstance(event, EvalEvent):
            self.ap.add(event.step, event.ap)
            self.ap50.add(event.step, event.ap50)
            self.last_eval = event
        elif isinstance(event, StatusEvent):
            self.message = f"{event.state}: {event.message}" if event.message else event.state

    def summary(self) -> str:
        """The status line: state, step / total, speed, ETA, last AP."""
        if self.activity:
            return self.activity
        if not self.run_dir:
            return "no run attached"
        parts = [self.state or "starting"]
        if self.total_steps:
            pct = 100 * self.step / self.total_steps
            parts.append(f"step {self.step} / {self.total_steps} ({pct:.0f}%)")
        elif self.step:
            parts.append(f"step {self.step}")
        if self.steps_per_sec and self.state in ACTIVE:
            parts.append(f"{self.steps_per_sec:.2f} steps/s")
        if self.eta_seconds is not None:
            parts.append(f"ETA {format_duration(self.eta_seconds)}")
        if self.last_eval is not None:
            parts.append(f"AP {self.last_eval.ap:.3f}, AP@0.5 {self.last_eval.ap50:.3f}")
        return " · ".join(parts)

    # -- actions (buttons call these; errors land in .error) ----------------------------

    @reports_errors()
    def attach(self, run_dir: str | os.PathLike[str]) -> bool:
        """Follow the run in ``run_dir`` (any run: running, stopped or finished)."""
        run = Run(run_dir)
        spec = run.spec()  # a RunError says what is wrong with the folder
        with self.lock:
            self._reset()
            self._spec_total = int(spec.get("hparams", {}).get("num-steps", 0) or 0)
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
        """A fresh folder name under ``runs_root``: ``YYYYmmdd-HHMMSS-name``."""
        root = Path(self.runs_root).expanduser()
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        path, n = root / base, 2
        while path.exists():
            path, n = root / f"{base}-{n}", n + 1
        return str(path)

    def _list_runs(self) -> list[str]:
        root = Path(self.runs_root).expanduser()
        found = [p for p in root.iterdir() if (p / RUN_JSON).is_file()] if root.is_dir() else []
        found.sort(key=lambda p: (p / RUN_JSON).stat().st_mtime, reverse=True)
        self.runs = [str(p) for p in found]
        return list(self.runs)

    @staticmethod
    def describe_run(run_dir: str) -> str:
        """How the run picker names a run: its folder and state."""
        name = Path(run_dir).name
        try:
            st = Run(run_dir).status()
        except Exception:  # noqa: BLE001  (a damaged folder still gets a name)
            return name
        if not st.state:
            return name
        state = st.state
        if state not in TERMINAL and st.pid and not Run(run_dir).is_alive():
            state = "trainer gone"
        return f"{name} ({state})"

    def _need_run(self) -> None:
        if not self.run_dir:
            raise UsageError("no run is attached: start one, or pick an earlier run")
