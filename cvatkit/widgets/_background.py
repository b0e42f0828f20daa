"""Slow actions of a panel (uploads, predictions) run in a thread, so the page stays
alive; tests run them in the caller's thread instead."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Background:
    """Runs a state's action (which reports its own errors) in a thread of its own, or
    at once in the caller's thread when not ``enabled``."""

    def __init__(self, enabled: bool = True, name: str = "cvatkit-action") -> None:
        self.enabled = enabled
        self.name = name
        self._threads: list[threading.Thread] = []

    def run(self, action: Callable[[], object]) -> None:
        if not self.enabled:
            action()
            return
        thread = threading.Thread(target=action, daemon=True, name=self.name)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    @property
    def busy(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the actions started so far to end."""
        for thread in list(self._threads):
            thread.join(timeout)
