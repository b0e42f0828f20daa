"""A ``cvatkit.Progress`` that keeps what a job told it, for tests to read."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Recorder:
    """What a job reported: ``starts`` as (what, total, unit), ``advances`` as the units
    of each ``advance`` (from any thread); ``on_advance`` is called with each, to break a
    job off half-way."""

    def __init__(self, on_advance: Callable[[int], object] | None = None) -> None:
        self.starts: list[tuple[str, int | None, str]] = []
        self.advances: list[int] = []
        self._on_advance = on_advance
        self._lock = threading.Lock()

    def start(self, what: str, total: int | None = None, *, unit: str = "frame") -> None:
        self.starts.append((what, total, unit))

    def advance(self, units: int) -> None:
        with self._lock:
            self.advances.append(units)
        if self._on_advance is not None:
            self._on_advance(units)

    @property
    def done(self) -> int:
        return sum(self.advances)
