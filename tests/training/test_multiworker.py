"""Training over two worker processes on this machine (MultiWorkerMirroredStrategy over
127.0.0.1 ports, each pinned to a CPU): stopped, resumed, one worker killed, resumed again
to the end; only the chief writes the run folder."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import numpy as np
import pacing
import pytest
from helpers import MODEL, folded

from cvatkit.cli import main
from cvatkit.errors import CvatkitError
from cvatkit.processes import pid_alive
from cvatkit.runs import EVENTS_JSONL, Run, StatusEvent, StepEvent, history
from cvatkit.training import Strategy, read_record
from cvatkit.training.multiworker import (
    STOP_FILE,
    WORKERS_JSON,
    Role,
    lost_tasks,
    read_role,
    worker_failure,
)

TINY = ("batch-size=4;image-size=128;log-interval=5;checkpoint-interval=10;"
        "eval-interval=20;warmup-steps=2")


def _last_words(run: Run, index: int) -> str:
    log = run.path / ("trainer.log" if index == 0 else f"worker-{index}.log")
    lines = [line for line in log.read_text().splitlines() if line.startswith("cvatkit: ")]
    return lines[-1] if lines else ""


@pytest.mark.slow  # trains
def test_two_workers_stop_resume_lose_a_worker_and_finish(prepared, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the workers' private copies
    (tmp_path / "tmp").mkdir()
    run = Run(tmp_path / "run")
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                 str(run.path), "--workers", "2", "--detach",
                 "--hparams", f"num-steps=40;{TINY}"]) == 0
    pids = [w["pid"] for w in json.loads((run.path / WORKERS_JSON).read_text())]
    assert len(pids) == 2 and run.status().pid == pids[0]

    # stop: a request seen by one worker reaches both, which stop at the same step (the
    # workers held still from their start, and let go to step 5 and then to the request)
    pacing.freeze(pids)
    pacing.advance(run, pids, past=4)
    codes: list[int] = []
    stopping = threading.Thread(target=lambda: codes.append(main(["stop", str(run.path)])))
    stopping.start()
    pacing.until("the stop request", (run.path / STOP_FILE).exists)
    pacing.thaw(pids)
    stopping.join()
    assert codes == [0]
    st = run.status()
    assert st.state == "stopped", st
    pacing.until("both workers to end", lambda: not any(pid_alive(p) for p in pids))
    assert _last_words(run, 0) == f"cvatkit: worker 0 of 2 ended stopped at step {st.step}"
    assert _last_words(run, 1) == f"cvatkit: worker 1 of 2 ended stopped at step {st.step}"
    assert not (run.path / STOP_FILE).exists()

    # resumed; worker 1 killed: the chief fails naming it, in bounded time, and ends
    assert main(["train", "--resume", str(run.path), "--detach"]) == 0
    pids = [w["pid"] for w in json.loads((run.path / WORKERS_JSON).read_text())]
    pacing.freeze(pids)
    pacing.advance(run, pids, past=st.step + 9)
    os.kill(pids[1], signal.SIGKILL)
    pacing.thaw(pids[:1])
    killed = time.monotonic()
    st = pacing.until("the run to fail", lambda: (s := run.status()).state == "failed" and s)
    assert "worker 1 stopped answering" in st.error and "worker 0" not in st.error, st.error
    pacing.until("the chief to end", lambda: not pid_alive(pids[0]))
    print(f"a lost worker failed the run in {time.monotonic() - killed:.1f} s")

    # resumed again: both workers to the end, from the chief's last checkpoint
    capsys.readouterr()
    assert main(["train", "--resume", str(run.path)]) == 0, capsys.readouterr()
    st = run.status()
    assert st.state == "completed" and st.step == 40
    assert _last_words(run, 1) == "cvatkit: worker 1 of 2 ended completed at step 40"
    assert read_record(run).strategy == Strategy(
        num_clones=1, planned_workers=2, kind="MultiWorkerMirroredStrategy", workers=2,
        replicas=2, global_batch=4, per_replica_batch=2)
    events = run.events()
    starts = [e.message for e in events if isinstance(e, StatusEvent)
              and e.state == "running"]
    assert len(starts) == 3 and all("on 2 replicas (MultiWorkerMirroredStrategy, 2 workers)"
                                    in m for m in starts), starts
    losses = [e.total_loss for e in events if isinstance(e, StepEvent)]
    assert losses and all(math.isfinite(v) for v in losses)
    # every step once in the run's history: the chief alone wrote events
    steps = [e.step for e in history(events) if isinstance(e, StepEvent)]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    # only the chief's files: no worker wrote its own into the run folder, and the
    # workers' private copies (even the killed one's) are gone
    assert sorted(p.name for p in run.path.iterdir()) == sorted(
        ["run.json", "status.json", EVENTS_JSONL, "checkpoints", "tensorboard", "export",
         "trainer.log", "worker-1.log", WORKERS_JSON])
    assert [p.name for p in (run.path / "tensorboard").iterdir()] == ["train"]
    assert list((tmp_path / "tmp").glob("cvatkit-*")) == []

    from cvatkit.inference import load_detector

    found = load_detector(run.path / "export").detect([np.zeros((128, 128, 3), np.uint8)],
                                                      threshold=0.0)
    assert len(found) == 1


@pytest.mark.parametrize("config, message", [
    ("{", "TF_CONFIG is not a cluster description"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not a cluster description"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "names task worker 3, which its cluster (worker: 1) does not hold"),
    ('{"cluster": {"worker": [1, 2]}, "task": {"type": "worker", "index": 0}}',
     "1 is not host:port"),
    ('{"cluster": {"worker": "ab:1"}, "task": {"type": "worker", "index": 0}}',
     "its tasks must be lists of host:port"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
     "'a' is not host:port"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": true}}',
     "the task's index True is not a whole number"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     "the task's index '0' is not a whole number"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "names a host:port twice (a:1, a:1)"),
    ("[]", "TF_CONFIG is not a cluster description"),
])
def test_a_tf_config_that_is_not_a_cluster_is_refused(config, message):
    with pytest.raises(CvatkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_role({"TF_CONFIG": config})


def test_roles_and_lost_workers():
    cluster = {"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}}
    role = read_role({"TF_CONFIG": json.dumps({**cluster, "task": {"type": "worker",
                                                                    "index": 0}})})
    assert role == Role("worker", 0, 3, True) and not role.is_chief
    assert read_role({"TF_CONFIG": json.dumps(
        {**cluster, "task": {"type": "chief", "index": 0}})}).is_chief
    assert read_role({}) is None
    heartbeat = RuntimeError(
        "Collective ops is aborted by: Error reported from /job:worker/task:0: The "
        "following tasks are unhealthy (stopped sending heartbeats):\n"
        "/job:worker/replica:0/task:1\nThe tasks have crashed.")
    reset = RuntimeError(
        "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:0/"
        "device:CPU:0}} Collective ops is aborted by: recvmsg:Connection reset by peer\n"
        "Additional GRPC error information from remote target /job:worker/replica:0/"
        "task:1 while calling /tensorflow.WorkerService/RecvBuf:")
    for e in (heartbeat, reset):
        assert [r.name() for r in lost_tasks(e)] == ["worker 1"]
    assert lost_tasks(ValueError("shapes differ")) is None
    assert worker_failure([Role("worker", 1, 2)], step=12).startswith(
        "worker 1 stopped answering at step 12")


def test_train_under_a_launchers_tf_config_is_refused(prepared, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
         "task": {"type": "worker", "index": 0}}))
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                 str(tmp_path / "run"), "--hparams", f"num-steps=4;{TINY}"]) == 2
    assert "each one runs `cvatkit worker RUN_DIR`" in folded(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
    monkeypatch.delenv("TF_CONFIG")
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                 str(tmp_path / "run"), "--workers", "3", "--hparams",
                 f"num-steps=4;{TINY}"]) == 2
    assert "batch-size=4 does not split over 3 workers" in folded(
        capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
