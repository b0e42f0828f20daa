"""Training over several workers (MultiWorkerMirroredStrategy), as a launcher describes
them in ``TF_CONFIG``: Kubeflow's training operator on a cluster, or ``cvatkit train
--workers N`` on one machine.

Every worker runs the same loop; the chief (the ``chief`` task, else worker 0) alone
writes the run folder. The others keep their copies (checkpoints, events) in a private
folder that is removed when they end: TensorFlow's pattern, since saving a checkpoint under
MultiWorkerMirroredStrategy must happen on every worker. Decisions that end the loop (a
stop request seen by any worker, early stopping judged by the chief) are all-reduced, so
every worker leaves at the same step. A worker that dies is noticed by the others through
the coordination service's heartbeats, which abort their collective operations: the run
fails naming the worker (``worker_failure``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CvatkitError
from ..ports import free_ports

TF_CONFIG = "TF_CONFIG"
STOP_FILE = "stop-requested"
"""A file in the run folder asking every worker to save a checkpoint and stop
(``cvatkit stop`` writes it; the workers of a cluster run see it on the shared claim)."""
WORKERS_JSON = "workers.json"
"""The pids of the worker processes ``cvatkit train --workers N`` started on this machine."""


@dataclass(frozen=True)
class Role:
    """This process's place among the workers ``TF_CONFIG`` describes."""

    kind: str
    index: int
    workers: int
    """Every training task: workers and the chief, when there is one."""
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        return self.kind == "chief" or (self.index == 0 and not self.has_chief)

    def name(self) -> str:
        return f"{self.kind} {self.index}"


def read_role(environ: dict[str, str] | None = None) -> Role | None:
    """The role ``TF_CONFIG`` gives this process; None when it names no cluster."""
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        conf = json.loads(text)
        cluster, task = conf["cluster"], conf["task"]
        kind, index = str(task["type"]), int(task["index"])
        tasks = {k: list(v) for k, v in cluster.items() if k in ("chief", "worker")}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CvatkitError(
            f"{TF_CONFIG} is not a cluster description ({type(e).__name__}: {e}); it must "
            'be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
            '"worker", "index": 0}}, as the training operator sets it') from None
    hosts = [h for v in tasks.values() for h in v]
    wrong = next((h for h in hosts if not (isinstance(h, str) and _HOST_PORT.match(h))), None)
    lists = all(isinstance(cluster[k], list) for k in tasks)
    whole = isinstance(task["index"], int) and not isinstance(task["index"], bool)
    if not lists or wrong is not None or not whole:
        what = ("its tasks must be lists of host:port" if not lists else
                f"{wrong!r} is not host:port" if wrong is not None else
                f"the task's index {task['index']!r} is not a whole number")
        raise CvatkitError(
            f"{TF_CONFIG} is not a cluster description ({what}); it must be JSON like "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
            '"index": 0}}, as the training operator sets it')
    if len(set(hosts)) != len(hosts):
        raise CvatkitError(f"{TF_CONFIG} names a host:port twice ({', '.join(hosts)}); each "
                           "worker needs an address of its own")
    if kind not in tasks or not 0 <= index < len(tasks[kind]):
        raise CvatkitError(f"{TF_CONFIG} names task {kind} {index}, which its cluster "
                           f"({', '.join(f'{k}: {len(v)}' for k, v in tasks.items())}) "
                           "does not hold")
    workers = sum(len(v) for v in tasks.values())
    return Role(kind, index, workers, "chief" in tasks)


def local_cluster(workers: int) -> list[str]:
    """``TF_CONFIG`` values for ``workers`` processes on this machine, on free ports."""
    ports = free_ports(workers)
    hosts = [f"127.0.0.1:{p}" for p in ports]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


_HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}\Z|^\[[0-9A-Fa-f:.]+\]:\d{1,5}\Z")
"""``host:port`` as TF_CONFIG lists workers (a name or IPv4 address, or [IPv6])."""
_LOST = (re.compile(r"remote target /job:(\w+)/replica:\d+/task:(\d+)"),
         re.compile(r"^\s*/job:(\w+)/replica:\d+/task:(\d+)\s*$", re.MULTILINE))
"""Where TensorFlow's errors name the task lost: the peer a call failed on; each line of
the coordination service's list of tasks that stopped sending heartbeats."""


def lost_tasks(e: BaseException) -> list[Role] | None:
    """The workers a collective operation's abort says were lost ([] when it names none);
    None when ``e`` is not about a lost worker."""
    text = str(e)
    if not any(w in text for w in ("unhealthy", "heartbeat", "Collective ops is aborted")):
        return None
    role = read_role()
    named = sorted({(kind, int(index)) for pattern in _LOST
                    for kind, index in pattern.findall(text)})
    return [Role(kind, index, role.workers if role else 0, role.has_chief if role else False)
            for kind, index in named if role is None or (kind, index) != (role.kind,
                                                                          role.index)]


def worker_failure(lost: list[Role], *, step: int) -> str:
    """The run's failure message when ``lost`` workers stopped answering."""
    who = " and ".join(r.name() for r in lost) if lost else "a worker"
    return (f"{who} stopped answering at step {step} (its process ended or its machine went "
            "away; its log says why): the other workers stopped too. Resume from the last "
            "checkpoint once every worker can run")


class Consensus:
    """Agreement among the workers on what ends or steers the loop: one small all-reduce
    per question, asked by every worker at the same point of the loop."""

    def __init__(self, strategy: Any, role: Role | None) -> None:
        self.role = role
        self._reduce = None
        if role is not None and role.workers > 1:
            import tensorflow as tf

            @tf.function
            def reduce(values):
                def on_replica(v):
                    ctx = tf.distribute.get_replica_context()
                    # each worker's values once: its first replica speaks for it
                    first = ctx.replica_id_in_sync_group % (
                        ctx.num_replicas_in_sync // role.workers) == 0
                    return ctx.all_reduce("sum", tf.where(first, v, tf.zeros_like(v)))

                return strategy.run(on_replica, args=(values,))

            self._reduce, self._tf, self._strategy = reduce, tf, strategy

    def _sum(self, values: list[float]) -> list[float]:
        tf = self._tf
        out = self._reduce(tf.constant(values, dtype=tf.float64))
        return [float(v) for v in self._strategy.experimental_local_results(out)[0].numpy()]

    def agree(self, anyone: bool, chief: bool = False) -> tuple[bool, bool]:
        """Whether any worker said ``anyone``; what the chief said of ``chief``."""
        if self._reduce is None:
            return anyone, chief
        total = self._sum([float(anyone), float(chief and self.role.is_chief)])
        return total[0] > 0, total[1] > 0

    def chiefs(self, logs: dict[str, float]) -> dict[str, float]:
        """The chief's ``logs`` (every worker has the same keys): what every worker's
        evaluation counts as, so that all keep the same best checkpoint (writing one is
        a collective operation)."""
        if self._reduce is None:
            return logs
        keys = sorted(logs)
        mine = [logs[k] if self.role.is_chief else 0.0 for k in keys]
        return dict(zip(keys, self._sum(mine)))


class ChiefEvaluations:
    """A training loop whose evaluations are the chief's (``Consensus.chiefs``)."""

    def __init__(self, loop: Any, consensus: Consensus) -> None:
        self._loop, self._consensus = loop, consensus

    def evaluate(self) -> dict[str, float]:
        return self._consensus.chiefs(self._loop.evaluate())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def private_folder(run: Path, role: Role) -> Path:
    """A new private folder for ``role``'s copy of ``run``, in the temporary folder; what
    an earlier one of the same worker left there (killed, it could not remove it) goes."""
    key = hashlib.sha1(str(run.resolve()).encode()).hexdigest()[:10]
    prefix = f"cvatkit-{key}-{role.kind}{role.index}-"
    for old in Path(tempfile.gettempdir()).glob(prefix + "*"):
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=prefix))


def copy_latest_checkpoint(source: Path, dest: Path) -> None:
    """Give a worker's private checkpoints folder the chief's latest checkpoint, so that
    it resumes from it and saves at the same steps as the chief (saving is collective)."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(source))
    if latest is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    name = Path(latest).name
    for f in source.glob(f"{name}.*"):
        shutil.copy2(f, dest / f.name)
    tf.compat.v1.train.update_checkpoint_state(
        str(dest), str(dest / name), all_model_checkpoint_paths=[str(dest / name)])
