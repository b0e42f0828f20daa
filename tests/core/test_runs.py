"""The run folder as its readers see it: events read whole lines only, the history a
resumed run leaves, and a status that tells a live trainer from a dead one."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

from cvatkit.processes import start_time
from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent, history


def step(n: int) -> StepEvent:
    return StepEvent(step=n, time=0.0, losses={"cls_loss": 1.0}, total_loss=1.0,
                     learning_rate=0.1, examples_per_sec=8.0, steps_per_sec=1.0)


def test_a_half_written_line_waits_for_its_end(tmp_path):
    run = Run(tmp_path)
    run.append(step(5))
    whole = (tmp_path / "events.jsonl").read_bytes()
    line = json.dumps(asdict(step(10)))
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(line[:20])  # the trainer is writing it
    events, offset = run.read_events(0)
    assert [e.step for e in events] == [5] and offset == len(whole)
    assert run.read_events(offset) == ([], offset)  # nothing new, nothing consumed
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(line[20:] + "\n")
    events, end = run.read_events(offset)
    assert [e.step for e in events] == [10] and end > offset
    assert run.read_events(end) == ([], end)  # returned once, not twice


def test_unknown_and_damaged_lines_are_passed_over(tmp_path):
    run = Run(tmp_path)
    run.append(step(5))
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(json.dumps({"kind": "heartbeat", "step": 7}) + "\n")  # a newer version's
        f.write("{not json\n")
        f.write(json.dumps({"kind": "step", "step": 8}) + "\n")  # fields missing
    run.append(step(10))
    assert [e.step for e in run.events()] == [5, 10]


def test_the_history_of_a_resumed_run_drops_what_the_kill_lost():
    events = [step(5), step(10), EvalEvent(step=10, time=0, ap=0.1, ap50=0.2, per_class={}),
              step(15), step(20),
              StatusEvent(step=10, time=0, state="running", message="resumed from step 10",
                          resumed_from=10),
              step(15), step(20)]
    kept = history(events)
    assert [(type(e).__name__, e.step) for e in kept] == [
        ("StepEvent", 5), ("StepEvent", 10), ("EvalEvent", 10), ("StatusEvent", 10),
        ("StepEvent", 15), ("StepEvent", 20)]


def _status(run: Run, **fields) -> None:
    (run.path / "status.json").write_text(json.dumps(
        {"state": "running", "step": 12, "total_steps": 40, **fields}))


def test_a_dead_trainer_is_told_from_a_live_one(tmp_path):
    run = Run(tmp_path)
    (tmp_path / "trainer.log").write_text("step 12\nKilled\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _status(run, pid=gone.pid)
    st = run.status()
    assert st.state == "failed" and st.gone and st.step == 12
    assert st.error == (f"the trainer is gone (last words: Killed); resume the run with "
                        f"`cvatkit train --resume {tmp_path}`")
    assert run.written_status().state == "running"  # the file itself is left as it was
    assert not run.is_alive()

    # A live process that is not the trainer (its pid came back with another start time).
    import os

    me = os.getpid()
    _status(run, pid=me, pid_started=start_time(me) + 1)
    assert run.status().gone
    _status(run, pid=me, pid_started=start_time(me))
    st = run.status()
    assert st.state == "running" and not st.gone and run.is_alive()
    # A run that ended says so itself, whatever became of its process.
    _status(run, state="completed", pid=gone.pid)
    assert run.status().state == "completed" and not run.status().gone


def test_a_killed_trainer_not_yet_reaped_is_gone(tmp_path):
    """A trainer killed while its parent (a notebook's kernel, say) has not waited for it
    stays a zombie, a pid that is still there: the run is failed all the same."""
    import signal
    import time

    from cvatkit.processes import _state, pid_alive

    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run = Run(tmp_path)
    _status(run, pid=trainer.pid, pid_started=start_time(trainer.pid))
    assert run.is_alive()
    trainer.send_signal(signal.SIGKILL)  # and not waited for: a zombie
    deadline = time.monotonic() + 60
    while _state(trainer.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(trainer.pid) == "Z" and not pid_alive(trainer.pid)
    st = run.status()
    assert st.state == "failed" and st.gone and not run.is_alive()
    trainer.wait()


def test_the_runs_of_a_folder_are_listed_newest_record_first(tmp_path):
    import os

    from cvatkit import list_runs

    for name, when in (("old", 1000), ("new", 3000), ("middle", 2000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text("{}")
        os.utime(tmp_path / name / "run.json", (when, when))
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "file.txt").write_text("")
    assert [p.name for p in list_runs(tmp_path)] == ["new", "middle", "old"]
    assert list_runs(tmp_path / "nowhere") == []
