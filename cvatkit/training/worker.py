"""The trainer process: Model Garden's task and trainer, driven step by step, with events.

It builds the model, inputs, losses and metrics through Model Garden's task API and runs
its ``tf.function``-compiled training loop ``log-interval`` steps per call. Between calls
it writes events, checkpoints, evaluations (keeping the best checkpoint: ``best.py``) and
TensorBoard summaries, and watches for a stop request (SIGTERM), for a loss that is no
longer finite and for evaluations that no longer improve (``early-stopping-patience``).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Protocol

from ..errors import CvatkitError
from ..runs import CHECKPOINTS, EXPORT, EvalEvent, Run, StatusEvent, StepEvent
from .best import BestKeeper, Exported, choose_export
from .costs import Costs
from .multiworker import (
    STOP_FILE,
    ChiefEvaluations,
    Consensus,
    Role,
    copy_latest_checkpoint,
    lost_tasks,
    private_folder,
    read_role,
    worker_failure,
)
from .record import RunRecord, read_record, update_record, write_record
from .resolution import Hyperparameters

_stop_requested = False


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    global _stop_requested
    _stop_requested = True


def main(run_dir: str, *, resume: bool | None = False) -> int:
    """Train the run in ``run_dir``; the exit code says whether it completed or stopped.
    ``resume=None``: resume when the run has a checkpoint (``cvatkit worker``: a cluster
    restarts the same command). Under ``TF_CONFIG``, a worker other than the chief writes
    a private copy of the run (``multiworker``), removed when it ends."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigterm)
    shared = own = Run(run_dir)
    try:
        role = read_role()
        record = read_record(shared)
        if resume is None:
            if shared.written_status().state == "completed":
                print(f"cvatkit: {shared.path} has completed; nothing to do", file=sys.stderr)
                return 0
            resume = shared.latest_checkpoint() is not None
        if role is not None and not role.is_chief:
            own = Run(private_folder(shared.path, role))
            write_record(own, record)
        state = _train(own, record, resume=resume, shared=shared, role=role)
        if role is not None:  # the worker's own last words, in its log
            print(f"cvatkit: {role.name()} of {role.workers} ended {state} at step "
                  f"{own.written_status().step}", file=sys.stderr, flush=True)
        return 0 if state in ("completed", "stopped") else 1
    except BaseException as e:  # noqa: BLE001  (the run must say it failed, whatever it was)
        traceback.print_exc()
        lost = lost_tasks(e)
        message = worker_failure(lost, step=own.written_status().step) \
            if lost is not None else _failure_message(e, own)
        _record_failure(own, message)
        if own is not shared and any(r.is_chief for r in lost or ()):
            _record_failure(shared, message)  # the chief cannot say it any more
        print(f"cvatkit: {message}", file=sys.stderr)  # the log's last words
        return 1
    finally:
        if own is not shared:
            shutil.rmtree(own.path, ignore_errors=True)


def _record_failure(run: Run, message: str) -> None:
    try:
        st = run.written_status()
        run.append(StatusEvent(step=st.step, time=time.time(), state="failed",
                               message=message))
        run.set_status("failed", step=st.step, error=message, total_steps=st.total_steps)
    except OSError as again:  # the folder cannot be written at all: the log says why
        print(f"cvatkit: could not record the failure in {run.path} ({again})",
              file=sys.stderr)


_UNWRITABLE = ("Permission denied", "Read-only file system", "Operation not permitted")


def _failure_message(e: BaseException, run: Run) -> str:
    if isinstance(e, CvatkitError):
        return str(e)
    text = str(e).strip()
    first = text.splitlines()[0][:300] if text else ""
    unwritable = next((w for w in _UNWRITABLE if w in text), None)
    if unwritable or isinstance(e, PermissionError):
        where = re.search(re.escape(str(run.path)) + r"[^\s;:,'\"]*", text)
        return (f"cannot write {where.group() if where else 'into ' + str(run.path)} "
                f"({(unwritable or 'permission denied').lower()}); make the run folder "
                f"writable and resume it with `cvatkit train --resume {run.path}`")
    if "OOM" in text or isinstance(e, MemoryError):
        return ("ran out of memory; lower batch-size or image-size" +
                (f" ({first})" if first else ""))
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class Loop(Protocol):
    """What the step loop needs from a trainer (Model Garden's, or a fake in tests):
    ``write`` writes the model's checkpoint at a prefix apart from those ``save`` rotates
    (the best one), ``latest_checkpoint`` is the prefix of the newest that ``save`` wrote."""

    def train(self, steps: int) -> dict[str, float]: ...
    def evaluate(self) -> dict[str, float]: ...
    def step(self) -> int: ...
    def save(self, step: int, *, force: bool) -> None: ...
    def write(self, prefix: str) -> None: ...
    def latest_checkpoint(self) -> str: ...


@dataclass
class Outcome:
    state: str
    """'running' (the stage ended), 'stopped', 'failed', or 'completed' (stopped early)."""
    step: int
    message: str = ""


def run_loop(loop: Loop, run: Run, hp: Hyperparameters, *, labels: tuple[str, ...],
             total_steps: int, can_evaluate: bool, stop=lambda: _stop_requested,
             summaries=None, stage: int = 0, stage_end: int | None = None,
             best: BestKeeper | None = None,
             agree: Callable[[bool], bool] = lambda should: should) -> Outcome:
    """Train until ``stage_end`` (or the end), logging, checkpointing and evaluating;
    ``best`` keeps the best checkpoint and ends the training when evaluations no longer
    improve (by default, one for the run's ``early-stopping-patience``). ``stop`` and
    ``agree`` (given whether to stop early) are asked at the same points on every worker."""
    end = total_steps if stage_end is None else stage_end
    if best is None:
        best = BestKeeper(run, patience=hp.early_stopping_patience)
    step = loop.step()
    while step < end:
        if stop():
            loop.save(step, force=True)
            return Outcome("stopped", step)
        n = min(hp.log_interval - step % hp.log_interval, end - step)
        t0 = time.perf_counter()
        logs = loop.train(n)
        seconds = max(time.perf_counter() - t0, 1e-9)
        step = loop.step()
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad:
            what = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            return Outcome("failed", step,
                           f"the loss is no longer finite at step {step} ({what}): training "
                           f"diverged; lower initial-learning-rate (now "
                           f"{hp.initial_learning_rate:g}) or check the annotations. The "
                           "last checkpoint before it is kept")
        losses = {k: v for k, v in logs.items()
                  if k.endswith("loss") and k not in ("total_loss", "training_loss")}
        event = StepEvent(step=step, time=time.time(), losses=losses,
                          total_loss=logs.get("total_loss", logs.get("training_loss", 0.0)),
                          learning_rate=logs.get("learning_rate", 0.0),
                          examples_per_sec=n * hp.batch_size / seconds,
                          steps_per_sec=n / seconds, stage=stage)
        run.append(event)
        if summaries is not None:
            summaries(event)
        run.set_status("running", step=step, total_steps=total_steps)
        loop.save(step, force=False)
        if (can_evaluate and hp.eval_interval and step % hp.eval_interval == 0
                and step < total_steps):
            run.append(best.on_evaluation(eval_event(loop.evaluate(), step, labels),
                                          loop.write))
            if agree(best.should_stop()):
                return Outcome("completed", step, best.reason(step))
    return Outcome("running", step)


def eval_event(logs: dict[str, float], step: int, labels: tuple[str, ...],
               split: str = "val") -> EvalEvent:
    per_class = {name: float(logs.get(f"Precision mAP ByCategory/{name}", float("nan")))
                 for name in labels}
    keep = {k: float(v) for k, v in logs.items() if "ByCategory" not in k}
    return EvalEvent(step=step, time=time.time(), ap=float(logs.get("AP", float("nan"))),
                     ap50=float(logs.get("AP50", float("nan"))), per_class=per_class,
                     metrics=keep, split=split)


class CostedLoop:
    """A ``Loop`` whose calls are charged to their phase of the run's ``Costs``."""

    def __init__(self, loop: Loop, costs: Costs) -> None:
        self.loop, self.costs = loop, costs

    def train(self, steps: int) -> dict[str, float]:
        self.costs.mark()
        logs = self.loop.train(steps)
        self.costs.steps_done(steps)
        return logs

    def evaluate(self) -> dict[str, float]:
        with self.costs.phase("evaluation"):
            return self.loop.evaluate()

    def write(self, prefix: str) -> None:
        with self.costs.phase("evaluation"):  # keeping the best: evaluation's cost
            self.loop.write(prefix)

    def save(self, step: int, *, force: bool) -> None:
        with self.costs.phase("checkpoints"):
            self.loop.save(step, force=force)

    def step(self) -> int:
        return self.loop.step()

    def latest_checkpoint(self) -> str:
        return self.loop.latest_checkpoint()


def record_costs(run: Run, costs: Costs) -> None:
    """Keep the costs so far in the run's record (``costs.py``)."""
    update_record(run, costs=costs.spent())


def end_run(loop: Loop, run: Run, hp: Hyperparameters, outcome: Outcome, *,
            labels: tuple[str, ...], can_evaluate: bool, best: BestKeeper,
            export: Callable[[Exported], None], split: str = "val",
            costs: Costs | None = None) -> str:
    """Say how the training ended: stopped or failed as it is; otherwise save, evaluate
    the last step (unless it stopped early, right after an evaluation), ``export`` the
    checkpoint ``export-checkpoint`` names and say the run completed. Returns the state.
    ``costs`` (the export charged to it) go to ``run.json`` before the last status."""
    if outcome.state in ("stopped", "failed"):
        if costs is not None:
            costs.mark()
            record_costs(run, costs)
        run.append(StatusEvent(step=outcome.step, time=time.time(), state=outcome.state,
                               message=outcome.message or "stopped on request; resume with "
                               f"`cvatkit train --resume {run.path}`"))
        run.set_status(outcome.state, step=outcome.step, error=outcome.message,
                       total_steps=hp.num_steps)
        return outcome.state

    loop.save(outcome.step, force=True)
    if can_evaluate and outcome.state != "completed":
        run.append(best.on_evaluation(eval_event(loop.evaluate(), outcome.step, labels,
                                                 split=split), loop.write))
    run.set_status("running", step=outcome.step, total_steps=hp.num_steps)
    exported = choose_export(run, hp.export_checkpoint, loop.latest_checkpoint())
    if costs is None:
        export(exported)
    else:
        with costs.phase("export"):
            export(exported)
        record_costs(run, costs)
    done = f"exported {exported.describe()} to {run.path / EXPORT}"
    run.append(StatusEvent(step=outcome.step, time=time.time(), state="completed",
                           message=f"{outcome.message}; {done}" if outcome.message else done))
    run.set_status("completed", step=outcome.step, total_steps=hp.num_steps)
    return "completed"


# -- the real thing --------------------------------------------------------------------------


def _train(run: Run, record: RunRecord, *, resume: bool, shared: Run | None = None,
           role: Role | None = None) -> str:
    """Train ``run``: the run folder, or under ``role`` a worker's private copy of the
    ``shared`` one (where the stop file is looked for and the chief's checkpoints are)."""
    shared = shared or run
    spec, hp, init, labels = record.model, record.hparams, record.init, record.labels
    costs = Costs(record.costs if resume else None)

    run.set_status("starting", step=run.status().step, total_steps=hp.num_steps)
    if resume:  # what a killed save left half-written is no checkpoint
        for partial in (run.path / CHECKPOINTS).glob("*_temp*"):
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    from .model_garden.loop import ModelGardenLoop

    if resume and run is not shared:
        copy_latest_checkpoint(shared.path / CHECKPOINTS, run.path / CHECKPOINTS)
    mg = ModelGardenLoop(run, spec, hp, record.data, record.eval_data, init)
    step = mg.step()
    replicas = mg.strategy.num_replicas_in_sync
    if hp.batch_size % replicas:
        raise CvatkitError(f"batch-size={hp.batch_size} does not split over {replicas} "
                           f"replicas; make it a multiple of {replicas}")
    workers = role.workers if role else 1
    kind = "MultiWorkerMirroredStrategy" if role else type(mg.strategy).__name__
    where = (f"on {replicas} replicas ({kind}"
             + (f", {workers} workers" if workers > 1 else "") + ")" if replicas > 1
             else "on one device")
    record = replace(record, strategy=replace(
        record.strategy, kind=kind, workers=workers, replicas=replicas,
        global_batch=hp.batch_size, per_replica_batch=hp.batch_size // replicas))
    write_record(run, record)
    started = f"started {where}"
    if mg.init_report is not None and init is not None:
        loaded = mg.init_report.summary(init.source or init.path)
        print(f"cvatkit: {loaded}", file=sys.stderr, flush=True)  # into trainer.log
        started += "; " + loaded
        write_record(run, replace(record, init_loaded=mg.init_report))
    resumed = f"resumed from step {step} {where}"
    kept = run.best_checkpoint() if resume else None
    if kept is not None:
        resumed += f"; the best checkpoint so far: step {kept.step}, AP {kept.ap:.3f}"
    run.append(StatusEvent(step=step, time=time.time(), state="running",
                           message=resumed if resume else started,
                           resumed_from=step if resume else None))
    run.set_status("running", step=step, total_steps=hp.num_steps)

    best = BestKeeper(run, patience=hp.early_stopping_patience, recorded=shared)
    consensus = Consensus(mg.strategy, role)
    loop = CostedLoop(ChiefEvaluations(mg, consensus), costs)
    stop_file = shared.path / STOP_FILE

    def stop() -> bool:  # asked by every worker at the same step; any one's request counts
        return consensus.agree(_stop_requested or stop_file.exists())[0]

    def early(should: bool) -> bool:  # the chief's judgement counts
        return consensus.agree(False, should)[1]

    costs.started()
    outcome = Outcome("running", step)
    for stage, stage_end in mg.stages():
        if stage_end <= mg.step():
            continue
        mg.enter_stage(stage)
        outcome = run_loop(loop, run, hp, labels=labels, total_steps=hp.num_steps,
                           can_evaluate=mg.can_evaluate, stop=stop, agree=early,
                           summaries=mg.summaries, stage=stage, stage_end=stage_end, best=best)
        if outcome.state != "running":
            break

    def export(exported: Exported) -> None:
        if role is not None and not role.is_chief:
            return  # the chief exports
        from .model_garden.export import export_run

        export_run(run, mg.experiment, exported.checkpoint, labels, about=exported.about())

    state = end_run(loop, run, hp, outcome, labels=labels, can_evaluate=mg.can_evaluate,
                    best=best, export=export, split="test" if record.eval_data else "val",
                    costs=costs)
    if run is shared:  # every worker has ended at this step: a request is answered
        stop_file.unlink(missing_ok=True)
    return state


if __name__ == "__main__":  # the launcher starts: python -P -m cvatkit.training.worker RUN_DIR
    parser = argparse.ArgumentParser(prog="cvatkit.training.worker",
                                     description="The trainer process of a run folder.")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    sys.exit(main(args.run_dir, resume=args.resume))
