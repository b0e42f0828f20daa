"""Following a run to its end, the same for the command line and the notebooks.

``follow_run`` hands each event of a run, with what the events add up to so far
(``RunProgress``), to the front end's ``show``: the command line draws a progress bar, the
notebooks print lines. An interrupt (Ctrl-C, a notebook's stop button) asks the trainer to
save a checkpoint and stop. ``run_summary`` says what the finished run came to.
"""

from __future__ import annotations

from collections.abc import Callable

from ..run_progress import RunProgress
from ..runs import Event, Run
from .costs import describe_costs
from .launcher import stop_run
from .record import read_record

Show = Callable[[Event, RunProgress], object]
Say = Callable[[str], object]


def follow_run(run: Run, show: Show, *, say: Say = print, poll: float = 0.5) -> RunProgress:
    """Hand every event of ``run`` to ``show`` until the run ends, and return its
    progress; an interrupt while following stops the run (its last checkpoint kept, to
    resume) and ``say`` tells so."""
    progress = RunProgress(run.status().total_steps or read_record(run).hparams.num_steps)
    try:
        for event in run.follow(poll=poll):
            progress.on_event(event)
            show(event, progress)
    except KeyboardInterrupt:
        say("stopping: saving a checkpoint ...")
        progress.state = stop_run(run.path)
        say(f"{progress.state}; resume with `cvatkit train --resume {run.path}`")
    return progress


def run_summary(run: Run, progress: RunProgress) -> list[str]:
    """What the ended run came to: its export's COCO AP on the frames it was evaluated
    on, and what it cost (CPU-seconds per phase). None of it for a failed run."""
    out = []
    record = read_record(run)
    exported = run.exported_evaluation() if progress.state == "completed" else None
    if exported is not None:
        out.append(f"{record.model.key}: COCO AP {exported.ap:.3f}, AP@0.5 "
                   f"{exported.ap50:.3f} on {record.eval_frames.val_frames} {exported.split} "
                   f"frames (step {exported.step})")
    if progress.state in ("completed", "stopped") and record.costs is not None:
        out.append(describe_costs(record.costs))
    return out
