"""Hyperparameters as users type them: ``key=value`` lines, as in CVAT's training workflow.

Hyphens and underscores are the same (``num-steps`` = ``num_steps``). Every mistake is
reported with its line: an unknown key with the closest valid one, a value of the wrong
type or out of range with what is allowed. Defaults come from the model's catalog entry;
the number of classes always comes from the dataset.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import CvatkitError


class HyperparameterError(CvatkitError):
    """A hyperparameter line is not understood or its value is not allowed."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter users may set."""

    key: str
    type: type
    help: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()


PARAMS: tuple[Param, ...] = (
    Param("num-steps", int, "training steps (default: the model's)", min=1),
    Param("batch-size", int, "frames per step, over all GPUs", min=1, max=4096),
    Param("initial-learning-rate", float, "peak learning rate (after warm-up)", min=0,
          min_exclusive=True, max=10),
    Param("num-clones", int, "GPUs to train on (1 = one GPU, or the CPU)", min=1, max=64),
    Param("schedule-step-1", int, "step where the learning rate drops to 1/10", min=1),
    Param("schedule-step-2", int, "step where it drops to 1/100", min=1),
    Param("warmup-steps", int, "steps of linear learning-rate warm-up", min=0),
    Param("stage-1-epochs", int, "Mask R-CNN: epochs training the heads only", min=0),
    Param("stage-2-epochs", int, "Mask R-CNN: epochs from the middle of the backbone up",
          min=0),
    Param("stage-3-epochs", int, "Mask R-CNN: epochs training all layers at lr/10", min=0),
    Param("image-size", int, "square input size in pixels (a multiple of 32)", min=32,
          max=2048),
    Param("val-split", float, "fraction of frames kept for validation (set when preparing)",
          min=0, max=1, ),
    Param("eval-interval", int, "steps between evaluations (0: only at the end)", min=0),
    Param("checkpoint-interval", int, "steps between checkpoints", min=1),
    Param("log-interval", int, "steps between logged events (and compiled loop length)",
          min=1, max=10000),
    Param("aug-hflip", bool, "random horizontal flips"),
    Param("aug-scale-min", float, "random rescale: smallest factor", min=0.1, max=1.0),
    Param("aug-scale-max", float, "random rescale: largest factor", min=1.0, max=4.0),
    Param("aug-jpeg-quality", bool, "random JPEG re-compression"),
    Param("aug-type", str, "extra augmentation policy", choices=("none", "autoaugment",
                                                                  "randaugment")),
    Param("anchor-size", float, "anchor size in units of each level's stride", min=0.5,
          max=16),
    Param("l2-weight-decay", float, "L2 regularisation", min=0, max=1),
    Param("max-detections", int, "detections kept per frame", min=1, max=1000),
    Param("seed", int, "random seed of the input pipeline", min=0),
)
BY_KEY = {p.key: p for p in PARAMS}
ALIASES = {
    "learning-rate": "initial-learning-rate",
    "lr": "initial-learning-rate",
    "num-gpus": "num-clones",
    "gpus": "num-clones",
    "steps": "num-steps",
    "epochs": "num-steps",  # the original workflow called steps "epochs"
}
_FROM_DATASET = ("num-classes", "sys-num-classes")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def normalize_key(key: str) -> str:
    return key.strip().lstrip("-").lower().replace("_", "-")


def parse_hparams(text: str, *, origin: str = "hyperparameters") -> dict[str, Any]:
    """The values set in ``text`` (one ``key=value`` per line), by canonical key."""
    values: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{origin} line {n}"
        if "=" not in line:
            raise HyperparameterError(
                f"{where}: {line!r} is not key=value (for example num-steps=100)")
        raw_key, value = (part.strip() for part in line.split("=", 1))
        key = normalize_key(raw_key)
        key = ALIASES.get(key, key)
        if key in _FROM_DATASET:
            raise HyperparameterError(
                f"{where}: the number of classes comes from the dataset's labels; remove "
                f"{raw_key!r}")
        if key not in BY_KEY:
            close = difflib.get_close_matches(key, list(BY_KEY) + list(ALIASES), n=1,
                                              cutoff=0.5)
            hint = f"; did you mean {ALIASES.get(close[0], close[0])!r}?" if close else (
                f"; valid keys: {', '.join(BY_KEY)}")
            raise HyperparameterError(f"{where}: unknown hyperparameter {raw_key!r}{hint}")
        if key in seen:
            raise HyperparameterError(
                f"{where}: {key} is already set on line {seen[key]}; keep one of them")
        seen[key] = n
        values[key] = convert(BY_KEY[key], value, where)
    return values


def convert(param: Param, value: str, where: str) -> Any:
    """``value`` as the parameter's type, range-checked; errors name ``where``."""
    v = value.strip().strip("'\"")
    try:
        if param.type is bool:
            if v.lower() not in _TRUE | _FALSE:
                raise ValueError
            out: Any = v.lower() in _TRUE
        elif param.type is int:
            f = float(v)
            if not f.is_integer():
                raise ValueError
            out = int(f)
        elif param.type is float:
            out = float(v)
            if not math.isfinite(out):
                raise ValueError
        else:
            out = v
    except ValueError:
        kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(
            param.type, "text")
        raise HyperparameterError(
            f"{where}: {param.key}={value!r} is not {kind}") from None
    if param.choices and out not in param.choices:
        raise HyperparameterError(
            f"{where}: {param.key}={value!r} is not one of {', '.join(param.choices)}")
    if param.min is not None and (out < param.min or (param.min_exclusive and out == param.min)):
        op = ">" if param.min_exclusive else ">="
        raise HyperparameterError(f"{where}: {param.key}={value} must be {op} {param.min:g}")
    if param.max is not None and out > param.max:
        raise HyperparameterError(f"{where}: {param.key}={value} must be <= {param.max:g}")
    return out


def format_hparams(values: Mapping[str, Any]) -> str:
    """``key=value`` lines that ``parse_hparams`` reads back to the same values."""
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return f"{v:g}" if isinstance(v, float) else str(v)

    return "".join(f"{k}={fmt(v)}\n" for k, v in values.items())


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """Every hyperparameter of a run, resolved: the user's values over the model's."""

    num_steps: int
    batch_size: int
    initial_learning_rate: float
    num_clones: int = 1
    schedule_step_1: int | None = None
    schedule_step_2: int | None = None
    warmup_steps: int = 0
    stage_1_epochs: int = 0
    stage_2_epochs: int = 0
    stage_3_epochs: int = 0
    image_size: int = 320
    val_split: float | None = None
    eval_interval: int = 0
    checkpoint_interval: int = 500
    log_interval: int = 50
    aug_hflip: bool = True
    aug_scale_min: float = 0.8
    aug_scale_max: float = 1.25
    aug_jpeg_quality: bool = False
    aug_type: str = "none"
    anchor_size: float | None = None
    l2_weight_decay: float = 4e-5
    max_detections: int = 100
    seed: int = 0

    def as_lines(self) -> str:
        return format_hparams({f.name.replace("_", "-"): getattr(self, f.name)
                               for f in fields(self) if getattr(self, f.name) is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}


def recommended_steps(train_frames: int, batch_size: int) -> int:
    """The original workflow's rule of thumb: (frames / batch size) x 1000, rounded to
    the nearest thousand (100 frames at batch 24 -> 4000)."""
    raw = train_frames / max(batch_size, 1) * 1000
    return max(1000, int(raw / 1000.0 + 0.5) * 1000)


def resolve(spec, values: Mapping[str, Any], data, *, gpus: int) -> tuple[Hyperparameters, list[str]]:
    """The run's hyperparameters: ``values`` (from ``parse_hparams``) over ``spec``'s
    defaults, checked against the dataset ``data`` (a ``DataInfo``) and the ``gpus`` this
    machine has. Returns them and notes worth showing (e.g. the recommended num-steps)."""
    v = dict(values)
    notes: list[str] = []
    clones = v.get("num-clones", 1)
    if clones > 1 and clones > gpus:
        raise HyperparameterError(
            f"num-clones={clones} asks for {clones} GPUs but this machine has "
            f"{gpus or 'none'}; set num-clones to at most {max(gpus, 1)}")
    if spec.min_gpus and clones < spec.min_gpus:
        raise HyperparameterError(
            f"{spec.key} needs at least {spec.min_gpus} GPUs for its memory; set "
            f"num-clones={spec.min_gpus} on a machine with {spec.min_gpus} GPUs, or pick "
            "another model")
    batch = v.get("batch-size", spec.batch_size * clones)
    if batch % clones:
        raise HyperparameterError(
            f"batch-size={batch} does not divide over num-clones={clones} GPUs; use a "
            f"multiple of {clones}")
    stages = [v.get(f"stage-{k}-epochs", 0) for k in (1, 2, 3)]
    if any(stages) and spec.family != "maskrcnn":
        raise HyperparameterError(
            f"stage-N-epochs apply to maskrcnn only; {spec.key} trains in one stage: set "
            "num-steps instead")
    if spec.family == "maskrcnn" and not data.include_masks:
        raise HyperparameterError(
            f"{spec.key} learns masks, but the dataset has boxes only (no polygons or "
            "masks); annotate polygons, or pick a detection model such as "
            "ssd-mobilenet-v2-coco")
    size = v.get("image-size", spec.image_size)
    if size % 64:
        raise HyperparameterError(
            f"image-size={size} must be a multiple of 64 (the coarsest feature level); "
            f"try {max(64, round(size / 64) * 64)}")
    if "val-split" in v and abs(v["val-split"] - data.val_fraction) > 1e-9:
        raise HyperparameterError(
            f"val-split={v['val-split']:g} but the dataset was split with "
            f"{data.val_fraction:g}; prepare it again with --val-split {v['val-split']:g}")
    steps_per_epoch = max(1, math.ceil(data.train_frames / batch))
    if any(stages):
        if "num-steps" in v:
            raise HyperparameterError(
                "set either num-steps or stage-1/2/3-epochs for maskrcnn, not both")
        num_steps = sum(stages) * steps_per_epoch
    else:
        num_steps = v.get("num-steps", spec.num_steps)
    recommended = recommended_steps(data.train_frames, batch)
    notes.append(f"recommended num-steps for {data.train_frames} training frames at batch "
                 f"{batch}: {recommended} (the rule of thumb: frames / batch x 1000)"
                 + ("" if "num-steps" in v else f"; using {num_steps}"))
    if v.get("schedule-step-2") and not v.get("schedule-step-1"):
        raise HyperparameterError("schedule-step-2 needs schedule-step-1")
    if v.get("schedule-step-1") and v.get("schedule-step-2") and \
            v["schedule-step-2"] <= v["schedule-step-1"]:
        raise HyperparameterError("schedule-step-2 must come after schedule-step-1")
    if v.get("aug-scale-min", 0.8) > v.get("aug-scale-max", 1.25):
        raise HyperparameterError("aug-scale-min must not exceed aug-scale-max")
    hp = Hyperparameters(
        num_steps=num_steps,
        batch_size=batch,
        initial_learning_rate=v.get("initial-learning-rate", spec.learning_rate),
        num_clones=clones,
        schedule_step_1=v.get("schedule-step-1"),
        schedule_step_2=v.get("schedule-step-2"),
        warmup_steps=v.get("warmup-steps", min(500, num_steps // 10)),
        stage_1_epochs=stages[0], stage_2_epochs=stages[1], stage_3_epochs=stages[2],
        image_size=size,
        val_split=data.val_fraction,
        eval_interval=v.get("eval-interval", 0),
        checkpoint_interval=v.get("checkpoint-interval", min(1000, num_steps)),
        log_interval=min(v.get("log-interval", 50), num_steps),
        aug_hflip=v.get("aug-hflip", True),
        aug_scale_min=v.get("aug-scale-min", 0.8),
        aug_scale_max=v.get("aug-scale-max", 1.25),
        aug_jpeg_quality=v.get("aug-jpeg-quality", False),
        aug_type=v.get("aug-type", "none"),
        anchor_size=v.get("anchor-size"),
        l2_weight_decay=v.get("l2-weight-decay", spec.l2_weight_decay),
        max_detections=v.get("max-detections", 100),
        seed=v.get("seed", 0),
    )
    return hp, notes
