"""The run directory: the only channel between a trainer process and any UI.

``run.json`` is the resolved spec, ``status.json`` the current state, ``events.jsonl`` an
append-only log of typed events (one JSON object per line), next to ``checkpoints/``,
``tensorboard/`` and, at the end, ``export/``. ``Run(path).follow()`` yields the events
as they come, so the CLI's progress bar, the live plots and the tests share one reader.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunError
from .files import pid_alive, write_text_file

RUN_JSON = "run.json"
STATUS_JSON = "status.json"
EVENTS_JSONL = "events.jsonl"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
EXPORT = "export"
SAVED_MODEL = "saved_model"
"""``export/saved_model/``: the SavedModel, beside the label files."""
MODEL_JSON = "model.json"
"""``export/model.json``: what the model is (its catalog key, labels, input size)."""
TERMINAL = ("completed", "stopped", "failed")
STATES = ("starting", "running", "stopping") + TERMINAL


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
    kind: str = "eval"

    def summary(self) -> str:
        """``step 600: val COCO AP 0.877, AP@0.5 1.000 (square 0.851, ...)``."""
        per = ", ".join(f"{k} {v:.3f}" for k, v in self.per_class.items())
        return (f"step {self.step}: {self.split} COCO AP {self.ap:.3f}, AP@0.5 "
                f"{self.ap50:.3f} ({per})")


@dataclass(frozen=True, kw_only=True)
class StatusEvent:
    """A change of state: started, stopped, completed, failed (with the reason)."""

    step: int
    time: float
    state: str
    message: str = ""
    kind: str = "status"


Event = StepEvent | EvalEvent | StatusEvent
_KINDS = {"step": StepEvent, "eval": EvalEvent, "status": StatusEvent}


def event_from_json(line: str) -> Event | None:
    try:
        obj = json.loads(line)
        cls = _KINDS[obj["kind"]]
        return cls(**obj)
    except (ValueError, KeyError, TypeError):
        return None  # a line being written, or one from a newer version


@dataclass(frozen=True, kw_only=True)
class Status:
    state: str
    step: int = 0
    pid: int | None = None
    error: str = ""
    updated: float = 0.0
    total_steps: int = 0


class Run:
    """A run directory, read or written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # -- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / RUN_JSON).is_file()

    def spec(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a cvatkit run (no {RUN_JSON})") from None

    def status(self) -> Status:
        for _attempt in range(5):
            try:
                obj = json.loads((self.path / STATUS_JSON).read_text(encoding="utf-8"))
                return Status(**obj)
            except FileNotFoundError:
                return Status(state="starting")
            except (ValueError, TypeError):
                time.sleep(0.05)  # written by an older cvatkit, or not by cvatkit at all
        return Status(state="starting")

    def is_alive(self) -> bool:
        """Whether the trainer process of a non-terminal run is still there."""
        st = self.status()
        if st.state in TERMINAL or not st.pid:
            return False
        return pid_alive(st.pid) and _pid_is_trainer(st.pid)

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

    def events(self) -> list[Event]:
        return list(self.read_events(0)[0])

    def follow(self, *, poll: float = 0.5, timeout: float | None = None) -> Iterator[Event]:
        """Every event, then new ones as they are written, until the run ends (or its
        process is gone without saying so, which yields a ``failed`` status)."""
        offset = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events, offset = self.read_events(offset)
            yield from events
            st = self.status()
            if st.state in TERMINAL:
                events, offset = self.read_events(offset)
                yield from events
                return
            if st.pid and not self.is_alive():
                events, offset = self.read_events(offset)
                yield from events
                if self.status().state not in TERMINAL:
                    yield StatusEvent(step=st.step, time=time.time(), state="failed",
                                      message="the trainer process ended without a word "
                                              "(killed, or out of memory?)")
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

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_text_file(self.path / RUN_JSON, json.dumps(spec, indent=2, default=str) + "\n")

    def set_status(self, state: str, *, step: int = 0, error: str = "",
                   total_steps: int = 0) -> None:
        assert state in STATES, state
        st = Status(state=state, step=step, pid=os.getpid(), error=error,
                    updated=time.time(), total_steps=total_steps)
        write_text_file(self.path / STATUS_JSON, json.dumps(asdict(st)) + "\n")

    def record_pid(self, pid: int) -> None:
        """The trainer's pid, as soon as it is started (it then writes its own status)."""
        st = self.status()
        write_text_file(self.path / STATUS_JSON, json.dumps(
            {**asdict(st), "pid": pid, "updated": time.time()}) + "\n")

    def append(self, event: Event) -> None:
        with open(self.path / EVENTS_JSONL, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(event)) + "\n")
            f.flush()


def run_of_checkpoint(path: str | os.PathLike[str]) -> Path | None:
    """The run folder a path names: the folder itself, its checkpoints/ or one of its
    checkpoints; None when it is none of these."""
    p = Path(path)
    return next((c for c in (p, p.parent, p.parent.parent) if (c / RUN_JSON).is_file()),
                None)


def _pid_is_trainer(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    return not cmdline or b"cvatkit" in cmdline  # empty while the process starts
