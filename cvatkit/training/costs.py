"""Where a run's time goes, phase by phase, in CPU-seconds (every thread of the trainer
process: ``time.process_time``) and wall seconds.

- ``start-up``: from the trainer process's start to its first training call: imports,
  building the model, its inputs and loading its starting weights;
- ``tracing``: what the first call of the compiled training step cost beyond the steps it
  ran (tracing and compiling the ``tf.function``), at the later calls' cost per step (all
  of it while there was no later call);
- ``steps``: training, with the input pipeline that feeds it (both run in the step's
  threads, so they are counted together);
- ``checkpoints``, ``evaluation`` (the evaluations and keeping the best checkpoint) and
  ``export``;
- ``other``: the rest (events, summaries, status), so that the phases add up to all the
  process spent.

The run's record keeps them (``RunRecord.costs``, a ``PhaseCosts``; a resumed run adds
its process's to them), so the trade-offs of a recipe are visible: ``cvatkit train``
prints them at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..processes import start_time

PHASES = ("start-up", "tracing", "steps", "checkpoints", "evaluation", "export", "other")


@dataclass(frozen=True, kw_only=True)
class PhaseCosts:
    """What a run's trainer processes have spent, phase by phase (``PHASES``)."""

    cpu_s: dict[str, float]
    """CPU-seconds by phase."""
    wall_s: dict[str, float]
    """Wall seconds by phase."""
    steps: int = 0
    """The training steps they took."""

    def to_json(self) -> dict[str, Any]:
        return {"cpu_s": dict(self.cpu_s), "wall_s": dict(self.wall_s), "steps": self.steps}


class Costs:
    """CPU and wall seconds per phase of this process, plus what earlier processes of the
    same run spent (``before``: the run record's ``costs``)."""

    def __init__(self, before: PhaseCosts | None = None) -> None:
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.wall = dict.fromkeys(PHASES, 0.0)
        self.steps = 0
        self._first: tuple[float, float, int] | None = None  # cpu, wall, steps
        self._before = before or PhaseCosts(cpu_s={}, wall_s={})
        self._mark = (time.process_time(), time.perf_counter())
        self.cpu["start-up"] = self._mark[0]  # the process's CPU time so far
        self.wall["start-up"] = _age()

    def started(self) -> None:
        """The end of start-up: everything until now was spent getting ready."""
        self._charge("start-up")

    def mark(self) -> None:
        """A phase begins: the time since the last one ended was ``other``."""
        self._charge("other")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time spent inside to ``name``."""
        self.mark()
        try:
            yield
        finally:
            self._charge(name)

    def steps_done(self, steps: int) -> None:
        """A training call of ``steps`` steps just ended (its time is charged here)."""
        cpu, wall = self._lap()
        if self._first is None:
            self._first = (cpu, wall, steps)
            return
        self.cpu["steps"] += cpu
        self.wall["steps"] += wall
        self.steps += steps

    def spent(self) -> PhaseCosts:
        """CPU and wall seconds per phase, this process's added to ``before``'s."""
        cpu, wall = dict(self.cpu), dict(self.wall)
        steps = self.steps
        if self._first is not None:  # the first call: its steps at the later calls' rate
            first_cpu, first_wall, first_steps = self._first
            per_cpu = cpu["steps"] / steps if steps else 0.0
            per_wall = wall["steps"] / steps if steps else 0.0
            cpu["tracing"] = max(first_cpu - first_steps * per_cpu, 0.0)
            wall["tracing"] = max(first_wall - first_steps * per_wall, 0.0)
            cpu["steps"] += first_cpu - cpu["tracing"]
            wall["steps"] += first_wall - wall["tracing"]
            steps += first_steps
        old = self._before
        return PhaseCosts(
            cpu_s={p: round(cpu[p] + old.cpu_s.get(p, 0.0), 2) for p in PHASES},
            wall_s={p: round(wall[p] + old.wall_s.get(p, 0.0), 2) for p in PHASES},
            steps=steps + old.steps)

    def _lap(self) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        spent = (cpu - self._mark[0], wall - self._mark[1])
        self._mark = (cpu, wall)
        return spent

    def _charge(self, name: str) -> None:
        cpu, wall = self._lap()
        self.cpu[name] += cpu
        self.wall[name] += wall


def describe_costs(costs: PhaseCosts) -> str:
    """``CPU-seconds: start-up 35, tracing 12, steps 354 (...)``."""
    total = sum(costs.cpu_s.values())
    parts = ", ".join(f"{p} {costs.cpu_s.get(p, 0.0):.0f}" for p in PHASES)
    return f"CPU-seconds: {parts} (total {total:.0f})"


def _age() -> float:
    """Wall seconds since this process started (0 where the system does not say)."""
    ticks = start_time(os.getpid())
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - ticks / os.sysconf("SC_CLK_TCK"), 0.0) if ticks else 0.0
    except (OSError, ValueError, IndexError):
        return 0.0
