"""Following a run: the one loop behind the command line's bar and the notebooks' lines."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from helpers import MODEL, run_record

from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent
from cvatkit.training import PhaseCosts, follow_run, run_summary, write_record


def _ended_run(tmp_path, state="completed"):
    """A run folder as a trainer leaves it: its record, events and last status."""
    record = run_record(num_steps=20)
    run = Run(tmp_path / "run")
    run.path.mkdir()
    write_record(run, replace(record, data=replace(record.data, val_frames=7),
                              costs=PhaseCosts(cpu_s={"steps": 12.4, "export": 3.0},
                                               wall_s={"steps": 14.0})))
    now = time.time()
    run.append(StepEvent(step=10, time=now, losses={"cls_loss": 1.0}, total_loss=1.5,
                         learning_rate=0.01, examples_per_sec=4.0, steps_per_sec=0.5))
    run.append(EvalEvent(step=20, time=now, ap=0.612, ap50=0.9, per_class={"a": 0.612}))
    run.append(StatusEvent(step=20, time=now, state=state))
    run.set_status(state, step=20, total_steps=20)
    (run.path / "export").mkdir()
    (run.path / "export" / "model.json").write_text(json.dumps({"step": 20}))
    return run


def test_every_event_reaches_the_front_end_with_the_progress_so_far(tmp_path):
    run = _ended_run(tmp_path)
    seen = []
    progress = follow_run(run, lambda e, p: seen.append((e.kind, p.step, p.total_steps)),
                          poll=0.01)
    assert seen == [("step", 10, 20), ("eval", 10, 20), ("status", 20, 20)]
    assert progress.state == "completed" and progress.failure(run.path) is None
    assert run_summary(run, progress) == [
        f"{MODEL}: COCO AP 0.612, AP@0.5 0.900 on 7 val frames (step 20)",
        "CPU-seconds: start-up 0, tracing 0, steps 12, checkpoints 0, evaluation 0, "
        "export 3, other 0 (total 15)"]


def test_an_interrupt_stops_the_run_and_says_how_to_resume(tmp_path):
    run = _ended_run(tmp_path, state="stopped")
    said = []

    def interrupted(_event, _progress):
        raise KeyboardInterrupt

    progress = follow_run(run, interrupted, say=said.append, poll=0.01)
    assert progress.state == "stopped"
    assert said == ["stopping: saving a checkpoint ...",
                    f"stopped; resume with `cvatkit train --resume {run.path}`"]
    assert run_summary(run, progress)[-1].startswith("CPU-seconds:")  # no AP: not completed


def test_a_failed_run_comes_to_nothing(tmp_path):
    run = _ended_run(tmp_path, state="failed")
    progress = follow_run(run, lambda e, p: None, poll=0.01)
    assert progress.failure(run.path).startswith("training failed")
    assert run_summary(run, progress) == []


def test_the_tests_know_the_trainers_command_line():
    """``pacing.held_trainer`` holds only a process running the trainer's command."""
    import pacing

    from cvatkit.training.launcher import trainer_command

    assert pacing.TRAINER_MODULE in trainer_command("run")
