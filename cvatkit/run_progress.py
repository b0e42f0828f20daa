"""What a run's events add up to: its curves, step, speed, time left and final verdict.

``RunProgress`` is fed the events of a run (``Run.follow()`` or ``Run.read_events()``), one
at a time, and reports what every view of a run shows: the command line's progress bar,
the batch pipeline's lines and the run monitor's plots all read it, so they agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .runs import TERMINAL, EvalEvent, Event, Status, StatusEvent, StepEvent

ACTIVE = ("starting", "running", "stopping")


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

    def cut(self, step: int) -> None:
        """Drop the points past ``step``."""
        while self.steps and self.steps[-1] > step:
            self.steps.pop()
            self.values.pop()

    def __len__(self) -> int:
        return len(self.steps)


class RunProgress:
    """A run's progress, from its events (``on_event``) and, for pollers, its status file
    (``on_status``)."""

    def __init__(self, total_steps: int = 0) -> None:
        self.total_steps = total_steps
        self.step = 0
        self.steps_per_sec = 0.0
        self.state = "starting"
        self.message = ""
        """The trainer's last status message (where it exported, why it stopped)."""
        self.error = ""
        """Why the run failed, as the trainer said (or that its process is gone)."""
        self.last_eval: EvalEvent | None = None
        self.best_eval: EvalEvent | None = None
        """The evaluation whose checkpoint is the run's best (the highest AP so far)."""
        self.last_status: StatusEvent | None = None
        self.losses: dict[str, Series] = {}
        """One series per loss component the model reports (cls_loss, box_loss, ...)."""
        self.total_loss = Series()
        self.learning_rate = Series()
        self.ap = Series()
        self.ap50 = Series()

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepEvent):
            for name, value in event.losses.items():
                self.losses.setdefault(name, Series()).add(event.step, value)
            self.total_loss.add(event.step, event.total_loss)
            self.learning_rate.add(event.step, event.learning_rate)
            self.steps_per_sec = event.steps_per_sec
            self.step = event.step
            if self.state == "starting":
                self.state = "running"
        elif isinstance(event, EvalEvent):
            self.ap.add(event.step, event.ap)
            self.ap50.add(event.step, event.ap50)
            self.last_eval = event
            if event.best:
                self.best_eval = event
        elif isinstance(event, StatusEvent):
            self.last_status = event
            self.state, self.message, self.step = event.state, event.message, event.step
            if event.state == "failed":
                self.error = event.message
            if event.resumed_from is not None:  # what was logged past it is superseded
                for series in (*self.losses.values(), self.total_loss, self.learning_rate,
                               self.ap, self.ap50):
                    series.cut(event.resumed_from)
                if self.last_eval is not None and self.last_eval.step > event.resumed_from:
                    self.last_eval = None
                if self.best_eval is not None and self.best_eval.step > event.resumed_from:
                    self.best_eval = None

    def on_status(self, status: Status) -> None:
        """The run's status as ``Run.status()`` reads it now (pollers): its state (failed
        when its trainer is gone without a word), step and error."""
        self.state, self.error = status.state, status.error
        self.step = max(status.step, self.total_loss.steps[-1] if self.total_loss else 0)
        self.total_steps = status.total_steps or self.total_steps

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def eta(self) -> float | None:
        """Seconds left at the current speed, while training; None otherwise."""
        if self.active and self.steps_per_sec > 0 and self.total_steps > self.step:
            return (self.total_steps - self.step) / self.steps_per_sec
        return None

    def summary(self) -> str:
        """The status line: state, step / total, speed, time left, last AP (and the best,
        when an earlier evaluation's was higher)."""
        parts = [self.state]
        if self.total_steps:
            pct = 100 * self.step / self.total_steps
            parts.append(f"step {self.step} / {self.total_steps} ({pct:.0f}%)")
        elif self.step:
            parts.append(f"step {self.step}")
        if self.steps_per_sec and self.active:
            parts.append(f"{self.steps_per_sec:.2f} steps/s")
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        if self.last_eval is not None:
            parts.append(f"AP {self.last_eval.ap:.3f}, AP@0.5 {self.last_eval.ap50:.3f}")
        best = self.best_eval
        if best is not None and best is not self.last_eval:
            parts.append(f"best AP {best.ap:.3f} at step {best.step}")
        return " · ".join(parts)

    def failure(self, run_dir: str | os.PathLike[str]) -> str | None:
        """Why the run has no model to use (it failed, or ended before its last step,
        with how to resume it); None when it completed."""
        if self.state == "completed":
            return None
        if self.state == "failed":
            why = self.error or self.message or f"see trainer.log in {run_dir}"
            return f"training failed: {why}"
        if self.state == "queued":
            return (f"queued: its trainers are started elsewhere (`cvatkit worker {run_dir}` "
                    "in each of a cluster's workers)")
        why = f" ({self.message})" if self.message else ""
        return (f"training {self.state} at step {self.step} of {self.total_steps} before it "
                f"completed{why}; resume it with `cvatkit train --resume {run_dir}`")


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
