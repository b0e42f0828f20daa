"""Live plots that cost training little: figures on ipympl canvases that meter their own
renders, and a rate limiter that spaces redraws so that rendering stays within a CPU
budget (on a machine whose cores all train, each CPU second the plots take is a second
of training lost)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from ipympl.backend_nbagg import Canvas, FigureManager
from matplotlib.figure import Figure

REDRAWS_PER_SECOND = 2.0
CPU_BUDGET = 0.02  # of one core: the share of training time the plots may cost
MAX_GAP = 10.0  # seconds: however costly the renders, the plots move at least this often
_figure_numbers = itertools.count(1)


class RenderMeter:
    """The CPU time this process spent rendering figures: each canvas of the monitor adds
    what its ``draw()`` took (ipympl renders with Agg and encodes the PNG diff there, when
    the browser asks for a redraw). Nothing else the kernel does is counted."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.renders = 0

    def __call__(self) -> float:
        return self.seconds

    def add(self, seconds: float) -> None:
        self.seconds += max(seconds, 0.0)
        self.renders += 1


class RateLimiter:
    """Lets an action through at most ``per_second`` times a second, and no more often
    than keeps its cost under ``cpu_budget`` of the wall time (the rest are refused: the
    caller keeps them pending and asks again later).

    ``cost_clock`` tells the CPU seconds the actions have cost so far (a ``RenderMeter``);
    the cost of one action is what it grew by between two allowed actions, since a
    redraw's rendering happens after the call (when the browser asks for it). On a
    machine whose cores all train, every CPU second the plots take is a second of training
    lost: with the default 2% budget, a redraw that costs 0.1 s comes at most every 5 s,
    and never less often than every ``max_gap`` seconds."""

    def __init__(self, per_second: float = REDRAWS_PER_SECOND, *,
                 cpu_budget: float | None = CPU_BUDGET,
                 clock: Callable[[], float] = time.monotonic,
                 cost_clock: Callable[[], float] | None = None,
                 max_gap: float = MAX_GAP) -> None:
        self.interval = 1.0 / per_second
        self.cpu_budget = cpu_budget
        self.clock = clock
        self.cost_clock = cost_clock
        self.max_gap = max(max_gap, self.interval)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next action is let through at once."""
        self._last: float | None = None
        self._cost_at_last = 0.0
        self.gap = self.interval
        """The wait the last action's cost asks for before the next one."""

    def allow(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.gap:
            return False
        cost_now = self.cost_clock() if self.cost_clock is not None else 0.0
        if self._last is not None and self.cpu_budget and self.cost_clock is not None:
            cost = max(cost_now - self._cost_at_last, 0.0)
            self.gap = min(max(self.interval, cost / self.cpu_budget), self.max_gap)
        self._last, self._cost_at_last = now, cost_now
        return True


class _MeteredCanvas(Canvas):
    """ipympl's canvas, adding the CPU time of each render to a ``RenderMeter``."""

    def __init__(self, figure, meter: RenderMeter, **kwargs: Any) -> None:
        super().__init__(figure, **kwargs)
        self._meter = meter

    def draw(self) -> None:
        started = time.thread_time()
        try:
            super().draw()
        finally:
            self._meter.add(time.thread_time() - started)


def metered_figure(title: str, ylabel: str, meter: RenderMeter, *, width: float = 4.6,
            right: float = 0.15):
    """A figure on its own ipympl canvas (a widget), whatever ``%matplotlib`` says.

    Built directly rather than with ``plt.subplots`` under ``plt.ioff()``: the canvas is a
    widget even when the notebook's backend is inline, and pyplot does not keep the figure
    (no second display, nothing to ``plt.close``). Its margins are fixed (``right``: inches
    beside the axes, for a legend): a layout engine would lay the figure out again at
    every render, which more than doubles what a redraw costs."""
    height = 3.0
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.9 / width, right=1 - right / width, bottom=0.5 / height,
                        top=1 - 0.3 / height)
    canvas = _MeteredCanvas(fig, meter)
    FigureManager(canvas, next(_figure_numbers))
    canvas.header_visible = False
    canvas.toolbar_visible = "fade-in-fade-out"
    ax = fig.add_subplot()
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax
