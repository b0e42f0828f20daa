"""Watching a training run: live loss, learning-rate and AP plots, Start/Stop/Resume.

``RunMonitor`` is a view over a ``MonitorState`` (``monitor_state.py``). A background poller
(an asyncio task on the kernel's loop, else a thread) calls ``refresh()``: one poll, and a
redraw at most ``REDRAWS_PER_SECOND`` times a second by moving the lines' data
(``set_data``) and ``draw_idle()``. Tests call ``refresh()`` directly. Closing the
notebook or the kernel leaves training running; any monitor can re-attach to a run folder.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from cvatkit import UsageError
from cvatkit.training import RunPlan

from ._errors import error_html, error_text, log
from .monitor_state import MonitorState
from .redraw import CPU_BUDGET, REDRAWS_PER_SECOND, RateLimiter, RenderMeter, metered_figure

__all__ = ["MonitorState", "RateLimiter", "RenderMeter", "RunMonitor"]

POLL_SECONDS = 0.5


class RunMonitor(W.VBox):
    """Start/Stop/Resume buttons, a run picker, a status line and live plots over a
    ``MonitorState``.

    ``plan`` is called by the Start button for the run to start (a ``RunPlan``, or None
    when it could not make one; it shows its own message then). Without it there is no
    Start button: the monitor only watches runs started elsewhere.
    """

    def __init__(self, state: MonitorState | None = None, *,
                 plan: Callable[[], RunPlan | None] | None = None,
                 poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 cpu_budget: float | None = CPU_BUDGET,
                 autopoll: bool = True, background: bool = True, **kwargs: Any) -> None:
        self.state = s = state if state is not None else MonitorState()
        self.plan = plan
        self.poll_seconds = poll_seconds
        self.meter = RenderMeter()
        """The CPU time the plots' renders took: what the CPU budget is counted in."""
        self.limiter = RateLimiter(REDRAWS_PER_SECOND, cpu_budget=cpu_budget, clock=clock,
                                   cost_clock=self.meter)
        self.autopoll = autopoll
        self.background = background
        self.redraws = 0
        self._dirty = True
        self._drawn: dict[str, tuple] = {}  # what each figure shows, to skip unchanged ones
        self._polling = False
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

        self.start_button = W.Button(description="Start", icon="play", button_style="success")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger")
        self.resume_button = W.Button(description="Resume", icon="repeat")
        self.picker = W.Dropdown(description="Run", options=[],
                                 layout=W.Layout(width="min(100%, 480px)"))
        self.attach_button = W.Button(description="Attach", icon="link")
        self.list_button = W.Button(icon="refresh", tooltip="list the runs again",
                                    layout=W.Layout(width="40px"))
        self.status = W.HTML()
        self.error = W.HTML()
        self.start_button.layout.display = "" if plan is not None else "none"

        self._make_plots()

        # Start prepares the dataset first (minutes for a big task): in a thread, so the
        # page stays alive and shows how far it got.
        self.start_button.on_click(lambda _b: self._act(self._start, background=True))
        self.stop_button.on_click(lambda _b: self._act(self._stop, background=True))
        self.resume_button.on_click(lambda _b: self._act(self._resume))
        self.attach_button.on_click(lambda _b: self._act(self._attach))
        self.list_button.on_click(lambda _b: s.list_runs())
        s.observe(self._show_runs, names=["runs", "run_dir", "state"])
        s.observe(self._show_status, names=["run_dir", "state", "step", "total_steps",
                                             "steps_per_sec", "eta_seconds", "run_error",
                                             "message", "error", "activity"])

        plots = W.Box([self.loss_fig.canvas, self.lr_fig.canvas, self.ap_fig.canvas],
                      layout=W.Layout(flex_flow="row wrap"))
        super().__init__([
            W.HBox([self.start_button, self.stop_button, self.resume_button]),
            W.HBox([self.picker, self.attach_button, self.list_button]),
            self.status, self.error, plots], **kwargs)
        s.list_runs()
        self._show_runs()
        self.refresh(force=True)
        if s.run_dir and not s.finished:
            self._poll_soon()

    def _make_plots(self) -> None:
        """Three figures: every loss and the total, the learning rate, the AP."""
        # wider: its legend sits beside the lines
        self.loss_fig, self.loss_ax = metered_figure("loss", "loss", self.meter, width=5.8,
                                                     right=1.3)
        self.lr_fig, self.lr_ax = metered_figure("learning rate", "learning rate", self.meter)
        self.lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))  # short ticks
        self.ap_fig, self.ap_ax = metered_figure("evaluation", "COCO AP", self.meter)
        self._loss_lines: dict[str, Any] = {}
        (self._total_line,) = self.loss_ax.plot([], [], color="black", lw=2,
                                                label="total_loss")
        (self._lr_line,) = self.lr_ax.plot([], [], color="tab:purple")
        (self._ap_line,) = self.ap_ax.plot([], [], "o-", label="AP")
        (self._ap50_line,) = self.ap_ax.plot([], [], "s--", label="AP@0.5")
        self.ap_ax.set_ylim(0.0, 1.0)  # AP is a share: a fixed scale reads at a glance
        self.ap_ax.set_autoscaley_on(False)
        self.ap_ax.legend(loc="lower right", fontsize="small")

    # -- the poll-and-redraw cycle -------------------------------------------------------

    def refresh(self, *, force: bool = False) -> bool:
        """Poll the run once and redraw if something changed and the rate limit allows
        (``force``: redraw now whatever the limit); whether it redrew."""
        with self.state.lock:
            if self.state.poll():
                self._dirty = True
                self._show_status()
            if self._dirty and (force or self.limiter.allow()):
                self._redraw()
                return True
            return False

    def _redraw(self) -> None:
        s = self.state.progress
        new_names = False
        for name in list(self._loss_lines):
            if name not in s.losses:  # attached to another run
                self._loss_lines.pop(name).remove()
                new_names = True
        for name, series in s.losses.items():
            line = self._loss_lines.get(name)
            if line is None:
                (line,) = self.loss_ax.plot([], [], lw=1, label=name)
                self._loss_lines[name] = line
                new_names = True
            line.set_data(series.steps, series.values)
        if new_names:
            # beside the plot, not over the lines it names
            self.loss_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0),
                                fontsize="small", borderaxespad=0.0)
        self._total_line.set_data(s.total_loss.steps, s.total_loss.values)
        self._lr_line.set_data(s.learning_rate.steps, s.learning_rate.values)
        self._ap_line.set_data(s.ap.steps, s.ap.values)
        self._ap50_line.set_data(s.ap50.steps, s.ap50.values)
        sizes = {"loss": (len(s.total_loss), new_names, *map(len, s.losses.values())),
                 "lr": (len(s.learning_rate),), "ap": (len(s.ap), len(s.ap50))}
        for key, fig, ax in (("loss", self.loss_fig, self.loss_ax),
                             ("lr", self.lr_fig, self.lr_ax), ("ap", self.ap_fig, self.ap_ax)):
            if self._drawn.get(key) == sizes[key]:
                continue  # nothing new in this figure: no render
            self._drawn[key] = sizes[key]
            ax.relim()
            ax.autoscale_view()
            if self.state.total_steps:  # the whole run's width: the lines grow to its end
                ax.set_xlim(0, self.state.total_steps * 1.02)
            fig.canvas.draw_idle()
        self._dirty = False
        self.redraws += 1
        self._show_status()

    def start_polling(self) -> None:
        """Poll and redraw in the background until the run ends (or ``stop_polling``):
        an asyncio task on the kernel's loop, else a thread."""
        if self._polling:
            return
        self._polling = True
        self._wake.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._poll_async())
        else:
            self._thread = threading.Thread(target=self._poll_thread, daemon=True,
                                            name="cvatkit-run-monitor")
            self._thread.start()

    def stop_polling(self) -> None:
        self._polling = False
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def polling(self) -> bool:
        return self._polling

    async def _poll_async(self) -> None:
        try:
            while self._polling and self._tick():
                await asyncio.sleep(self.poll_seconds)
        finally:
            self._polling = False

    def _poll_thread(self) -> None:
        try:
            while self._polling and self._tick():
                self._wake.wait(self.poll_seconds)
        finally:
            self._polling = False

    def _tick(self) -> bool:
        """One poll; whether to go on (until the run has ended and all is drawn)."""
        try:
            self.refresh()
        except Exception as e:  # noqa: BLE001  (a drawing bug must not kill the poller)
            self.state.error = error_text(e)
        s = self.state
        return bool(s.run_dir) and (not s.finished or self._dirty)

    def _poll_soon(self) -> None:
        if not self.autopoll:
            return
        loop = self._loop
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        if not in_loop and loop is not None and loop.is_running():
            # called from a button's thread: poll on the kernel's loop, as from a cell
            loop.call_soon_threadsafe(self.start_polling)
        else:
            self.start_polling()

    # -- buttons -------------------------------------------------------------------------

    def _act(self, action: Callable[[], object], *, background: bool = False) -> None:
        """Run a button's action; a slow one (Stop waits for the checkpoint) in a thread,
        so the kernel keeps drawing meanwhile."""
        def run() -> None:
            try:
                action()
            except Exception as e:  # noqa: BLE001  (nothing escapes a callback)
                log.debug("run monitor action failed", exc_info=e)
                self.state.error = error_text(e)
            self.refresh(force=True)
            self._show_status()

        if background and self.background:
            try:
                self._loop = asyncio.get_running_loop()  # the kernel's, for the poller
            except RuntimeError:
                pass
            threading.Thread(target=run, daemon=True, name="cvatkit-run-action").start()
        else:
            run()

    def _start(self) -> None:
        if self.plan is None:
            raise UsageError("this monitor has no plan to start; use the app's Train step")
        if self.state.activity:
            return  # a Start is under way
        self.start_button.disabled = True
        self.state.activity = "getting ready: checking the data and the model ..."
        try:
            plan = self.plan()
        finally:
            self.state.activity = ""
        if plan is not None and self.state.start(plan):
            self._watch_new_run()

    def _stop(self) -> None:
        self.stop_button.disabled = True
        self.state.stop()

    def _resume(self) -> None:
        if self.state.resume():
            self._poll_soon()

    def _attach(self) -> None:
        if not self.picker.value:
            raise UsageError("pick a run first")
        if self.state.attach(self.picker.value):
            self._watch_new_run()

    def _watch_new_run(self) -> None:
        """Draw the run now attached from scratch, at once, and follow it."""
        self._dirty = True
        self._drawn.clear()
        self.limiter.reset()
        self._poll_soon()

    # -- showing the state ---------------------------------------------------------------

    def _show_runs(self, _change=None) -> None:
        options = [(self.state.describe_run(p), p) for p in self.state.runs]
        if options != list(self.picker.options):
            self.picker.options = options
        if self.state.run_dir in self.state.runs:
            self.picker.value = self.state.run_dir

    def _show_status(self, _change=None) -> None:
        s = self.state
        color = {"failed": "#b00020", "completed": "#1b5e20"}.get(s.state, "inherit")
        where = f" <small>{html.escape(s.run_dir)}</small>" if s.run_dir else ""
        self.status.value = (f'<span style="color:{color}">{html.escape(s.summary())}</span>'
                             f"{where}")
        self.error.value = error_html("\n".join(t for t in (s.run_error, s.error) if t))
        self.stop_button.disabled = s.state not in ("starting", "running")
        self.resume_button.disabled = s.state not in ("stopped", "failed")
        self.start_button.disabled = self.plan is None or s.active or bool(s.activity)

    def close(self) -> None:
        self.stop_polling()
        for fig in (self.loss_fig, self.lr_fig, self.ap_fig):
            fig.canvas.close()
        super().close()
