"""Hyperparameters as users type them: ``key=value`` lines, as in CVAT's training workflow.

One table (``PARAMS``) holds every parameter with its type, default, range and help: the
parser checks against it, ``resolve`` fills in its defaults, ``--help-hparams``, the
app's form and its help list read it. Hyphens and underscores are the same
(``num-steps`` = ``num_steps``). Every mistake is reported with its line: an unknown key
with the closest valid one, a value of the wrong type or out of range with what is
allowed. The number of classes always comes from the dataset.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..dataset import DEFAULT_VAL_FRACTION
from ..errors import HyperparameterError, UsageError

Default = Callable[["Resolved"], Any]
"""A default computed from the model and the other values (``Resolved``)."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter users may set."""

    key: str
    type: type
    help: str
    default: Any = None
    """The value when none is given: a constant, or a ``Default`` computed from the
    model's catalog entry and the other values."""
    default_text: str = ""
    """How the help names a computed default (``the model's``)."""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    multiple_of: int | None = None
    why_multiple: str = ""

    def describe(self) -> str:
        """The help line: what it does, its default and what is allowed."""
        if self.default_text:
            default = self.default_text
        elif self.default is None:
            default = "none"
        else:
            default = format_value(self.default)
        allowed = []
        if self.choices:
            allowed.append("one of " + ", ".join(self.choices))
        if self.min is not None:
            allowed.append(f"{'>' if self.min_exclusive else '>='} {self.min:g}")
        if self.max is not None:
            allowed.append(f"<= {self.max:g}")
        if self.multiple_of:
            allowed.append(f"a multiple of {self.multiple_of}")
        return f"{self.help} (default: {default}" + (
            f"; {', '.join(allowed)})" if allowed else ")")


def _model(field_name: str) -> Default:
    return lambda r: getattr(r.spec, field_name)


PARAMS: tuple[Param, ...] = (
    Param("num-steps", int, "training steps", _model("num_steps"), "the model's", min=1),
    Param("batch-size", int, "frames per step, over all GPUs",
          lambda r: r.spec.batch_size * r["num-clones"],
          "the model's, times num-clones", min=1, max=4096),
    Param("initial-learning-rate", float, "peak learning rate (after warm-up)",
          _model("learning_rate"), "the model's", min=0, min_exclusive=True, max=10),
    Param("num-clones", int, "GPUs to train on (1 = one GPU, or the CPU)", 1, min=1, max=64),
    Param("schedule-step-1", int, "step where the learning rate drops to 1/10 (none: a "
          "cosine decay)", min=1),
    Param("schedule-step-2", int, "step where it drops to 1/100", min=1),
    Param("warmup-steps", int, "steps of linear learning-rate warm-up",
          lambda r: min(500, r["num-steps"] // 10), "num-steps / 10, at most 500", min=0),
    Param("stage-1-epochs", int, "Mask R-CNN: epochs training the heads only", 0, min=0),
    Param("stage-2-epochs", int, "Mask R-CNN: epochs from the middle of the backbone up", 0,
          min=0),
    Param("stage-3-epochs", int, "Mask R-CNN: epochs training all layers at lr/10", 0, min=0),
    Param("image-size", int, "square input size in pixels", _model("image_size"),
          "the model's", min=64, max=2048, multiple_of=64,
          why_multiple="the coarsest feature level"),
    Param("val-split", float, "fraction of frames kept for validation (set when preparing)",
          lambda r: DEFAULT_VAL_FRACTION if r.data is None else r.data.val_fraction,
          "the dataset's", min=0, max=1),
    Param("eval-interval", int, "steps between evaluations (0: only at the end)", 0, min=0),
    Param("checkpoint-interval", int, "steps between checkpoints",
          lambda r: min(1000, r["num-steps"]), "num-steps, at most 1000", min=1),
    Param("log-interval", int, "steps between logged events (and compiled loop length; at "
          "most num-steps)", 50, min=1, max=10000),
    Param("aug-hflip", bool, "random horizontal flips", True),
    Param("aug-scale-min", float, "random rescale: smallest factor", 0.8, min=0.1, max=1.0),
    Param("aug-scale-max", float, "random rescale: largest factor", 1.25, min=1.0, max=4.0),
    Param("aug-jpeg-quality", bool, "random JPEG re-compression", False),
    Param("aug-type", str, "extra augmentation policy", "none",
          choices=("none", "autoaugment", "randaugment")),
    Param("anchor-size", float, "anchor size in units of each level's stride",
          default_text="the model's", min=0.5, max=16),
    Param("l2-weight-decay", float, "L2 regularisation", _model("l2_weight_decay"),
          "the model's", min=0, max=1),
    Param("max-detections", int, "detections kept per frame", 100, min=1, max=1000),
    Param("seed", int, "random seed of the input pipeline", 0, min=0),
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


def canonical_key(key: str) -> str:
    """``key`` as the table names it: ``--Learning_Rate`` -> ``initial-learning-rate``."""
    k = key.strip().lstrip("-").lower().replace("_", "-")
    return ALIASES.get(k, k)


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
        key = canonical_key(raw_key)
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


def read_hparams_file(path: str | os.PathLike[str]) -> str:
    """The text of a hyperparameters file; a UsageError naming it when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"hyperparameters file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"hyperparameters file {path} is not UTF-8 text ({e.reason} at "
                         f"byte {e.start}); save it as UTF-8") from None


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
    check_value(param, out, where, shown=value)
    return out


def check_value(param: Param, value: Any, where: str = "", *, shown: str | None = None) -> None:
    """Refuse a value outside the parameter's choices, range or multiple."""
    text = f"{param.key}={value if shown is None else shown}"
    prefix = f"{where}: " if where else ""
    if param.choices and value not in param.choices:
        raise HyperparameterError(
            f"{prefix}{param.key}={shown if shown is not None else value!r} is not one of "
            f"{', '.join(param.choices)}")
    if param.min is not None and (value < param.min
                                  or (param.min_exclusive and value == param.min)):
        op = ">" if param.min_exclusive else ">="
        raise HyperparameterError(f"{prefix}{text} must be {op} {param.min:g}")
    if param.max is not None and value > param.max:
        raise HyperparameterError(f"{prefix}{text} must be <= {param.max:g}")
    if param.multiple_of and value % param.multiple_of:
        m = param.multiple_of
        why = f" ({param.why_multiple})" if param.why_multiple else ""
        raise HyperparameterError(f"{prefix}{text} must be a multiple of {m}{why}; try "
                                  f"{max(m, round(value / m) * m)}")


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def format_hparams(values: Mapping[str, Any]) -> str:
    """``key=value`` lines that ``parse_hparams`` reads back to the same values."""
    return "".join(f"{k}={format_value(v)}\n" for k, v in values.items())


# -- editing the text, line by line (the app's form) --------------------------------------

def line_values(text: str) -> dict[str, str]:
    """What each line sets, by canonical key, as typed (the first line of a key wins);
    lines that are not ``key=value`` are passed over, whether or not the rest parses."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, eq, value = line.split("#", 1)[0].partition("=")
        if eq:
            out.setdefault(canonical_key(name), value.strip())
    return out


def set_line(text: str, key: str, value: str) -> str:
    """``text`` with the line that sets ``key`` (any spelling) now giving ``value``,
    keeping the user's spelling and comment; an empty value removes the line, a missing
    line is added at the end."""
    out: list[str] = []
    done = False
    for line in text.splitlines():
        body, hash_, comment = line.partition("#")
        name, eq, _old = body.partition("=")
        if eq and canonical_key(name) == key:
            if not value:
                continue
            if not done:
                done = True
                out.append(f"{name.strip()}={value}" + (f"  #{comment}" if hash_ else ""))
                continue
        out.append(line)
    if value and not done:
        out.append(f"{key}={value}")
    return "".join(f"{line}\n" for line in out)


# -- resolution ----------------------------------------------------------------------------

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

    def __init__(self, spec, values: Mapping[str, Any], data) -> None:
        self.spec, self.data = spec, data
        self._values = dict(values)
        self._given = set(values)

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


def default_value(spec, key: str, values: Mapping[str, Any] | None = None, data=None) -> Any:
    """What ``key`` is for ``spec`` when the user leaves it out (other ``values`` given)."""
    return Resolved(spec, values or {}, data)[key]


def recommended_steps(train_frames: int, batch_size: int) -> int:
    """The original workflow's rule of thumb: (frames / batch size) x 1000, rounded to
    the nearest thousand (100 frames at batch 24 -> 4000)."""
    raw = train_frames / max(batch_size, 1) * 1000
    return max(1000, int(raw / 1000.0 + 0.5) * 1000)


def resolve(spec, values: Mapping[str, Any], data, *,
            gpus: int) -> tuple[Hyperparameters, list[str]]:
    """The run's hyperparameters: ``values`` (from ``parse_hparams``) over the table's
    defaults for ``spec``, checked against the dataset ``data`` and the ``gpus`` this
    machine has. Returns them and notes worth showing (e.g. the recommended num-steps)."""
    r = Resolved(spec, values, data)
    _check_devices(spec, r, gpus)
    _check_stages(spec, r, data)
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
        raise HyperparameterError("aug-scale-min must not exceed aug-scale-max")
    resolved = {p.key: r[p.key] for p in PARAMS}
    resolved["log-interval"] = min(resolved["log-interval"], resolved["num-steps"])
    for param in PARAMS:
        if resolved[param.key] is not None:
            check_value(param, resolved[param.key])
    recommended = recommended_steps(data.train_frames, r["batch-size"])
    notes = [f"recommended num-steps for {data.train_frames} training frames at batch "
             f"{r['batch-size']}: {recommended} (the rule of thumb: frames / batch x 1000)"
             + ("" if r.given("num-steps") else f"; using {r['num-steps']}")]
    return Hyperparameters.from_dict(resolved), notes


def _check_devices(spec, r: Resolved, gpus: int) -> None:
    clones = r["num-clones"]
    if clones > 1 and clones > gpus:
        raise HyperparameterError(
            f"num-clones={clones} asks for {clones} GPUs but this machine has "
            f"{gpus or 'none'}; set num-clones to at most {max(gpus, 1)}")
    if spec.min_gpus and clones < spec.min_gpus:
        raise HyperparameterError(
            f"{spec.key} needs at least {spec.min_gpus} GPUs for its memory; set "
            f"num-clones={spec.min_gpus} on a machine with {spec.min_gpus} GPUs, or pick "
            "another model")
    if r["batch-size"] % clones:
        raise HyperparameterError(
            f"batch-size={r['batch-size']} does not divide over num-clones={clones} GPUs; "
            f"use a multiple of {clones}")


def _check_stages(spec, r: Resolved, data) -> None:
    """Mask R-CNN's stage epochs, made into num-steps; masks for mask models."""
    stages = [r[f"stage-{k}-epochs"] for k in (1, 2, 3)]
    if any(stages) and spec.family != "maskrcnn":
        raise HyperparameterError(
            f"stage-N-epochs apply to maskrcnn only; {spec.key} trains in one stage: set "
            "num-steps instead")
    if spec.family == "maskrcnn" and not data.include_masks:
        raise HyperparameterError(
            f"{spec.key} learns masks, but the dataset has boxes only (no polygons or "
            "masks); annotate polygons, or pick a detection model such as "
            "ssd-mobilenet-v2-coco")
    if any(stages):
        if r.given("num-steps"):
            raise HyperparameterError(
                "set either num-steps or stage-1/2/3-epochs for maskrcnn, not both")
        steps_per_epoch = max(1, math.ceil(data.train_frames / r["batch-size"]))
        r.set("num-steps", sum(stages) * steps_per_epoch)
