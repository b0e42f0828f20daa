"""Real trainers paced by the test, not by the machine's speed.

A test that must act between two steps of a real trainer (stop it, kill it, look at the
plot it feeds) freezes the trainer's processes (SIGSTOP) and lets them go on (SIGCONT) until
the next logged step, so that what it sees is the same on a machine ten times slower or ten
times faster: a fast trainer cannot run to its end before the test acts, and a slow one is
waited for, without a limit short enough to matter (``PATIENCE``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from cvatkit.processes import command_line
from cvatkit.runs import STATUS_JSON, TERMINAL, Run, StepEvent

TRAINER_MODULE = "cvatkit.training.worker"
"""What the trainer's command line runs (``launcher.trainer_command``)."""

PATIENCE = 1800.0
"""Seconds a test waits for what a trainer does before it fails: generous, since only a
stuck trainer takes that long (a step here takes well under a second)."""


def until(what: str, condition, *, patience: float = PATIENCE, poll: float = 0.01):
    """Wait for ``condition()`` to be true (another thread or process makes it so) and
    return what it gave; fail after ``patience`` seconds, naming ``what``."""
    deadline = time.monotonic() + patience
    while not (got := condition()):
        assert time.monotonic() < deadline, f"waited {patience:.0f} s for {what}"
        time.sleep(poll)
    return got


def freeze(pids: Iterable[int]) -> None:
    """Hold the processes still (a process already gone is left alone)."""
    _signal(pids, signal.SIGSTOP)


def thaw(pids: Iterable[int]) -> None:
    """Let held processes go on."""
    _signal(pids, signal.SIGCONT)


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def held_trainer(runs: Path, *, patience: float = PATIENCE) -> tuple[Run, int]:
    """The first run that appears in the folder ``runs`` (another process starts it) and
    its trainer's pid, the trainer held still as soon as its pid is written. The pid the
    launcher writes first (its own, while it starts the trainer: the app's kernel) is
    never held: only a process running the trainer's command."""

    def started() -> tuple[Run, int] | None:
        for status in sorted(runs.glob(f"*/{STATUS_JSON}")):
            run = Run(status.parent)
            pid = run.written_status().pid
            if pid and _is_trainer(pid):
                freeze([pid])
                return run, pid
        return None

    return until(f"a trainer to start in {runs}", started, patience=patience)


def _is_trainer(pid: int) -> bool:
    return TRAINER_MODULE in (command_line(pid) or [])


def last_step(run: Run) -> int:
    """The last step the run's events log (0 before the first)."""
    steps = [e.step for e in run.events() if isinstance(e, StepEvent)]
    return steps[-1] if steps else 0


def advance(run: Run, pids: Iterable[int], past: int, *,
            patience: float = PATIENCE) -> int:
    """Let the held trainer ``pids`` go on until a step past ``past`` is logged, hold them
    again and return the last step logged (once they are held: nothing is logged after it
    until the next ``thaw``). Fails when the run ends first."""
    pids = list(pids)
    offset, step = 0, 0
    deadline = time.monotonic() + patience
    thaw(pids)
    try:
        while step <= past:
            events, offset = run.read_events(offset)
            step = max([step] + [e.step for e in events if isinstance(e, StepEvent)])
            if step > past:
                break
            state = run.written_status().state
            assert state not in TERMINAL, f"the run ended {state} at step {step}, before " \
                                          f"step {past + 1}:\n{_log_tail(run)}"
            assert time.monotonic() < deadline, f"no step past {past} in {patience:.0f} s " \
                                                f"(last {step}):\n{_log_tail(run)}"
            time.sleep(0.005)
    finally:
        freeze(pids)
    return last_step(run)


def _log_tail(run: Run) -> str:
    try:
        return (run.path / "trainer.log").read_text(errors="replace")[-3000:]
    except OSError:
        return "(no trainer.log)"
