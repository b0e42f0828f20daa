"""Starting, resuming and stopping training runs (the side that is not the trainer).

``start_run`` writes the run directory of a ``RunPlan`` and starts the trainer as its own
process (``python -P -m cvatkit.training.worker RUN_DIR``), so a closed notebook or a restarted
kernel never stops training; ``stop_run`` asks it to save a checkpoint and end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..files import require_new_or_empty
from ..logs import trainer_environment
from ..runs import RUN_JSON, STATUS_JSON, TERMINAL, TRAINER_LOG, Run
from .plan import RunPlan


def start_run(plan: RunPlan, run_dir: str | os.PathLike[str], *, detach: bool = True) -> Run:
    """Write the run directory and start its trainer process."""
    run = Run(run_dir)
    check_run_dir(run.path)
    made = not run.path.exists()
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_spec(_spec_json(plan))
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
    step, total = run.status().step, run.spec()["hparams"]["num-steps"]
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
    if not st.pid or not run.is_alive():
        raise RunError(f"the run {run.path} is not running (its trainer is gone); resume it "
                       "with --resume or look at trainer.log")
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
    env = trainer_environment({**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        with open(run.path / TRAINER_LOG, "ab") as log:
            proc = subprocess.Popen(trainer_command(run.path, resume=resume),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, env=env)
    except OSError as e:
        raise RunError(f"could not start the trainer of {run.path}: {e.strerror or e}"
                       f"{f' ({e.filename})' if e.filename else ''}") from None
    run.record_pid(proc.pid)
    return run


def _spec_json(plan: RunPlan) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for dist in ("cvatkit-train", "tensorflow", "tf-models-official", "tf-keras", "cvat-sdk"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": asdict(plan.spec),
        "hparams": plan.hparams.to_dict(),
        "hparams_text": plan.hparams_text,
        "notes": list(plan.notes),
        "labels": list(plan.data.labels.names),
        "data": plan.data.to_json(),
        "eval_data": plan.eval_data.to_json() if plan.eval_data else None,
        "weights": plan.weights,
        "init": asdict(plan.init) if plan.init else None,
        "strategy": {"num_clones": plan.hparams.num_clones,
                     "multi_worker": "TF_CONFIG" in os.environ},
        "versions": versions,
    }
