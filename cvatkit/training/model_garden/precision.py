"""The precision a run's layers compute in (``mixed-precision``): the Keras policy Model
Garden's driver sets from ``runtime.mixed_precision_dtype``, float32 for exports, and the
cast Model Garden's batched NMS lacks under a mixed policy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def set_precision_policy(dtype: str) -> None:
    """Make the layers Keras builds from now on compute in ``dtype`` (float32, float16 or
    bfloat16; their weights stay float32), as Model Garden's driver does from
    ``runtime.mixed_precision_dtype`` before its task builds the model."""
    import tf_keras

    name = "float32" if dtype == "float32" else f"mixed_{dtype}"
    if tf_keras.mixed_precision.global_policy().name != name:
        tf_keras.mixed_precision.set_global_policy(name)
    if name != "float32":
        _batched_nms_in_float32()


@contextmanager
def float32_layers() -> Iterator[None]:
    """Keras builds float32 layers inside, whatever the run trained in; the policy is put
    back after."""
    import tf_keras

    before = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(before)


def _batched_nms_in_float32() -> None:
    """Under a mixed policy the heads' scores come out in float16 or bfloat16; Model
    Garden's ``nms=v2`` casts them to float32, its ``batched`` (TensorFlow's
    combined_non_max_suppression, float32 only) does not and fails. Cast them there too
    (a no-op in float32)."""
    import tensorflow as tf
    from official.vision.modeling.layers import detection_generator as dg

    batched = dg._generate_detections_batched
    if getattr(batched, "casts_to_float32", False):
        return

    def in_float32(boxes, scores, *args, **kwargs):
        return batched(tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32), *args,
                       **kwargs)

    in_float32.casts_to_float32 = True
    dg._generate_detections_batched = in_float32
