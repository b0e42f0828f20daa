"""TF Model Garden experiment configs from a catalog entry, hyperparameters and a dataset."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ...dataset import VAL_COCO_JSON, Dataset
from ...errors import CvatkitError
from ..catalog import ModelSpec
from ..resolution import Hyperparameters
from .input_paths import input_pattern

_EXPERIMENTS = {
    "retinanet": "retinanet_resnetfpn_coco",
    "fasterrcnn": "fasterrcnn_resnetfpn_coco",
    "maskrcnn": "maskrcnn_resnetfpn_coco",
}
EVAL_BATCH = 8
_AUG_TYPES = {"autoaugment": "autoaug", "randaugment": "randaug"}
"""aug-type values -> Model Garden's names of its augmentation policies."""


def backbone_config(name: str, min_level: int, max_level: int):
    from official.vision.configs import backbones

    mobilenet = re.fullmatch(r"mobilenet_v([12])(?:_(\d\d\d))?", name)
    if mobilenet:  # mobilenet_v2_050: MobileNetV2 with half the filters in every layer
        version, width = mobilenet.groups()
        return backbones.Backbone(type="mobilenet", mobilenet=backbones.MobileNet(
            model_id=f"MobileNetV{version}",
            filter_size_scale=int(width) / 100 if width else 1.0))
    if name in ("resnet50", "resnet101"):
        return backbones.Backbone(type="resnet",
                                  resnet=backbones.ResNet(model_id=int(name[6:])))
    if name == "spinenet49":
        return backbones.Backbone(type="spinenet", spinenet=backbones.SpineNet(
            model_id="49", min_level=min_level, max_level=max_level))
    if name == "spinenet49_mobile":  # as Model Garden's retinanet_mobile_coco
        return backbones.Backbone(type="spinenet_mobile", spinenet_mobile=(
            backbones.SpineNetMobile(model_id="49", min_level=min_level,
                                     max_level=max_level, se_ratio=0.2, expand_ratio=6)))
    if name == "inception_resnet_v2":
        from .backbones import inception_resnet_v2_config

        return inception_resnet_v2_config()
    raise CvatkitError(f"unknown backbone {name!r}; use mobilenet_v1, mobilenet_v2 (a "
                       "width other than 1 as a suffix: mobilenet_v2_050 for 0.5), resnet50, "
                       "resnet101, spinenet49, spinenet49_mobile or inception_resnet_v2")


def build_experiment(spec: ModelSpec, hp: Hyperparameters, data: Dataset, *,
                     init_checkpoint: str | None = None,
                     init_modules: str = "backbone", workers: int = 1):
    """The Model Garden ``ExperimentConfig`` that trains ``spec`` on ``data`` (over
    ``workers`` workers: each evaluates every validation frame, so that each one's COCO
    evaluation, which sees only its own predictions, is the whole one)."""
    import official.vision  # noqa: F401  (registers the experiments)
    from official.core import exp_factory

    c = exp_factory.get_exp_config(spec.experiment or _EXPERIMENTS[spec.family])
    _model_config(c.task.model, spec, hp, data)
    t = c.task
    t.init_checkpoint = init_checkpoint
    t.init_checkpoint_modules = init_modules if init_modules == "all" else [
        m.strip() for m in init_modules.split(",")]
    t.annotation_file = str(data.path / VAL_COCO_JSON) if data.val_frames else None
    t.per_category_metrics = True
    t.losses.l2_weight_decay = hp.l2_weight_decay
    if spec.family == "retinanet":
        t.losses.box_loss_weight = spec.box_loss_weight
        t.losses.huber_loss_delta = spec.huber_loss_delta
    _data_config(t.train_data, data.path / "train-*.tfrecord", hp.batch_size, training=True,
                 hp=hp, shuffle=min(1000, max(data.train_frames, 1)))
    _data_config(t.validation_data, data.path / "val-*.tfrecord",
                 eval_batch_size(data.val_frames, hp.num_clones * workers), training=False,
                 hp=hp)
    t.validation_data.sharding = workers == 1
    for d in (t.train_data, t.validation_data):
        if hasattr(d.decoder.simple_decoder, "mask_binarize_threshold"):
            d.decoder.simple_decoder.mask_binarize_threshold = 0.5 if data.include_masks else None

    c.runtime.mixed_precision_dtype = hp.mixed_precision
    c.runtime.loss_scale = "dynamic" if hp.mixed_precision == "float16" else None
    c.runtime.enable_xla = hp.jit_compile  # the task's train step, tf.function(jit_compile)
    c.runtime.num_gpus = hp.num_clones
    tr = c.trainer
    tr.train_steps = hp.num_steps
    tr.steps_per_loop = min(hp.log_interval, hp.num_steps)
    tr.summary_interval = tr.steps_per_loop
    tr.checkpoint_interval = hp.checkpoint_interval
    tr.validation_interval = hp.eval_interval or hp.num_steps
    per_worker = t.validation_data.global_batch_size // workers
    tr.validation_steps = math.ceil(data.val_frames / per_worker) if data.val_frames else 0
    tr.best_checkpoint_export_subdir = ""
    _optimizer_config(tr.optimizer_config, hp)
    if spec.overrides:
        _override(c, spec.overrides, spec.key)
    c.validate()
    return c


def _model_config(m, spec: ModelSpec, hp: Hyperparameters, data: Dataset) -> None:
    """The detector: its family's head and decoder, the backbone, anchors, classes."""
    from official.vision.configs import common, decoders
    from official.vision.configs import retinanet as retinanet_cfg

    m.num_classes = data.num_classes + 1  # class 0 is the background
    m.input_size = [hp.image_size, hp.image_size, 3]
    activation = spec.activation or (
        "relu6" if spec.backbone.startswith("mobilenet") else "relu")
    if spec.family == "retinanet":
        m.min_level, m.max_level = 3, spec.max_level or 6
        if spec.backbone.startswith("spinenet"):  # multi-scale already: no FPN on top
            m.decoder = decoders.Decoder(type="identity", identity=decoders.Identity())
        else:
            m.decoder = decoders.Decoder(type="fpn", fpn=decoders.FPN(
                num_filters=spec.head_filters, use_separable_conv=spec.separable_head))
        m.head = retinanet_cfg.RetinaNetHead(num_convs=spec.head_convs,
                                             num_filters=spec.head_filters,
                                             use_separable_conv=spec.separable_head)
        m.anchor = retinanet_cfg.Anchor(anchor_size=hp.anchor_size or spec.anchor_size)
    else:
        m.min_level, m.max_level = 2, spec.max_level or 6
        if spec.backbone == "inception_resnet_v2":
            m.min_level = 3
        if spec.backbone == "spinenet49":
            m.min_level, m.max_level = 3, 7
            m.decoder = decoders.Decoder(type="identity", identity=decoders.Identity())
        m.include_mask = spec.family == "maskrcnn"
        if hp.anchor_size:
            m.anchor.anchor_size = hp.anchor_size
        if spec.num_proposals:
            m.roi_generator.num_proposals = spec.num_proposals
            m.roi_generator.test_num_proposals = spec.num_proposals
    m.backbone = backbone_config(spec.backbone, m.min_level, m.max_level)
    m.norm_activation = common.NormActivation(activation=activation,
                                              use_sync_bn=hp.num_clones > 1)
    m.detection_generator.max_num_detections = hp.max_detections
    m.detection_generator.nms_version = hp.nms


def _optimizer_config(opt, hp: Hyperparameters) -> None:
    """SGD with momentum and clipping; a cosine decay, or steps at schedule-step-1/2;
    a linear warm-up from a tenth of the learning rate."""
    opt.optimizer.type = "sgd"
    opt.optimizer.sgd.momentum = 0.9
    opt.optimizer.sgd.global_clipnorm = 10.0
    lr = hp.initial_learning_rate
    if hp.schedule_step_1:
        bounds = [hp.schedule_step_1] + ([hp.schedule_step_2] if hp.schedule_step_2 else [])
        opt.learning_rate.type = "stepwise"
        opt.learning_rate.stepwise.boundaries = bounds
        opt.learning_rate.stepwise.values = [lr / 10 ** k for k in range(len(bounds) + 1)]
    else:
        opt.learning_rate.type = "cosine"
        opt.learning_rate.cosine.initial_learning_rate = lr
        opt.learning_rate.cosine.decay_steps = hp.num_steps
    if hp.warmup_steps:
        opt.warmup.type = "linear"
        opt.warmup.linear.warmup_steps = hp.warmup_steps
        opt.warmup.linear.warmup_learning_rate = lr / 10
    else:
        opt.warmup.type = None


def eval_batch_size(val_frames: int, replicas: int) -> int:
    per_replica = max(1, min(EVAL_BATCH, math.ceil(max(val_frames, 1) / replicas)))
    return per_replica * replicas


def _data_config(d, pattern: Path, batch: int, *, training: bool, hp: Hyperparameters,
                 shuffle: int = 1000) -> None:
    d.input_path = input_pattern(pattern.parent, pattern.name)
    d.global_batch_size = batch
    d.is_training = training
    d.dtype = "float32"
    d.drop_remainder = training
    d.shuffle_buffer_size = shuffle
    d.seed = hp.seed if training else None
    d.cycle_length = 2
    d.deterministic = True  # with the seed: the same frames in the same order each run
    p = d.parser
    p.aug_rand_hflip = training and hp.aug_hflip
    p.aug_scale_min = hp.aug_scale_min if training else 1.0
    p.aug_scale_max = hp.aug_scale_max if training else 1.0
    if training and hp.aug_jpeg_quality and hasattr(p, "aug_rand_jpeg"):
        from official.vision.configs import common

        p.aug_rand_jpeg = common.RandJpegQuality(min_quality=30, max_quality=95)
    if training and hp.aug_type != "none" and hasattr(p, "aug_type"):
        from official.vision.configs import common

        p.aug_type = common.Augmentation(type=_AUG_TYPES[hp.aug_type])


def _override(c, overrides: dict[str, Any], key: str) -> None:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = nested
        parts = str(dotted).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    try:
        c.override(nested, is_strict=True)
    except (KeyError, ValueError, AttributeError, TypeError) as e:
        raise CvatkitError(f"model {key!r}: its overrides do not fit Model Garden's config "
                           f"({e})") from None
