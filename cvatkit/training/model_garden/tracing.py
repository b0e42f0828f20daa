"""Tracing without AutoGraph where it has nothing to do.

Model Garden's one-stage detectors (RetinaNet: their input parsers, train and validation
steps, their serving function) use TensorFlow's own control flow (``tf.cond``,
``tf.map_fn``) wherever a tensor decides, so AutoGraph's rewriting of their Python source
at each trace changes nothing but costs time: on the sample, a run's start-up took about
11 CPU-seconds instead of 20, and its tracing and evaluation about 2 less each. Training
loops of ``orbit`` keep AutoGraph (``for _ in tf.range(n)``); what they call is traced as
written. Python control flow on a tensor in what is traced as written fails loudly at the
trace, never silently. Two-stage detectors keep AutoGraph throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PLAIN_FAMILIES = ("retinanet",)


def traced_plainly(family: str) -> bool:
    """Whether models of ``family`` are traced without AutoGraph."""
    return family in PLAIN_FAMILIES


def as_written(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, traced as written when a ``tf.function`` calls it, and so is what it
    calls (Keras layers included)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


@contextmanager
def input_pipelines_as_written() -> Iterator[None]:
    """``tf.data`` map functions made inside are traced as written."""
    from tensorflow.python.autograph.core import ag_ctx

    with ag_ctx.ControlStatusCtx(status=ag_ctx.Status.DISABLED):
        yield
