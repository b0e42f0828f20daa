"""Starting a detector from a published one trained on other classes (COCO's 91).

Model Garden loads a checkpoint whole or by module (backbone, decoder); a whole detector
trained on another class count does not fit: its class predictor has another shape. Here
a twin of the model is built with the checkpoint's class count, the checkpoint is read into
it as Model Garden's task would, and every variable whose shape fits is copied across, in
the order the two models created them; the others (the class predictor) keep their fresh
initial values."""

from __future__ import annotations

import copy

from ...errors import CvatkitError
from ..record import FitReport


def load_fitting(model, task_config, path: str, num_classes: int) -> FitReport:
    """Load the published checkpoint ``path`` (a detector of ``num_classes`` classes,
    built as ``task_config`` says) into ``model``, variable by variable where shapes fit."""
    import tensorflow as tf
    from official.core import task_factory

    twin_config = copy.deepcopy(task_config)
    twin_config.model.num_classes = num_classes or task_config.model.num_classes
    twin_config.init_checkpoint = None
    twin = task_factory.get_task(twin_config).build_model()
    size = task_config.model.input_size
    for m in (model, twin):
        _build(m, size)
    try:
        status = tf.train.Checkpoint(**twin.checkpoint_items).read(path)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CvatkitError(
            f"the published checkpoint {path} does not fit this model's architecture "
            f"({str(e).splitlines()[0][:300]}); check the catalog entry's backbone and head "
            "settings against the checkpoint's") from None
    restored, total, fresh = 0, 0, []
    for name in twin.checkpoint_items:
        ours, theirs = getattr(model, name).weights, getattr(twin, name).weights
        if len(ours) != len(theirs):
            raise CvatkitError(
                f"the published checkpoint {path}: its {name} has {len(theirs)} variables, "
                f"the model's {len(ours)}; the catalog entry does not build the same "
                "architecture")
        for mine, published in zip(ours, theirs):
            total += 1
            if mine.shape == published.shape:
                mine.assign(published)
                restored += 1
            else:
                fresh.append(f"{name}/{mine.name.split('/', 1)[-1].split(':')[0]}")
    return FitReport(restored=restored, total=total, fresh=tuple(fresh))


def _build(model, input_size) -> None:
    """Create every variable of a one-stage detector (Keras makes a head's on first call)."""
    import tensorflow as tf

    if not hasattr(model, "head") or not hasattr(model, "decoder") or model.head is None:
        raise CvatkitError("a published whole detector can start one-stage (RetinaNet) "
                           "models only; start this model from its backbone (imagenet)")
    features = model.backbone(tf.zeros([1, *input_size]), training=False)
    if model.decoder is not None:  # an identity decoder is none
        features = model.decoder(features, training=False)
    model.head(features, training=False)
