"""The run-progress reducer, fed events the way Keras tests its callbacks: no training,
just the events a trainer writes, and what the reducer reports from them."""

from __future__ import annotations

import pytest

from cvatkit.run_progress import GONE, RunProgress, format_duration
from cvatkit.runs import EvalEvent, Status, StatusEvent, StepEvent


def step(n: int, loss: float, *, speed: float = 2.0, lr: float = 0.01) -> StepEvent:
    return StepEvent(step=n, time=0.0, losses={"cls_loss": loss / 2, "box_loss": loss / 2},
                     total_loss=loss, learning_rate=lr, examples_per_sec=8 * speed,
                     steps_per_sec=speed)


def status(state: str, n: int, message: str = "") -> StatusEvent:
    return StatusEvent(step=n, time=0.0, state=state, message=message)


def evaluation(n: int, ap: float) -> EvalEvent:
    return EvalEvent(step=n, time=0.0, ap=ap, ap50=min(1.0, ap + 0.2),
                     per_class={"a": ap})


def test_steps_make_curves_speed_and_time_left():
    p = RunProgress(total_steps=100)
    assert (p.state, p.step, p.eta()) == ("starting", 0, None)
    p.on_event(status("running", 0, "started on one device"))
    for n, loss in ((10, 4.0), (20, 3.0), (30, 2.0)):
        p.on_event(step(n, loss, speed=2.0))
    assert p.state == "running" and p.step == 30 and p.active
    assert p.total_loss.steps == [10, 20, 30] and p.total_loss.values == [4.0, 3.0, 2.0]
    assert p.losses["cls_loss"].values == [2.0, 1.5, 1.0]
    assert p.learning_rate.values == [0.01] * 3
    assert p.eta() == pytest.approx(70 / 2.0)
    assert p.summary() == "running · step 30 / 100 (30%) · 2.00 steps/s · ETA 35 s"
    p.on_event(evaluation(30, 0.5))
    assert p.ap.values == [0.5] and p.ap50.values == [0.7]
    assert p.summary().endswith("AP 0.500, AP@0.5 0.700")


def test_a_resumed_run_replaces_the_steps_it_logs_again():
    p = RunProgress(total_steps=50)
    for n in (10, 20, 30):
        p.on_event(step(n, 5.0 - n / 10))
    p.on_event(status("running", 20, "resumed at step 20"))  # steps 21..30 were lost
    assert p.step == 20
    p.on_event(step(30, 1.0))
    assert p.total_loss.steps == [10, 20, 30] and p.total_loss.values[-1] == 1.0
    assert p.losses["box_loss"].steps == [10, 20, 30]


def test_the_verdict_names_what_to_do():
    done = RunProgress(10)
    done.on_event(step(10, 1.0))
    done.on_event(status("completed", 10, "exported to runs/x/export"))
    assert done.failure("runs/x") is None and done.finished and done.eta() is None

    failed = RunProgress(10)
    failed.on_event(step(5, 1.0))
    failed.on_event(status("failed", 5, "the loss is no longer finite at step 5"))
    assert failed.failure("runs/x") == ("training failed: the loss is no longer finite at "
                                        "step 5")

    stopped = RunProgress(10)
    stopped.on_event(step(5, 1.0))
    stopped.on_event(status("stopped", 5, "stopped on request"))
    assert stopped.failure("runs/x") == (
        "training stopped at step 5 of 10 before it completed (stopped on request); resume "
        "it with `cvatkit train --resume runs/x`")


def test_a_poller_learns_from_the_status_file_that_the_trainer_is_gone():
    p = RunProgress(0)
    p.on_event(step(10, 1.0))
    p.on_status(Status(state="running", step=12, pid=4242, total_steps=40), alive=True)
    assert (p.state, p.step, p.total_steps, p.error) == ("running", 12, 40, "")
    p.on_status(Status(state="running", step=12, pid=4242, total_steps=40), alive=False)
    assert p.state == "failed" and p.error == GONE and not p.active
    assert p.failure("r").startswith("training failed: the trainer process ended")
    # what the trainer itself said wins
    p.on_status(Status(state="failed", step=12, pid=4242, error="ran out of memory"),
                alive=False)
    assert p.error == "ran out of memory"


@pytest.mark.parametrize("seconds, text", [(42, "42 s"), (200, "3 min 20 s"),
                                           (7500, "2 h 05 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert format_duration(seconds) == text
