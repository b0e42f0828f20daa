"""The run directory: the only channel between a trainer process and any UI.

``run.json`` is the run's record (``training.record``: what the run is, typed and
versioned), ``status.json`` the current state, ``events.jsonl`` an
append-only log of typed events (one JSON object per line), next to ``checkpoints/`` (the
last few, and in ``checkpoints/best/`` the one whose evaluation gave the best AP),
``tensorboard/`` and, at the end, ``export/``. ``Run(path).follow()`` yields the events
as they come, so the CLI's progress bar, the live plots and the tests share one reader.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import RunError
from .files import write_text_file
from .limits import TEXT
from .processes import command_line, same_process, start_time

RUN_JSON = "run.json"
STATUS_JSON = "status.json"
EVENTS_JSONL = "events.jsonl"
CHECKPOINTS = "checkpoints"
BEST = "best"
"""``checkpoints/best/``: the checkpoint whose evaluation gave the best AP, and
``best.json`` saying which it is."""
BEST_JSON = "best.json"
TENSORBOARD = "tensorboard"
EXPORT = "export"
TRAINER_LOG = "trainer.log"
SAVED_MODEL = "saved_model"
"""``export/saved_model/``: the SavedModel, beside the label files."""
MODEL_JSON = "model.json"
"""``export/model.json``: what the model is (its catalog key, labels, input size)."""
TERMINAL = ("completed", "stopped", "failed")
STATES = ("queued", "starting", "running", "stopping") + TERMINAL
"""``queued``: written, its trainers to be started elsewhere (``cvatkit worker``)."""


@dataclass(frozen=True, kw_only=True)
class StepEvent:
    """Training progress, averaged over the steps since the previous one."""

    step: int
    time: float
    losses: dict[str, float]
    """Every loss component the model reports (``cls_loss``, ``box_loss``, ...)."""
    total_loss: float
    learning_rate: float
    examples_per_sec: float
    steps_per_sec: float
    stage: int = 0
    kind: str = "step"


@dataclass(frozen=True, kw_only=True)
class EvalEvent:
    """An evaluation: COCO AP over IoU 0.5:0.95, AP at IoU 0.5, AP per class."""

    step: int
    time: float
    ap: float
    ap50: float
    per_class: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    split: str = "val"
    best: bool = False
    """Its AP beats every earlier evaluation's: its checkpoint is now the run's best."""
    kind: str = "eval"

    def summary(self) -> str:
        """``step 600: val COCO AP 0.877, AP@0.5 1.000 (square 0.851, ...)``, then
        ``; the best so far`` when it is."""
        per = ", ".join(f"{k} {v:.3f}" for k, v in self.per_class.items())
        return (f"step {self.step}: {self.split} COCO AP {self.ap:.3f}, AP@0.5 "
                f"{self.ap50:.3f} ({per})" + ("; the best so far" if self.best else ""))


@dataclass(frozen=True, kw_only=True)
class StatusEvent:
    """A change of state: started, stopped, completed, failed (with the reason)."""

    step: int
    time: float
    state: str
    message: str = ""
    resumed_from: int | None = None
    """Set when a run goes on from its checkpoint at this step: what was logged past it
    before (steps lost to a kill) is superseded."""
    kind: str = "status"


@dataclass(frozen=True, kw_only=True)
class BestCheckpoint:
    """The checkpoint whose evaluation gave a run's best COCO AP (``checkpoints/best/``)."""

    step: int
    ap: float
    checkpoint: str
    """Its prefix (``.../checkpoints/best/ckpt-400``)."""


Event = StepEvent | EvalEvent | StatusEvent
_KINDS = {"step": StepEvent, "eval": EvalEvent, "status": StatusEvent}


def event_from_json(line: str) -> Event | None:
    try:
        obj = json.loads(line)
        cls = _KINDS[obj["kind"]]
        return cls(**obj)
    except (ValueError, KeyError, TypeError):
        return None  # a line being written, or one from a newer version


def history(events: list[Event]) -> list[Event]:
    """The run's events as they count: what a resumed run logged again from its
    checkpoint replaces what was logged past that step before."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, StatusEvent) and event.resumed_from is not None:
            out = [e for e in out if isinstance(e, StatusEvent) or e.step <= event.resumed_from]
        out.append(event)
    return out


@dataclass(frozen=True, kw_only=True)
class Status:
    state: str
    step: int = 0
    pid: int | None = None
    pid_started: int | None = None
    """When that process started (``processes.start_time``): a pid that a new process
    got after the trainer ended is not the trainer."""
    error: str = ""
    updated: float = 0.0
    total_steps: int = 0
    gone: bool = False
    """The trainer process ended without saying how (``Run.status`` tells)."""
    host: str = ""
    """The machine the pid is on: a trainer on another (a cluster's) is not looked for."""


class Run:
    """A run directory, read or written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # -- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / RUN_JSON).is_file()

    def record_json(self) -> dict[str, Any]:
        """``run.json`` as it is written, a JSON object: what the store publishes. The
        record it holds is read, typed, by ``cvatkit.training.read_record``."""
        try:
            TEXT.check((self.path / RUN_JSON).stat().st_size, str(self.path / RUN_JSON))
            spec = json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a cvatkit run (no {RUN_JSON})") from None
        except ValueError as e:  # not JSON, not UTF-8
            raise self._damaged(RUN_JSON, e) from None
        if not isinstance(spec, dict):
            raise self._damaged(RUN_JSON, "it is not a JSON object")
        return spec

    def _damaged(self, name: str, why: object) -> RunError:
        return RunError(
            f"{self.path / name} is damaged ({why}), so the run cannot be read; restore the "
            "file from a copy, or delete the run folder if the run is not needed")

    def status(self) -> Status:
        """The run's state as it is: what its trainer last wrote, except that a run whose
        trainer process is gone without saying how it ended has failed (the reason: the
        last words of its log)."""
        st = self.written_status()
        if st.state in TERMINAL or not st.pid or self._trainer_there(st):
            return st
        return replace(st, state="failed", gone=True, error=(
            f"the trainer is gone (last words: {self.last_words() or 'none'}); resume the "
            f"run with `cvatkit train --resume {self.path}`"))

    def written_status(self) -> Status:
        """``status.json`` as the trainer (or its launcher) last wrote it."""
        why: object = ""
        for _attempt in range(5):
            try:
                TEXT.check((self.path / STATUS_JSON).stat().st_size, str(self.path / STATUS_JSON))
                obj = json.loads((self.path / STATUS_JSON).read_text(encoding="utf-8"))
            except FileNotFoundError:
                return Status(state="starting")
            except ValueError as e:  # cut short by a full disk, or not written by cvatkit
                why = e
                time.sleep(0.05)
                continue
            if not isinstance(obj, dict) or obj.get("state") not in STATES:
                why = "it names no state of a run"
                break
            if not all(isinstance(obj.get(k, 0), int) and not isinstance(obj.get(k, 0), bool)
                       for k in ("step", "total_steps")) or \
                    not isinstance(obj.get("pid"), (int, type(None))):
                why = "its step, total or process id is not a whole number"
                break
            known = {f.name for f in fields(Status)} - {"gone"}
            try:  # fields a newer cvatkit added are left out
                return Status(**{k: v for k, v in obj.items() if k in known})
            except TypeError as e:
                why = e
                break
        raise self._damaged(STATUS_JSON, why)

    def is_alive(self) -> bool:
        """Whether the trainer process of a non-terminal run is still there."""
        st = self.written_status()
        return st.state not in TERMINAL and bool(st.pid) and self._trainer_there(st)

    @staticmethod
    def _trainer_there(st: Status) -> bool:
        """Whether the process the status names is still that process: by its start
        time where both are known, else by its command line."""
        if st.host and st.host != socket.gethostname():
            return True  # its state is all this machine can know of it
        if not same_process(st.pid, st.pid_started):
            return False
        if st.pid_started is not None and start_time(st.pid) is not None:
            return True
        cmdline = command_line(st.pid)
        return not cmdline or any("cvatkit" in part for part in cmdline)

    def last_words(self) -> str:
        """The last line the trainer wrote to ``trainer.log`` ('' when none)."""
        try:
            with open(self.path / TRAINER_LOG, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(f.tell() - 4096, 0))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return last[:300]

    def latest_checkpoint(self) -> str | None:
        """The prefix of the run's newest checkpoint (``.../checkpoints/ckpt-600``), or
        None before the first one."""
        state = self.path / CHECKPOINTS / "checkpoint"
        if not state.is_file():
            return None
        for line in state.read_text().splitlines():
            if line.startswith("model_checkpoint_path:"):
                name = line.split(":", 1)[1].strip().strip('"')
                return str(self.path / CHECKPOINTS / name)
        return None

    def best_checkpoint(self) -> BestCheckpoint | None:
        """The checkpoint whose evaluation gave the run's best AP, or None before one did
        (or in a run made before best checkpoints were kept)."""
        folder = self.path / CHECKPOINTS / BEST
        try:
            obj = json.loads((folder / BEST_JSON).read_text(encoding="utf-8"))
            return BestCheckpoint(step=int(obj["step"]), ap=float(obj["ap"]),
                                  checkpoint=str(folder / obj["checkpoint"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            raise RunError(f"{folder / BEST_JSON} is damaged ({e}); delete {folder} to "
                           "forget the best checkpoint") from None

    def exported_checkpoint(self) -> str | None:
        """The checkpoint a new run starts from when given this run (or a version pulled
        from a store, whose ``model.json`` is at its top): the one its export was made from
        when that is the best (``model.json`` says so), else the newest; None before the
        first."""
        about = {}
        for path in (self.path / EXPORT / MODEL_JSON, self.path / MODEL_JSON):
            try:
                about = json.loads(path.read_text(encoding="utf-8"))
                break
            except (OSError, ValueError):
                continue
        best = self.best_checkpoint() if isinstance(about, dict) and \
            about.get("exported") == "best" else None
        if best is not None and best.step == about.get("step"):
            return best.checkpoint
        return self.latest_checkpoint()

    def exported_evaluation(self) -> EvalEvent | None:
        """The evaluation of the checkpoint ``export/`` was made from (``model.json`` names
        its step; for an export that does not, the last evaluation); None when none was."""
        evals = [e for e in self.events() if isinstance(e, EvalEvent)]
        try:
            about = json.loads((self.path / EXPORT / MODEL_JSON).read_text(encoding="utf-8"))
            step = about["step"]
        except (OSError, ValueError, KeyError, TypeError):
            step = None
        return next((e for e in reversed(evals) if e.step == step), evals[-1] if evals else None)

    def events(self) -> list[Event]:
        """Every event the run has written, as they count (``history``)."""
        return history(self.read_events(0)[0])

    def follow(self, *, poll: float = 0.5, timeout: float | None = None) -> Iterator[Event]:
        """Every event, then new ones as they are written, until the run ends (or its
        process is gone without saying so, which yields a ``failed`` status)."""
        offset = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        said = ""  # the state the last status event gave
        while True:
            st = self.status()
            events, offset = self.read_events(offset)
            for event in events:
                said = event.state if isinstance(event, StatusEvent) else said
                yield event
            if st.state in TERMINAL:
                events, offset = self.read_events(offset)
                for event in events:
                    said = event.state if isinstance(event, StatusEvent) else said
                    yield event
                if said != st.state:  # a trainer that ended without a word
                    yield StatusEvent(step=st.step, time=time.time(), state=st.state,
                                      message=st.error)
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(poll)

    def read_events(self, offset: int = 0) -> tuple[list[Event], int]:
        """The whole events written from byte ``offset`` on, and the offset after them:
        a poller passes the offset back next time (never blocks)."""
        try:
            with open(self.path / EVENTS_JSONL, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1  # only whole lines
        out = [e for line in data[:end].decode("utf-8").splitlines()
               if (e := event_from_json(line)) is not None]
        return out, offset + end

    # -- writing (the trainer) -----------------------------------------------------------

    def set_status(self, state: str, *, step: int = 0, error: str = "",
                   total_steps: int = 0) -> None:
        """Write the run's state, as this process (the trainer, or its launcher)."""
        assert state in STATES, state
        pid = None if state == "queued" else os.getpid()
        st = Status(state=state, step=step, pid=pid,
                    pid_started=start_time(pid) if pid else None, error=error,
                    updated=time.time(), total_steps=total_steps, host=socket.gethostname())
        write_text_file(self.path / STATUS_JSON, json.dumps(asdict(st)) + "\n")

    def record_pid(self, pid: int) -> None:
        """The trainer's pid, as soon as it is started (it then writes its own status)."""
        st = self.written_status()
        write_text_file(self.path / STATUS_JSON, json.dumps(
            {**asdict(st), "pid": pid, "pid_started": start_time(pid),
             "updated": time.time(), "host": socket.gethostname()}) + "\n")

    def append(self, event: Event) -> None:
        with open(self.path / EVENTS_JSONL, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(event)) + "\n")
            f.flush()


def run_of_checkpoint(path: str | os.PathLike[str]) -> Path | None:
    """The run folder a path names: the folder itself, its checkpoints/ or one of its
    checkpoints (the best one included); None when it is none of these."""
    p = Path(path)
    places = [p, p.parent, p.parent.parent]
    if p.parent.name == BEST and p.parent.parent.name == CHECKPOINTS:
        places.append(p.parent.parent.parent)
    return next((c for c in places if (c / RUN_JSON).is_file()), None)


def list_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """The run folders in ``folder`` (those with a ``run.json``), the most recently
    written record first; none when the folder does not exist."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        try:
            found.append(((p / RUN_JSON).stat().st_mtime, p))
        except OSError:  # not a run folder (or not a folder)
            continue
    return [p for _, p in sorted(found, key=lambda t: t[0], reverse=True)]


def new_run_path(folder: str | os.PathLike[str], model_key: str) -> Path:
    """A run folder in ``folder`` whose name is not yet taken: ``YYYYmmdd-HHMMSS-MODEL``
    (``-2``, ``-3`` after it when two runs start in the same second), so names sort by
    time."""
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{model_key}"
    root = Path(folder).expanduser()
    path, n = root / base, 2
    while path.exists():
        path, n = root / f"{base}-{n}", n + 1
    return path
