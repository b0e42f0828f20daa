"""How much a file the kit did not write may hold before it is refused by name.

A zip of a few kilobytes can inflate to gigabytes, and an image header can promise more
pixels than the machine has memory for: each limit below bounds one kind of input before
it is read, and each can be raised by its environment variable (a whole number) for the
rare input that is real and that large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import LimitError, UsageError

MB = 1 << 20


@dataclass(frozen=True)
class Limit:
    env: str
    """The environment variable that raises (or lowers) it."""
    default: int
    unit: str
    what: str
    """What it bounds, as a message names it."""
    scale: int = 1
    """Units -> what ``value`` counts (bytes for MB, pixels for megapixels)."""

    def units(self) -> int:
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{self.env}={text!r}: give a whole number of {self.unit}, "
                             f"e.g. {self.default} (the default)")
        return int(text)

    def value(self) -> int:
        return self.units() * self.scale

    def check(self, amount: int, where: str, *, fix: str = "") -> None:
        """Refuse ``amount`` (in bytes or pixels) of ``where`` when it is over the limit."""
        if amount > self.value():
            shown = amount / self.scale
            raise LimitError(
                f"{where} holds {shown:,.{1 if shown < 100 else 0}f} {self.unit}, over the "
                f"limit of {self.units():,} "
                f"{self.unit} for {self.what}; {fix + '; or ' if fix else ''}set {self.env} "
                "higher if it is meant to be that large")


IMAGE = Limit("CVATKIT_MAX_IMAGE_MB", 256, "MB", "an image file", MB)
PIXELS = Limit("CVATKIT_MAX_IMAGE_MEGAPIXELS", 178, "megapixels", "an image", 1_000_000)
ANNOTATIONS = Limit("CVATKIT_MAX_ANNOTATIONS_MB", 1024, "MB",
                    "an annotation file (XML or JSON)", MB)
TEXT = Limit("CVATKIT_MAX_TEXT_MB", 16, "MB",
             "a settings file (hyperparameters, catalog, labels, manifest, a run's record)",
             MB)
INFLATION = Limit("CVATKIT_MAX_INFLATION", 100, "times", "what a zip member inflates to")
"""How many times its compressed size a member of a zip may inflate to (once it is over
``INFLATION_FLOOR``): real annotations and images stay far below; a zip bomb does not."""
INFLATION_FLOOR = 8 * MB
ANSWER = Limit("CVATKIT_NETWORK_TIMEOUT", 15, "seconds",
               "a server to answer (CVAT, S3, a download)")
"""How long a request waits for a server to connect, and then for each part of its answer;
a request that times out is tried again once (S3: as its retry setting says), so a server
that accepts connections and never answers fails the command within a minute."""
LIMITS = (IMAGE, PIXELS, ANNOTATIONS, TEXT, INFLATION, ANSWER)
