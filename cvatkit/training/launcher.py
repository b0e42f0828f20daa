"""Starting, resuming and stopping training runs (the side that is not the trainer).

``start_run`` writes the run directory of a ``RunPlan`` and starts the trainer as its own
process (``python -P -m cvatkit.training.worker RUN_DIR``), so a closed notebook or a restarted
kernel never stops training; ``stop_run`` asks it to save a checkpoint and end. With
``workers=N`` it starts N trainer processes on this machine under MultiWorkerMirroredStrategy
(``multiworker``); with ``launch=False`` it only writes the run, ``queued`` for trainers
started elsewhere (``cvatkit worker RUN_DIR`` on a cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import RunError, UsageError
from ..files import require_new_or_empty
from ..logs import trainer_environment
from ..runs import RUN_JSON, STATUS_JSON, TERMINAL, TRAINER_LOG, Run
from .multiworker import STOP_FILE, TF_CONFIG, WORKERS_JSON, local_cluster
from .plan import RunPlan
from .record import RunRecord, Strategy, read_record, write_record


def start_run(plan: RunPlan, run_dir: str | os.PathLike[str], *, detach: bool = True,
              workers: int | None = None, launch: bool = True) -> Run:
    """Write the run directory and start its trainer process (the plan's ``workers``
    of them)."""
    run = Run(run_dir)
    check_run_dir(run.path)
    if workers is not None and workers != plan.workers:
        raise UsageError(f"the run was planned for {plan.workers} worker(s), not {workers}; "
                         "plan it again with the workers it will run on")
    workers = plan.workers
    if workers > 1 and plan.hparams.batch_size % (workers * plan.hparams.num_clones):
        raise UsageError(
            f"batch-size={plan.hparams.batch_size} does not split over {workers} workers x "
            f"{plan.hparams.num_clones} replicas; make it a multiple of "
            f"{workers * plan.hparams.num_clones}")
    if launch and os.environ.get(TF_CONFIG):
        raise UsageError(
            f"{TF_CONFIG} is set: under a launcher that starts every worker, each one runs "
            "`cvatkit worker RUN_DIR` on a run written once beforehand (`cvatkit cluster "
            f"render`); unset {TF_CONFIG} to train here, or use --workers N")
    made = not run.path.exists()
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        write_record(run, _record_of(plan, workers))
        if not launch:
            run.set_status("queued", total_steps=plan.hparams.num_steps)
            return run
        run.set_status("starting", total_steps=plan.hparams.num_steps)
        return _spawn(run, resume=False)
    except BaseException:
        # No run folder is left claiming to start: it is as it was (new or empty).
        if made:
            shutil.rmtree(run.path, ignore_errors=True)
        else:
            for name in (RUN_JSON, STATUS_JSON, TRAINER_LOG):
                (run.path / name).unlink(missing_ok=True)
        raise


def resume_run(run_dir: str | os.PathLike[str]) -> Run:
    """Start the trainer of a stopped (or failed) run again from its last checkpoint."""
    run = Run(run_dir)
    if not run.exists():
        raise RunError(f"{run.path} is not a cvatkit run (no {RUN_JSON}); nothing to resume")
    if run.is_alive():
        raise RunError(f"the run {run.path} is still training (pid {run.status().pid})")
    if run.status().state == "completed":
        raise RunError(f"the run {run.path} has completed; start a new run from it with "
                       f"--init-checkpoint {run.path}")
    step, total = run.status().step, read_record(run).hparams.num_steps
    (run.path / STOP_FILE).unlink(missing_ok=True)
    run.set_status("starting", step=step, total_steps=total)
    try:
        return _spawn(run, resume=True)
    except RunError as e:
        run.set_status("failed", step=step, total_steps=total, error=str(e))
        raise


def stop_run(run_dir: str | os.PathLike[str], *, wait: float = 120.0) -> str:
    """Ask the trainer to save a checkpoint and stop; the state it ended in."""
    run = Run(run_dir)
    if not run.exists():
        raise RunError(f"{run.path} is not a cvatkit run (no {RUN_JSON})")
    st = run.status()
    if st.state in TERMINAL:
        return st.state
    if st.state == "queued":
        raise RunError(f"the run {run.path} has not started: its trainers are started "
                       f"elsewhere (`cvatkit worker {run.path}`); delete the job that would "
                       "start them")
    if not st.pid or not run.is_alive():
        raise RunError(f"the run {run.path} is not running (its trainer is gone); resume it "
                       "with --resume or look at trainer.log")
    # every worker looks for the file (on a cluster, on the shared folder); a trainer on
    # this machine also gets the signal
    (run.path / STOP_FILE).write_text(f"requested {time.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
    if st.host in ("", socket.gethostname()):
        os.kill(st.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = run.status().state
        if state in TERMINAL:
            return state
        if not run.is_alive():
            return run.status().state
        time.sleep(0.2)
    raise RunError(f"the trainer of {run.path} did not stop within {wait:.0f} s")


def check_run_dir(run_dir: str | os.PathLike[str]) -> None:
    """Refuse a RUN_DIR that holds a run or other files: checked before a run is planned
    (and its weights downloaded), and again when it starts."""
    path = Path(run_dir)
    if (path / RUN_JSON).exists():
        raise RunError(
            f"{path} already holds a run; pick another RUN_DIR, or continue that run with "
            f"`cvatkit train --resume {path}`")
    require_new_or_empty(path, "pick an empty or new RUN_DIR", not_ours="a run")


def trainer_command(run_dir: str | os.PathLike[str], *, resume: bool = False) -> list[str]:
    """The trainer process's command line. ``-P``: the folder it is started from is not on
    its import path, so a user's ``inspect.py`` there cannot stand in for the library's."""
    cmd = [sys.executable, "-P", "-m", "cvatkit.training.worker", str(run_dir)]
    return cmd + (["--resume"] if resume else [])


def _spawn(run: Run, *, resume: bool) -> Run:
    """Start the run's trainer, or its workers (the chief's pid is the run's)."""
    workers = read_record(run).strategy.planned_workers
    env = trainer_environment({**os.environ, "PYTHONUNBUFFERED": "1"})
    env.pop(TF_CONFIG, None)
    configs = local_cluster(workers) if workers > 1 else [None]
    cpus = sorted(os.sched_getaffinity(0))
    procs = []
    try:
        for index, config in enumerate(configs):
            log_name = TRAINER_LOG if index == 0 else f"worker-{index}.log"
            pin = {cpus[index % len(cpus)]} if config and len(cpus) >= workers else None
            with open(run.path / log_name, "ab") as log:
                procs.append(subprocess.Popen(
                    trainer_command(run.path, resume=resume),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                    env={**env, TF_CONFIG: config} if config else env,
                    preexec_fn=(lambda cpu=pin: os.sched_setaffinity(0, cpu)) if pin else None))
    except OSError as e:
        for p in procs:
            p.kill()
        raise RunError(f"could not start the trainer of {run.path}: {e.strerror or e}"
                       f"{f' ({e.filename})' if e.filename else ''}") from None
    if workers > 1:
        (run.path / WORKERS_JSON).write_text(json.dumps(
            [{"index": i, "pid": p.pid, "log": TRAINER_LOG if i == 0 else f"worker-{i}.log"}
             for i, p in enumerate(procs)], indent=1) + "\n")
    run.record_pid(procs[0].pid)
    return run


def _record_of(plan: RunPlan, workers: int = 1) -> RunRecord:
    """The record of a new run of ``plan`` on ``workers`` workers."""
    from importlib import metadata

    versions = {}
    for dist in ("cvatkit-train", "tensorflow", "tf-models-official", "tf-keras", "cvat-sdk"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return RunRecord(
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), model=plan.spec,
        hparams=plan.hparams, hparams_text=plan.hparams_text, notes=tuple(plan.notes),
        labels=plan.data.labels.names, data=plan.data, eval_data=plan.eval_data,
        weights=plan.weights, init=plan.init,
        strategy=Strategy(num_clones=plan.hparams.num_clones, planned_workers=workers),
        versions=versions)
