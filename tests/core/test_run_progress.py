"""The run-progress reducer, fed events the way Keras tests its callbacks: no training,
just the events a trainer writes, and what the reducer reports from them."""

from __future__ import annotations

import pytest

from cvatkit.run_progress import RunProgress, format_duration
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


def test_a_resumed_run_drops_the_steps_lost_to_a_kill():
    p = RunProgress(total_steps=50)
    for n in (10, 20, 30):
        p.on_event(step(n, 5.0 - n / 10))
    p.on_event(evaluation(30, 0.4))
    resumed = StatusEvent(step=20, time=0.0, state="running", message="resumed from step 20",
                          resumed_from=20)  # steps 21..30 were lost to a kill
    p.on_event(resumed)
    assert p.step == 20 and p.total_loss.steps == [10, 20] and p.ap.steps == []
    assert p.losses["box_loss"].steps == [10, 20] and p.last_eval is None
    p.on_event(step(30, 1.0))
    assert p.total_loss.steps == [10, 20, 30] and p.total_loss.values[-1] == 1.0


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


def test_a_poller_learns_the_state_from_the_status():
    p = RunProgress(0)
    p.on_event(step(10, 1.0))
    p.on_status(Status(state="running", step=12, pid=4242, total_steps=40))
    assert (p.state, p.step, p.total_steps, p.error) == ("running", 12, 40, "")
    p.on_status(Status(state="failed", step=12, pid=4242, total_steps=40, gone=True,
                       error="the trainer is gone (last words: Killed)"))
    assert p.state == "failed" and not p.active
    assert p.failure("r") == "training failed: the trainer is gone (last words: Killed)"


@pytest.mark.parametrize("seconds, text", [(42, "42 s"), (200, "3 min 20 s"),
                                           (7500, "2 h 05 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert format_duration(seconds) == text
