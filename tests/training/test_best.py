"""The best checkpoint, early stopping and which checkpoint is exported: the step loop
driven by a scripted trainer whose evaluations give a fixed sequence of APs (no
TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import MODEL, hyperparameters, write_run
from fakes.training_loop import FakeTrainingLoop

from cvatkit.errors import HyperparameterError
from cvatkit.run_progress import RunProgress
from cvatkit.runs import BestCheckpoint, EvalEvent, Run, StatusEvent
from cvatkit.training.best import BestKeeper
from cvatkit.training.worker import Outcome, end_run, run_loop

NAN = float("nan")


def _hp(**values):
    given = {"num_steps": 100, "batch_size": 2, "log_interval": 10, "eval_interval": 10,
             **values}
    return hyperparameters(**given)


def _train(run, loop, hp, **kwargs):
    return run_loop(loop, run, hp, labels=("a",), total_steps=hp.num_steps,
                    can_evaluate=True, stop=lambda: False, **kwargs)


def _evals(run):
    return [e for e in run.events() if isinstance(e, EvalEvent)]


def _best_folder(run) -> list[str]:
    return sorted(p.name for p in (run.path / "checkpoints" / "best").iterdir())


def test_the_best_checkpoint_is_the_evaluation_with_the_highest_ap(tmp_path):
    run = Run(tmp_path)
    loop = FakeTrainingLoop([0.2, 0.5, 0.4, 0.6, 0.3, 0.6, 0.1, 0.5, 0.55])
    out = _train(run, loop, _hp())
    assert (out.state, out.step) == ("running", 100)
    evals = _evals(run)
    assert [e.step for e in evals] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert [e.best for e in evals] == [True, True, False, True, False, False, False, False,
                                       False]  # 0.6 again at 60 is no improvement
    assert loop.written == [10, 20, 40]  # written on improvements only
    assert run.best_checkpoint() == BestCheckpoint(
        step=40, ap=0.6, checkpoint=str(tmp_path / "checkpoints" / "best" / "ckpt-40"))
    assert _best_folder(run) == ["best.json", "ckpt-40.index"]  # one kept
    assert (tmp_path / "checkpoints" / "best" / "ckpt-40.index").read_text() == "40"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["best"]  # nothing aside
    assert evals[3].summary().endswith("; the best so far")
    assert not evals[4].summary().endswith("; the best so far")


def test_a_nan_ap_never_counts_as_the_best(tmp_path):
    run = Run(tmp_path)
    loop = FakeTrainingLoop([NAN, 0.3, NAN, 0.2, NAN])
    _train(run, loop, _hp(num_steps=60))
    assert [e.best for e in _evals(run)] == [False, True, False, False, False]
    assert run.best_checkpoint().step == 20 and loop.written == [20]


def test_patience_ends_the_run_after_exactly_n_evaluations_without_improvement(tmp_path):
    run = Run(tmp_path)
    loop = FakeTrainingLoop([0.3, 0.5, 0.4, 0.5, 0.45, 0.9])
    hp = _hp(early_stopping_patience=3)
    out = _train(run, loop, hp)
    assert out == Outcome("completed", 50, "stopped early at step 50: AP has not improved "
                          "on 0.500 (step 20) in 3 evaluations")
    assert loop.evaluations == 5 and loop.step() == 50
    exported = []
    state = end_run(loop, run, hp, out, labels=("a",), can_evaluate=True,
                    best=BestKeeper(run, patience=3), export=exported.append)
    assert state == "completed" and loop.saved[-1] == 50  # saved where it stopped
    assert loop.evaluations == 5  # not evaluated again: it just was
    assert exported[0].checkpoint == str(tmp_path / "checkpoints" / "best" / "ckpt-20")
    assert exported[0].about() == {"exported": "best", "step": 20, "ap": 0.5}
    last = run.events()[-1]
    assert isinstance(last, StatusEvent) and last.state == "completed" and last.step == 50
    assert last.message == (f"stopped early at step 50: AP has not improved on 0.500 (step "
                            f"20) in 3 evaluations; exported the best checkpoint (step 20, AP "
                            f"0.500) to {tmp_path / 'export'}")
    assert run.written_status().state == "completed"


def test_patience_counts_evaluations_that_give_no_ap(tmp_path):
    run = Run(tmp_path)
    out = _train(run, FakeTrainingLoop([NAN, NAN, 0.1]), _hp(early_stopping_patience=2))
    assert out.state == "completed" and out.step == 20
    assert out.message == "stopped early at step 20: 2 evaluations in a row gave no AP"
    assert run.best_checkpoint() is None


def test_patience_zero_never_stops(tmp_path):
    run = Run(tmp_path)
    loop = FakeTrainingLoop([0.9] + [0.1] * 8)
    out = _train(run, loop, _hp())
    assert (out.state, out.step, loop.evaluations) == ("running", 100, 9)
    assert run.best_checkpoint().step == 10


def test_the_final_evaluation_can_be_the_best_and_export_checkpoint_last_exports_the_last(
        tmp_path):
    for which, final_ap, step, ap in (("best", 0.7, 30, 0.7), ("best", 0.2, 20, 0.6),
                                      ("last", 0.2, 30, 0.2)):
        run = Run(tmp_path / f"{which}-{final_ap}")
        run.path.mkdir()
        hp = _hp(num_steps=30, export_checkpoint=which)
        loop = FakeTrainingLoop([0.5, 0.6, final_ap])
        best = BestKeeper(run)
        out = _train(run, loop, hp, best=best)
        exported = []
        end_run(loop, run, hp, out, labels=("a",), can_evaluate=True, best=best,
                export=exported.append, split="test")
        assert loop.evaluations == 3 and _evals(run)[-1].split == "test"
        assert (exported[0].which, exported[0].step, exported[0].ap) == (which, step, ap)
        folder = "best/" if which == "best" else ""
        assert exported[0].checkpoint.endswith(f"checkpoints/{folder}ckpt-{step}")
        assert run.events()[-1].message.startswith(
            f"exported the {which} checkpoint (step {step}, AP {ap:.3f}) to ")


def test_a_run_that_cannot_evaluate_exports_its_last_checkpoint(tmp_path):
    run = Run(tmp_path)
    hp = _hp(num_steps=30)
    loop = FakeTrainingLoop([])
    out = run_loop(loop, run, hp, labels=("a",), total_steps=30, can_evaluate=False,
                   stop=lambda: False)
    exported = []
    end_run(loop, run, hp, out, labels=("a",), can_evaluate=False, best=BestKeeper(run),
            export=exported.append)
    assert (exported[0].which, exported[0].step, exported[0].ap) == ("last", 30, None)
    assert exported[0].checkpoint == "/nowhere/checkpoints/ckpt-30"
    assert run.events()[-1].message == ("exported the last checkpoint (step 30, no AP) to "
                                        f"{tmp_path / 'export'}")


def _resume(run: Run, step: int) -> None:
    run.append(StatusEvent(step=step, time=0.0, state="running",
                           message=f"resumed from step {step}", resumed_from=step))


def test_a_resumed_run_keeps_its_best_and_the_evaluations_since(tmp_path):
    run = Run(tmp_path)
    hp = _hp(early_stopping_patience=2)
    calls = iter([False] * 3 + [True])
    out = run_loop(FakeTrainingLoop([0.5, 0.7, 0.6]), run, hp, labels=("a",), total_steps=100,
                   can_evaluate=True, stop=lambda: next(calls))
    assert (out.state, out.step) == ("stopped", 30)
    _resume(run, 30)
    keeper = BestKeeper(run, patience=2)
    assert keeper.best == run.best_checkpoint() and keeper.best.step == 20
    assert keeper.stale == 1  # the evaluation at 30 did not beat it
    loop = FakeTrainingLoop([0.65, 0.9], step=30)
    out = _train(run, loop, hp, best=keeper)
    assert out == Outcome("completed", 40, "stopped early at step 40: AP has not improved "
                          "on 0.700 (step 20) in 2 evaluations")
    assert loop.written == []


def test_evaluations_a_resumed_run_does_again_are_counted_once(tmp_path):
    run = Run(tmp_path)
    _train(run, FakeTrainingLoop([0.5, 0.4, 0.3]), _hp(num_steps=40))
    _resume(run, 20)  # killed at 30: what was logged past its checkpoint at 20 is superseded
    assert BestKeeper(run).stale == 1 and run.best_checkpoint().step == 10
    _resume(run, 5)  # the best itself superseded: it is kept, nothing counted since
    keeper = BestKeeper(run)
    assert (keeper.best.step, keeper.stale) == (10, 0)


def test_the_monitor_shows_the_best_when_the_last_is_not(tmp_path):
    run = Run(tmp_path)
    _train(run, FakeTrainingLoop([0.5, 0.8, 0.6]), _hp(num_steps=40))
    progress = RunProgress(40)
    for event in run.events():
        progress.on_event(event)
    assert progress.best_eval.step == 20
    assert progress.summary().endswith("AP 0.600, AP@0.5 0.900 · best AP 0.800 at step 20")
    progress.on_event(StatusEvent(step=10, time=0.0, state="running", resumed_from=10))
    assert progress.best_eval is None


def test_a_damaged_record_of_the_best_says_what_to_do(tmp_path):
    from cvatkit.errors import RunError

    folder = tmp_path / "checkpoints" / "best"
    folder.mkdir(parents=True)
    (folder / "best.json").write_text("{not json")
    with pytest.raises(RunError, match="best.json is damaged .*; delete .*best to forget"):
        Run(tmp_path).best_checkpoint()


# -- planning ------------------------------------------------------------------------------


@pytest.mark.parametrize("values, message", [
    ({"early-stopping-patience": 3},
     "early-stopping-patience=3 counts the evaluations during training, but with "
     "eval-interval=0 and num-steps=100 the run evaluates only at its end; set eval-interval "
     "below num-steps (for example eval-interval=10)"),
    ({"early-stopping-patience": 1, "eval-interval": 100},
     "with eval-interval=100 and num-steps=100 the run evaluates only at its end"),
    ({"early-stopping-patience": -1}, "early-stopping-patience=-1 must be >= 0"),
    ({"export-checkpoint": "first"}, "export-checkpoint='first' is not one of best, last"),
])
def test_early_stopping_without_evaluations_is_refused(values, message):
    with pytest.raises(HyperparameterError) as e:
        hyperparameters(num_steps=100, **{k.replace("-", "_"): v for k, v in values.items()})
    assert message in str(e.value)


def test_a_patience_the_run_cannot_reach_is_a_note():
    from cvatkit.dataset import Dataset
    from cvatkit.records import LabelMap
    from cvatkit.training import get_model, resolve

    data = Dataset(path=Path("."), labels=LabelMap.from_names(["a"]), train_frames=100,
                   val_frames=10, val_fraction=0.1, include_masks=False)
    values = {"num-steps": 100, "eval-interval": 40, "early-stopping-patience": 2}
    _, notes = resolve(get_model(MODEL), values, data, gpus=0)
    assert ("early-stopping-patience=2 cannot stop this run: it evaluates 2 times before its "
            "end (eval-interval=40); lower the patience or eval-interval") in notes
    hp, notes = resolve(get_model(MODEL), {**values, "eval-interval": 10}, data, gpus=0)
    assert not any("early-stopping" in n for n in notes)
    assert hp.early_stopping_patience == 2 and hp.export_checkpoint == "best"


def test_early_stopping_on_a_dataset_without_validation_frames_is_refused(tmp_path):
    from cvatkit import open_export, prepare, write_sample
    from cvatkit.training import plan_run

    task = write_sample(tmp_path / "sample", frames=4, test_frames=1).task
    source = open_export(task)
    try:
        data = prepare(source, tmp_path / "data", val_fraction=0.0)
    finally:
        source.close()
    assert data.val_frames == 0
    text = "num-steps=100\neval-interval=10\nearly-stopping-patience=3"
    with pytest.raises(HyperparameterError) as e:
        plan_run(data.path, MODEL, text, weights="none")
    assert str(e.value).startswith(
        f"early-stopping-patience=3 needs evaluations, but {data.path} has no validation "
        "frames (it was prepared with --val-split 0); prepare it with a --val-split above 0, "
        "give evaluation data (--eval-data), or remove early-stopping-patience")
    plan = plan_run(data.path, MODEL, "num-steps=100\neval-interval=10", weights="none")
    assert plan.hparams.early_stopping_patience == 0  # without it, the plan stands


def test_an_earlier_runs_best_checkpoint_can_start_a_run(tmp_path):
    from cvatkit.dataset import Dataset
    from cvatkit.errors import UsageError
    from cvatkit.records import LabelMap
    from cvatkit.training import get_model
    from cvatkit.training.plan import resolve_init_checkpoint

    spec = get_model(MODEL)
    run = write_run(tmp_path / "run", labels=("a",))
    data = Dataset(path=tmp_path, labels=LabelMap.from_names(["a"]), train_frames=10,
                   val_frames=2, val_fraction=0.2, include_masks=False)
    best = run.path / "checkpoints" / "best"
    with pytest.raises(UsageError, match="has no best checkpoint yet"):
        resolve_init_checkpoint(str(best), spec, data)
    _train(run, FakeTrainingLoop([0.4, 0.6, 0.5]), _hp(num_steps=40))
    run.set_status("completed", step=40, total_steps=40)  # as its trainer ends it
    for given in (best, best / "ckpt-20"):
        init = resolve_init_checkpoint(str(given), spec, data)
        assert init.path == str(best / "ckpt-20") and init.source == str(run.path)
    # the run itself starts from what it exported: its best, when export/ was made from it
    (run.path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-40"\n')
    assert resolve_init_checkpoint(str(run.path), spec, data).path.endswith("checkpoints/ckpt-40")
    (run.path / "export").mkdir()
    (run.path / "export" / "model.json").write_text('{"exported": "best", "step": 20}')
    assert resolve_init_checkpoint(str(run.path), spec, data).path == str(best / "ckpt-20")
    (run.path / "export" / "model.json").write_text('{"exported": "last", "step": 40}')
    assert resolve_init_checkpoint(str(run.path), spec, data).path.endswith("checkpoints/ckpt-40")
