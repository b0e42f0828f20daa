"""How long jobs report how far they got: one callback type, with a no-op default.

A job (preparing a dataset, predicting frames, uploading or downloading a model) calls its
``progress`` with the number of units done since its last call: frames for frame work,
bytes for transfers. ``tqdm(...).update`` is one; a widget's counter is another.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int], object]
"""Called with the number of units (frames, bytes) done since the last call."""


def no_progress(_done: int) -> None:
    """The progress callback of a caller that does not watch."""
