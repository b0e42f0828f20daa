"""A run's hyperparameters resolved: the user's values over each parameter's default for
the chosen model (``hparams.PARAMS``), checked against the dataset and the machine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import HyperparameterError
from .devices import cpu_bfloat16_flags
from .hparams import BY_KEY, PARAMS, check_value, format_hparams, format_value


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """Every hyperparameter of a run, resolved: the user's values over the defaults."""

    num_steps: int
    batch_size: int
    initial_learning_rate: float
    num_clones: int
    schedule_step_1: int | None
    schedule_step_2: int | None
    warmup_steps: int
    stage_1_epochs: int
    stage_2_epochs: int
    stage_3_epochs: int
    image_size: int
    val_split: float
    eval_interval: int
    checkpoint_interval: int
    log_interval: int
    aug_hflip: bool
    aug_scale_min: float
    aug_scale_max: float
    aug_jpeg_quality: bool
    aug_type: str
    anchor_size: float | None
    l2_weight_decay: float
    max_detections: int
    seed: int
    nms: str = "v2"
    """Runs written before the choice existed exported with Model Garden's default."""
    early_stopping_patience: int = 0
    """Runs written before it existed never stopped early."""
    export_checkpoint: str = "last"
    """Runs written before the choice existed exported their last checkpoint."""
    mixed_precision: str = "float32"
    """Runs written before the choice existed trained in float32."""
    jit_compile: bool = False
    """Runs written before the choice existed trained without XLA."""

    def as_lines(self) -> str:
        return format_hparams({k: v for k, v in self.to_dict().items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Read back ``to_dict`` (``run.json``)."""
        return cls(**{k.replace("-", "_"): v for k, v in values.items()})


class Resolved:
    """The values of a run as far as they are known: the user's, else each parameter's
    default, computed on first use (a default may use other values)."""

    def __init__(self, spec, values: Mapping[str, Any], data, *, workers: int = 1,
                 weights: str = "") -> None:
        self.spec, self.data, self.workers = spec, data, workers
        self.scratch = starts_from_scratch(spec, weights)
        self._values = dict(values)
        self._given = set(values)
        self.why: dict[str, str] = {}
        """Why each value fitted to the dataset was chosen, by key."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            default = BY_KEY[key].default
            self._values[key] = default(self) if callable(default) else default
        return self._values[key]

    def given(self, key: str) -> bool:
        """Whether the user set ``key``."""
        return key in self._given

    def set(self, key: str, value: Any) -> None:
        """Fix a value that follows from others (Mask R-CNN's num-steps from its stages)."""
        self._values[key] = value

    @property
    def statistics(self):
        """The dataset's ``statistics.json``; None for a stand-in or an older dataset."""
        from ..dataset.statistics import read_statistics

        path = getattr(self.data, "path", None)
        return read_statistics(path) if path is not None and str(path) != "." else None

    def fit(self, key: str) -> tuple[Any, str] | None:
        """The value of ``key`` fitted to the dataset and why (``recipe``); None when no
        rule applies (no statistics; num-steps of a run that starts from weights)."""
        from .recipe import fitted_image_size, fitted_steps

        stats = self.statistics
        if stats is None:
            return None
        if key == "image-size":
            return fitted_image_size(self.spec, stats)
        if key == "num-steps" and self.scratch:
            return fitted_steps(self.data.train_frames, self["batch-size"])
        return None

    def fitted(self, key: str) -> Any:
        """The default of ``key``: fitted to the dataset when a rule applies (its note
        kept in ``why``), else the model's."""
        found = self.fit(key)
        if found is None:
            return getattr(self.spec, key.replace("-", "_"))
        self.why[key] = found[1]
        return found[0]


FITTED = ("image-size", "num-steps")
"""The values ``recipe`` fits to the dataset when the user sets them not."""


def starts_from_scratch(spec, weights: str = "") -> bool:
    """Whether a run of ``spec`` told to start from ``weights`` ('' for its default)
    starts from random weights."""
    if weights:
        return weights.strip().lower() == "none"
    return not spec.init_version and spec.default_weights == "none"


def default_value(spec, key: str, values: Mapping[str, Any] | None = None, data=None, *,
                  weights: str = "") -> Any:
    """What ``key`` is for ``spec`` when the user leaves it out (other ``values`` given,
    starting from ``weights``): fitted to ``data`` where a rule applies."""
    return Resolved(spec, values or {}, data, weights=weights)[key]


def recommended_steps(train_frames: int, batch_size: int) -> int:
    """The original workflow's rule of thumb: (frames / batch size) x 1000, rounded to
    the nearest thousand (100 frames at batch 24 -> 4000)."""
    raw = train_frames / max(batch_size, 1) * 1000
    return max(1000, int(raw / 1000.0 + 0.5) * 1000)


def resolve(spec, values: Mapping[str, Any], data, *, gpus: int, workers: int = 1,
            weights: str = "") -> tuple[Hyperparameters, list[str]]:
    """The run's hyperparameters: ``values`` (from ``parse_hparams``) over the table's
    defaults for ``spec``, fitted to the dataset ``data`` where a rule applies
    (``recipe``), checked against it and the ``gpus`` this machine (each of ``workers``
    machines) has. ``weights``: what the run starts from ('' for the model's default).
    Returns them and notes worth showing: why each fitted value was chosen, or what a
    given one replaced."""
    r = Resolved(spec, values, data, workers=workers, weights=weights)
    _check_devices(spec, r, gpus)
    staged = _check_stages(spec, r, data)
    _check_precision(spec, r, gpus)
    if r.given("val-split") and abs(r["val-split"] - data.val_fraction) > 1e-9:
        raise HyperparameterError(
            f"val-split={r['val-split']:g} but the dataset was split with "
            f"{data.val_fraction:g}; prepare it again with --val-split {r['val-split']:g}")
    if r.given("schedule-step-2") and not r.given("schedule-step-1"):
        raise HyperparameterError("schedule-step-2 needs schedule-step-1")
    if r.given("schedule-step-1") and r.given("schedule-step-2") and \
            r["schedule-step-2"] <= r["schedule-step-1"]:
        raise HyperparameterError("schedule-step-2 must come after schedule-step-1")
    if r["aug-scale-min"] > r["aug-scale-max"]:
        raise HyperparameterError(
            f"aug-scale-min={r['aug-scale-min']:g} is above aug-scale-max="
            f"{r['aug-scale-max']:g}; the smallest rescale factor must not exceed the largest")
    for key in ("schedule-step-1", "schedule-step-2", "warmup-steps"):
        if r.given(key) and r[key] >= r["num-steps"]:
            raise HyperparameterError(
                f"{key}={r[key]} is not before the run's end (num-steps={r['num-steps']}); "
                f"the run would never reach it: set {key} below num-steps")
    stopping = _check_early_stopping(r)
    anchors = _fit_anchors(spec, r)
    resolved = {p.key: r[p.key] for p in PARAMS}
    resolved["log-interval"] = min(resolved["log-interval"], resolved["num-steps"])
    coarsest, size = 2 ** (spec.max_level or 6), resolved["image-size"]
    if size % coarsest:  # the model's own multiple, before the one all models allow
        nearest = max(coarsest, (size + coarsest // 2) // coarsest * coarsest)
        raise HyperparameterError(
            f"image-size={size} must be a multiple of {coarsest} for {spec.key} (its "
            f"coarsest feature level); try {nearest}")
    for param in PARAMS:
        if resolved[param.key] is not None:
            check_value(param, resolved[param.key])
    notes = _fit_notes(r)
    if r.fit("num-steps") is None:  # no rule of this kit's for it: the workflow's
        recommended = recommended_steps(data.train_frames, r["batch-size"])
        start = "" if r.scratch else " from trained weights"
        notes.append(f"recommended num-steps for {data.train_frames} training frames at "
                     f"batch {r['batch-size']}{start}: {recommended} (the original "
                     "workflow's rule of thumb: frames / batch x 1000)"
                     + ("" if r.given("num-steps") else f"; using {r['num-steps']}"))
    if staged:
        notes.append(staged)
    if anchors:
        notes.append(anchors)
    if stopping:
        notes.append(stopping)
    if spec.min_gpus and r["num-clones"] < spec.min_gpus:
        notes.append(f"{spec.key} was made for {spec.min_gpus} or more GPUs; on "
                     f"{r['num-clones']} it may run out of memory, or take long")
    notes.extend(_cpu_notes(r, gpus))
    if r["aug-jpeg-quality"] and not _has_jpeg_augmentation(spec):
        notes.append(f"aug-jpeg-quality has no effect on {spec.key}: Model Garden's "
                     f"{spec.family} input pipeline has no JPEG re-compression")
    if not values:
        main = ("num-steps", "batch-size", "initial-learning-rate", "image-size")
        how = "the recipe of" if not r.why else "the recipe fitted to the dataset for"
        notes.insert(0, f"no hyperparameters given: training with {how} {spec.key} ("
                     + ", ".join(f"{k}={format_value(resolved[k])}" for k in main) + ")")
    return Hyperparameters.from_dict(resolved), notes


def _fit_notes(r: Resolved) -> list[str]:
    """Why each value fitted to the dataset was chosen; for a value the user set, what
    the fitted recipe would have taken; then the schedule and augmentation that follow."""
    notes = []
    for key in FITTED:
        if r.given(key):
            found = r.fit(key)
            if found is not None and found[0] != r[key]:
                notes.append(f"{key}={format_value(r[key])} as given, in place of the "
                             f"fitted {found[1]}")
        elif key in r.why:
            notes.append(r.why[key])
    if not r.why:
        return notes
    steps, warmup = r["num-steps"], r["warmup-steps"]
    if r["schedule-step-1"] is None:
        notes.append(f"learning rate: {warmup} steps of warm-up to "
                     f"{format_value(r['initial-learning-rate'])}, then a cosine decay to 0 "
                     f"over the other {steps - warmup}")
    if r["aug-hflip"] or r["aug-scale-min"] != 1 or r["aug-scale-max"] != 1:
        notes.append("augmentation: " + ("random horizontal flips and " if r["aug-hflip"]
                                         else "") +
                     f"rescaling by {format_value(r['aug-scale-min'])}-"
                     f"{format_value(r['aug-scale-max'])}, so that objects are seen at "
                     "other sizes and sides than the few frames show (aug-hflip, "
                     "aug-scale-min, aug-scale-max)")
    return notes


def _fit_anchors(spec, r: Resolved) -> str:
    """How well the anchors fit the dataset's training boxes at the run's input size (its
    ``statistics.json``). When they fit few of them, or few of one label's, and the user
    set no anchor-size, the size whose worst-fitted label is fitted best is taken. A note
    saying which (empty for a dataset prepared without statistics)."""
    from ..dataset.statistics import read_statistics
    from .anchors import GOOD_FIT, anchor_fit, anchor_grid, best_anchor_size, label_fits

    stats = read_statistics(r.data.path) if getattr(r.data, "path", None) else None
    if stats is None or not stats.boxes:
        return ""
    size = r["image-size"]
    per_label = {name: stats.boxes_of(name) for name in stats.labels}
    grid = anchor_grid(spec, r["anchor-size"])
    fit = anchor_fit(stats.boxes_of(), grid, size)
    fits = label_fits(per_label, grid, size)
    poor = min(fits.values(), default=1.0) < GOOD_FIT or fit < GOOD_FIT
    if poor and not r.given("anchor-size"):
        best, best_fit = best_anchor_size(per_label, spec, size)
        if best != grid.anchor_size:
            r.set("anchor-size", best)
            return (f"anchor-size={best:g}: at {size} px the model's own anchors "
                    f"(anchor-size={grid.anchor_size:g}) fit {fit:.0%} of the training "
                    f"boxes{_poor(fits)}; these fit {best_fit:.0%}"
                    f"{_poor(label_fits(per_label, anchor_grid(spec, best), size))} "
                    "(set anchor-size to choose)")
    return (f"the anchors (anchor-size={grid.anchor_size:g}) fit {fit:.0%} of the training "
            f"boxes at {size} px{_poor(fits)}"
            + ("; a larger image-size or another anchor-size may fit more" if poor else ""))


def _poor(fits: dict[str, float]) -> str:
    """`` (Platelets 61%)`` for the labels the anchors fit poorly."""
    from .anchors import GOOD_FIT

    poor = [f"{name} {fit:.0%}" for name, fit in fits.items() if fit < GOOD_FIT]
    return f" ({', '.join(poor)})" if poor else ""


def _check_devices(spec, r: Resolved, gpus: int) -> None:
    clones = r["num-clones"]
    if clones > 1 and clones > gpus:
        raise HyperparameterError(
            f"num-clones={clones} asks for {clones} GPUs but this machine has "
            f"{gpus or 'none'}; set num-clones to at most {max(gpus, 1)}")
    if r["batch-size"] % clones:
        raise HyperparameterError(
            f"batch-size={r['batch-size']} does not divide over num-clones={clones} GPUs; "
            f"use a multiple of {clones}")


def _check_precision(spec, r: Resolved, gpus: int) -> None:
    """float16 needs a GPU; Mask R-CNN's stages train without the loss scale it needs."""
    precision = r["mixed-precision"]
    if precision == "float16" and not gpus:
        raise HyperparameterError(
            "mixed-precision=float16 needs a GPU of compute capability 7.0 or more (Volta "
            "or later), and this machine has none; bfloat16 runs on CPUs too, but slower "
            "than float32 on those without AMX: remove the mixed-precision line (or set "
            "mixed-precision=float32) to train on this machine")
    if precision == "float16" and any(r[f"stage-{k}-epochs"] for k in (1, 2, 3)):
        raise HyperparameterError(
            f"mixed-precision=float16 is not available for {spec.key}'s stages "
            "(stage-1/2/3-epochs): their optimizer has no loss scale, without which small float16 "
            "gradients underflow to 0; use mixed-precision=bfloat16 (no loss scale needed) or "
            "float32, or train one stage (num-steps)")


def _cpu_notes(r: Resolved, gpus: int) -> list[str]:
    """What a run on the CPU should know about mixed-precision and jit-compile (their
    measured costs are in the docs' GPUs page, docs/gpus.md)."""
    if gpus:
        return []
    notes = []
    flags = cpu_bfloat16_flags()
    if r["mixed-precision"] == "bfloat16" and "amx_bf16" not in flags:
        has = f"; it has {', '.join(flags)}" if flags else ""
        notes.append(
            f"mixed-precision=bfloat16 on a CPU without AMX (amx_bf16{has}) is usually "
            f"slower than float32 ({MEASURED}); remove the line to train in float32")
    if r["jit-compile"]:
        notes.append(JIT_CPU_NOTE)
    return notes


MEASURED = "as measured in the docs, docs/gpus.md"
JIT_CPU_NOTE = (
    "jit-compile=true on the CPU: XLA compiles the training step for the CPU, but its code "
    f"runs several times slower than TensorFlow's own there ({MEASURED}), after a long "
    "compile; leave it off on CPUs")


def _check_early_stopping(r: Resolved) -> str:
    """Early stopping counts the evaluations during training: a run with none is refused;
    a note when the run has too few for the patience ever to run out."""
    patience = r["early-stopping-patience"]
    if patience <= 0:  # off (below 0: refused with the other values' bounds)
        return ""
    steps, interval = r["num-steps"], r["eval-interval"]
    evaluations = (steps - 1) // interval if interval else 0
    if not evaluations:
        raise HyperparameterError(
            f"early-stopping-patience={patience} counts the evaluations during training, "
            f"but with eval-interval={interval} and num-steps={steps} the run evaluates "
            f"only at its end; set eval-interval below num-steps (for example "
            f"eval-interval={max(1, steps // 10)}) or remove early-stopping-patience")
    if evaluations <= patience:
        return (f"early-stopping-patience={patience} cannot stop this run: it evaluates "
                f"{evaluations} time{'s' if evaluations > 1 else ''} before its end "
                f"(eval-interval={interval}); lower the patience or eval-interval")
    return ""


DEFAULT_STAGE_EPOCHS = (1, 1, 1)
"""Mask R-CNN's stages when neither they nor num-steps are given: the original
workflow's default, one epoch each."""


def _has_jpeg_augmentation(spec) -> bool:
    """Whether Model Garden's parser for ``spec``'s family re-compresses JPEGs."""
    return spec.family == "retinanet"


def _check_stages(spec, r: Resolved, data) -> str:
    """Mask R-CNN's stage epochs, made into num-steps; masks for mask models. Returns a
    note when the stages were chosen for the user."""
    stages = [r[f"stage-{k}-epochs"] for k in (1, 2, 3)]
    note = ""
    if spec.family == "maskrcnn" and not any(stages) and not r.given("num-steps") \
            and not any(r.given(f"stage-{k}-epochs") for k in (1, 2, 3)):
        stages = list(DEFAULT_STAGE_EPOCHS)
        for k, epochs in zip((1, 2, 3), stages):
            r.set(f"stage-{k}-epochs", epochs)
        note = (f"{spec.key} trains in three stages, by default "
                + ", ".join(f"stage-{k}-epochs={e}" for k, e in zip((1, 2, 3), stages))
                + ": the heads, then the upper backbone, then all layers at lr/10. Few "
                "epochs are enough; give most of them to stage 1")
    if any(stages) and spec.family != "maskrcnn":
        raise HyperparameterError(
            f"stage-N-epochs apply to maskrcnn only; {spec.key} trains in one stage: set "
            "num-steps instead")
    if spec.family == "maskrcnn" and not data.include_masks and data.mask_shapes:
        raise HyperparameterError(
            f"{spec.key} learns masks, but the dataset was prepared without them (boxes "
            f"only, though the task has {data.mask_shapes} polygons or masks); prepare it "
            f"again for this model: `cvatkit prepare SOURCE OUT_DIR --model {spec.key}`")
    if spec.family == "maskrcnn" and not data.include_masks:
        raise HyperparameterError(
            f"{spec.key} learns masks, but the dataset has boxes only (no polygons or "
            "masks); annotate polygons, or pick a detection model such as "
            "retinanet-spinenet-mobile-coco")
    if any(stages):
        if r.given("num-steps"):
            raise HyperparameterError(
                "set either num-steps or stage-1/2/3-epochs for maskrcnn, not both")
        steps_per_epoch = max(1, math.ceil(data.train_frames / r["batch-size"]))
        r.set("num-steps", sum(stages) * steps_per_epoch)
    return note
