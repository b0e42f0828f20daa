"""How long jobs report how far they got: one protocol, a null default, a tqdm adapter.

A job (preparing a dataset, predicting frames, uploading or downloading a model or its
weights) is given a ``Progress``. It calls ``start`` when a part of it begins, with what
it is doing and how many units it will do when it knows (a download's name and size,
the frames to write), then ``advance`` with the units done since its last call: frames
for frame work, bytes (``BYTES``) for transfers. ``no_progress`` is the default of a
caller that does not watch; ``ProgressBar`` shows it as tqdm bars (the command line, a
notebook's output, a papermill log); the app's widgets have their own adapter.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Protocol, runtime_checkable

BYTES = "B"
"""The unit of transfers (tqdm's spelling: its bars scale it to kB, MB, GB)."""
FRAMES = "frame"
"""The unit of frame work (writing TFRecords, predicting)."""


@runtime_checkable
class Progress(Protocol):
    """What a long job reports to."""

    def start(self, what: str, total: int | None = None, *, unit: str = FRAMES) -> None:
        """A part of the job begins: ``what`` it does (``downloading w.tar.gz``), ``total``
        units in all (None when not known), counted in ``unit`` (``FRAMES``, ``BYTES``).
        The part before it, if any, is over."""

    def advance(self, units: int) -> None:
        """``units`` more done since the last call (from any thread)."""


class _NoProgress:
    """The ``Progress`` of a caller that does not watch."""

    def start(self, what: str, total: int | None = None, *, unit: str = FRAMES) -> None:
        pass

    def advance(self, units: int) -> None:
        pass

    def __repr__(self) -> str:
        return "no_progress"


no_progress: Progress = _NoProgress()
"""The default ``progress`` of every job: reports go nowhere."""


class ProgressBar:
    """A ``Progress`` shown as tqdm bars, one per part of the job (``start``).

    By default on stderr, and off when stderr is not a terminal (a command's output piped
    to a file). Given ``say`` (``print``, a logger's ``info``), each refresh of the bar is
    one line handed to it instead, at most every ``every`` seconds: a notebook's output
    and a papermill log get lines, not carriage returns. Close it (or use it in a
    ``with``) to end the last bar."""

    def __init__(self, *, file: IO[str] | None = None,
                 say: Callable[[str], object] | None = None, every: float = 0.1) -> None:
        if say is not None:
            self._options: dict[str, Any] = {"file": _Lines(say), "disable": False,
                                             "mininterval": every, "ascii": True, "position": 0}
        else:
            self._options = {"file": file or sys.stderr, "disable": None,
                             "mininterval": every, "dynamic_ncols": True}
        self._bar: Any = None
        self._lock = threading.Lock()

    def start(self, what: str, total: int | None = None, *, unit: str = FRAMES) -> None:
        with self._lock:
            self._end()
            self._bar = self._new(desc=what, total=total, unit=unit)

    def advance(self, units: int) -> None:
        with self._lock:
            if self._bar is None:  # a job that did not say what it does
                self._bar = self._new()
            self._bar.update(units)

    def close(self) -> None:
        """End the last bar (its final state stays shown)."""
        with self._lock:
            self._end()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new(self, *, desc: str | None = None, total: int | None = None,
             unit: str = FRAMES):
        from tqdm import tqdm

        return tqdm(desc=desc, total=total, unit=unit, unit_scale=unit == BYTES,
                    **self._options)

    def _end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _Lines:
    """A file for tqdm that hands each state of the bar to ``say`` as a line of its own
    (tqdm rewrites its line with carriage returns, which a log keeps as they are); a
    state that only differs in its times and rate (the bar shown again on ``close``) is
    not said again."""

    def __init__(self, say: Callable[[str], object]) -> None:
        self._say = say
        self._last = ""

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            line = part.rstrip()
            count = line.rsplit(" [", 1)[0]
            if line and count != self._last:
                self._last = count
                self._say(line)

    def flush(self) -> None:
        pass
