"""A deterministic train/validation split by frame name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DEFAULT_VAL_FRACTION = 0.1


def split_val(names: Iterable[str], fraction: float = DEFAULT_VAL_FRACTION,
              seed: int = 0) -> set[str]:
    """The names that go to validation: exactly round(n * fraction) of them (at least one
    when fraction > 0 and there are two frames or more).

    The choice depends only on the names and the seed, not on their order, so the same
    task always splits the same way and a frame keeps its side as the task grows.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the validation fraction must be in [0, 1], got {fraction}")
    names = list(names)
    count = round(len(names) * fraction)
    if fraction > 0 and len(names) >= 2:
        count = max(count, 1)
    ranked = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).digest())
    return set(ranked[:count])
