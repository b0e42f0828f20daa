"""Where a run's CPU-seconds go: the phases charged on a scripted clock, and a scripted
run whose costs land in its record (no TensorFlow)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import hyperparameters, run_record, write_run
from fakes.training_loop import FakeTrainingLoop

from cvatkit.training import describe_costs, read_record
from cvatkit.training import costs as costs_module
from cvatkit.training.costs import PHASES, Costs
from cvatkit.training.worker import CostedLoop, Outcome, end_run, run_loop


class Clock:
    """process_time and perf_counter that move only when told (wall = 2 x CPU)."""

    def __init__(self, monkeypatch, cpu: float) -> None:
        self.cpu = cpu
        monkeypatch.setattr(costs_module.time, "process_time", lambda: self.cpu)
        monkeypatch.setattr(costs_module.time, "perf_counter", lambda: 2 * self.cpu)
        monkeypatch.setattr(costs_module, "_age", lambda: 7.0)

    def spend(self, seconds: float) -> None:
        self.cpu += seconds


def test_each_phase_gets_what_was_spent_in_it(monkeypatch):
    clock = Clock(monkeypatch, cpu=2.0)  # imports before the clock was made
    costs = Costs()
    clock.spend(3.0)
    costs.started()                      # start-up: 2 + 3
    clock.spend(0.5)                     # between phases: other
    costs.mark()
    clock.spend(4.0)                     # the first call: tracing and 10 steps
    costs.steps_done(10)
    for _ in range(2):
        costs.mark()
        clock.spend(2.0)                 # 10 steps at 0.2 s each
        costs.steps_done(10)
    with costs.phase("evaluation"):
        clock.spend(3.0)
    with costs.phase("export"):
        clock.spend(4.0)
    got = costs.spent()
    assert got.cpu_s == {"start-up": 5.0, "tracing": 2.0, "steps": 6.0, "checkpoints": 0.0,
                            "evaluation": 3.0, "export": 4.0, "other": 0.5}
    assert sum(got.cpu_s.values()) == pytest.approx(clock.cpu)  # all of it, once
    assert got.wall_s["start-up"] == 7.0 + 6.0 and got.wall_s["steps"] == 12.0
    assert got.steps == 30
    assert describe_costs(got) == ("CPU-seconds: start-up 5, tracing 2, steps 6, checkpoints "
                                   "0, evaluation 3, export 4, other 0 (total 20)")
    # a resumed run adds its process's costs to what the run had spent before
    resumed = Costs(got).spent()
    assert resumed.cpu_s["steps"] == 6.0 and resumed.steps == 30
    assert resumed.wall_s["steps"] == 12.0  # the wall seconds are kept too
    assert resumed.wall_s["start-up"] >= got.wall_s["start-up"]


def test_a_run_keeps_its_costs_in_its_record(tmp_path):
    run = write_run(tmp_path, labels=("a",))
    hp = hyperparameters(num_steps=40, batch_size=2, log_interval=10, eval_interval=20)
    costs = Costs()
    loop = CostedLoop(FakeTrainingLoop([0.3, 0.4, 0.5]), costs)
    costs.started()
    outcome = run_loop(loop, run, hp, labels=("a",), total_steps=hp.num_steps,
                       can_evaluate=True, stop=lambda: False)
    exported = []
    assert end_run(loop, run, hp, outcome, labels=("a",), can_evaluate=True,
                   best=_keeper(run), export=exported.append, costs=costs) == "completed"
    record = read_record(run)
    got = record.costs
    assert set(got.cpu_s) == set(got.wall_s) == set(PHASES)
    assert got.steps == 40 and all(v >= 0 for v in got.cpu_s.values())
    assert record == replace(run_record(labels=("a",)), costs=got)  # the rest is kept
    assert len(exported) == 1

    # a stopped run says what it spent too
    stopped = write_run(tmp_path / "stopped")
    end_run(loop, stopped, hp, Outcome("stopped", 10), labels=("a",), can_evaluate=True,
            best=_keeper(stopped), export=exported.append, costs=Costs())
    assert set(read_record(stopped).costs.cpu_s) == set(PHASES) and len(exported) == 1


def _keeper(run):
    from cvatkit.training.best import BestKeeper

    return BestKeeper(run)
