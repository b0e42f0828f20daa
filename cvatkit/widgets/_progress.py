"""A job's progress (``cvatkit.Progress``) shown on a state object's traits, which the
panels' labels and progress bars follow."""

from __future__ import annotations

import threading
import time

from traitlets import HasTraits

from cvatkit import BYTES, FRAMES


class TraitProgress:
    """A ``cvatkit.Progress`` written into traits of ``owner``: ``text`` gets
    ``PREFIX WHAT: 12 of 40 frames`` (``5.0 of 20.0 MB`` for bytes), ``done`` the units
    done, ``total`` the units in all, ``fraction`` the share done (0..1); each is
    optional. The traits change at most every ``every`` seconds or at each hundredth of
    a known total (a fast job does not flood the page), once more at the end of the
    total and on ``close``: use it in a ``with`` around the job. Safe to advance from
    any thread."""

    def __init__(self, owner: HasTraits, text: str | None = "status", *,
                 done: str | None = None, total: str | None = None,
                 fraction: str | None = None, prefix: str = "", every: float = 0.25) -> None:
        self.owner, self.prefix, self.every = owner, prefix, every
        self._traits = {"text": text, "done": done, "total": total, "fraction": fraction}
        self._lock = threading.Lock()
        self._what, self._total, self._unit, self._done = "", None, FRAMES, 0
        self._started = False
        self._shown_at, self._hundredths = float("-inf"), -1

    def start(self, what: str, total: int | None = None, *, unit: str = FRAMES) -> None:
        with self._lock:
            self._what, self._total, self._unit, self._done = what, total, unit, 0
            self._started = True
            self._show()

    def advance(self, units: int) -> None:
        with self._lock:
            self._started = True
            self._done += units
            if (time.monotonic() - self._shown_at >= self.every
                    or self._done == self._total or self._hundredth() > self._hundredths):
                self._show()

    def close(self) -> None:
        """Show where the job got to."""
        with self._lock:
            if self._started:
                self._show()

    def __enter__(self) -> TraitProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def message(self) -> str:
        """``WHAT: 12 of 40 frames``, ``WHAT: 5.0 of 20.0 MB``; ``WHAT: 12 frames`` when
        the total is not known."""
        if self._unit == BYTES:
            of = f" of {self._total / 1e6:.1f}" if self._total else ""
            amount = f"{self._done / 1e6:.1f}{of} MB"
        else:
            of = f" of {self._total}" if self._total else ""
            amount = f"{self._done}{of} {self._unit}s"
        return f"{self.prefix}{self._what}: {amount}" if self._what else \
            f"{self.prefix}{amount}"

    def _hundredth(self) -> int:
        return self._done * 100 // self._total if self._total else -1

    def _show(self) -> None:
        self._shown_at, self._hundredths = time.monotonic(), self._hundredth()
        values = {"text": self.message(), "done": self._done, "total": self._total or 0,
                  "fraction": min(self._done / self._total, 1.0) if self._total else 0.0}
        with self.owner.hold_trait_notifications():
            for role, name in self._traits.items():
                if name:
                    setattr(self.owner, name, values[role])
