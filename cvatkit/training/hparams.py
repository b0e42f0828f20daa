"""Hyperparameters as users type them: ``key=value`` lines, as in CVAT's training workflow.

One table (``PARAMS``) holds every parameter with its type, default, range and help: the
parser checks against it, ``resolution.resolve`` fills in its defaults, ``--help-hparams``, the
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataset import DEFAULT_VAL_FRACTION
from ..errors import HyperparameterError, UsageError
from ..limits import TEXT

MAX_STEPS = 10_000_000
"""More steps than any run here would take (a 10-million-step run at 10 steps/s is 12
days): a larger number is a typo, and the trainer's step counters must hold it."""
MAX_EPOCHS = 10_000
NMS_KINDS = ("batched", "v2")
EXPORT_CHECKPOINTS = ("best", "last")
PRECISIONS = ("float32", "float16", "bfloat16")
"""mixed-precision values: Model Garden's ``runtime.mixed_precision_dtype``."""
Default = Callable[[Any], Any]
"""A default computed from the model and the other values (``resolution.Resolved``)."""


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
            allowed.append(f"{'>' if self.min_exclusive else '>='} {self.bound(self.min)}")
        if self.max is not None:
            allowed.append(f"<= {self.bound(self.max)}")
        if self.multiple_of:
            allowed.append(f"a multiple of {self.multiple_of}")
        return f"{self.help} (default: {default}" + (
            f"; {', '.join(allowed)})" if allowed else ")")

    def bound(self, value: float) -> str:
        """A limit as the parameter's values are written: ``10000000``, ``0.5``."""
        return str(int(value)) if self.type is int else f"{value:g}"


def _model(field_name: str) -> Default:
    return lambda r: getattr(r.spec, field_name)


PARAMS: tuple[Param, ...] = (
    Param("num-steps", int, "training steps", lambda r: r.fitted("num-steps"),
          "from random weights, 60 passes over the training frames; else the model's",
          min=1, max=MAX_STEPS),
    Param("batch-size", int, "frames per step, over all GPUs (of all workers)",
          lambda r: r.spec.batch_size * r["num-clones"] * r.workers,
          "the model's, times num-clones (times the workers)", min=1, max=4096),
    Param("initial-learning-rate", float, "peak learning rate (after warm-up)",
          _model("learning_rate"), "the model's", min=0, min_exclusive=True, max=10),
    Param("num-clones", int, "GPUs to train on (1 = one GPU, or the CPU)", 1, min=1, max=64),
    Param("schedule-step-1", int, "step where the learning rate drops to 1/10 (none: a "
          "cosine decay)", min=1, max=MAX_STEPS),
    Param("schedule-step-2", int, "step where it drops to 1/100", min=1, max=MAX_STEPS),
    Param("warmup-steps", int, "steps of linear learning-rate warm-up",
          lambda r: min(500, r["num-steps"] // 10), "num-steps / 10, at most 500", min=0,
          max=MAX_STEPS),
    Param("stage-1-epochs", int, "Mask R-CNN: epochs training the heads only", 0, min=0,
          max=MAX_EPOCHS),
    Param("stage-2-epochs", int, "Mask R-CNN: epochs from the middle of the backbone up", 0,
          min=0, max=MAX_EPOCHS),
    Param("stage-3-epochs", int, "Mask R-CNN: epochs training all layers at lr/10", 0, min=0,
          max=MAX_EPOCHS),
    Param("image-size", int, "square input size in pixels", lambda r: r.fitted("image-size"),
          "fitted to the frames and their smallest objects; without the dataset's "
          "statistics, the model's", min=64, max=2048, multiple_of=32,
          why_multiple="the coarsest feature level; 64 or 128 for most models"),
    Param("val-split", float, "fraction of frames kept for validation (set when preparing)",
          lambda r: DEFAULT_VAL_FRACTION if r.data is None else r.data.val_fraction,
          "the dataset's", min=0, max=1),
    Param("eval-interval", int, "steps between evaluations (0: only at the end)", 0, min=0,
          max=MAX_STEPS),
    Param("early-stopping-patience", int, "evaluations in a row without a better AP after "
          "which the run stops and exports (0: never; needs eval-interval)", 0, min=0,
          max=MAX_STEPS),
    Param("export-checkpoint", str, "which checkpoint export/ is made from: best (the one "
          "whose evaluation gave the highest AP; the last when none was evaluated) or last",
          "best", choices=EXPORT_CHECKPOINTS),
    Param("checkpoint-interval", int, "steps between checkpoints",
          lambda r: min(1000, r["num-steps"]), "num-steps, at most 1000", min=1,
          max=MAX_STEPS),
    Param("log-interval", int, "steps between logged events (and compiled loop length; at "
          "most num-steps)", 50, min=1, max=10000),
    Param("aug-hflip", bool, "random horizontal flips", True),
    Param("aug-scale-min", float, "random rescale: smallest factor", 0.8, min=0.1, max=4.0),
    Param("aug-scale-max", float, "random rescale: largest factor", 1.25, min=0.1, max=4.0),
    Param("aug-jpeg-quality", bool, "random JPEG re-compression", False),
    Param("aug-type", str, "extra augmentation policy", "none",
          choices=("none", "autoaugment", "randaugment")),
    Param("anchor-size", float, "anchor size in units of each level's stride",
          default_text="the model's", min=0.5, max=16),
    Param("l2-weight-decay", float, "L2 regularisation", _model("l2_weight_decay"),
          "the model's", min=0, max=1),
    Param("max-detections", int, "detections kept per frame", 100, min=1, max=1000),
    Param("nms", str, "how the exported model (and evaluation during training) prunes "
          "overlapping boxes: batched (TensorFlow's combined NMS) or Model Garden's v2 "
          "(made for TPUs; the same boxes, 20x slower on a CPU)", "batched",
          choices=NMS_KINDS),
    Param("seed", int, "random seed of the initial weights and of the order of frames", 0,
          min=0, max=2**31 - 1),
    Param("mixed-precision", str, "the dtype layers compute in while training (weights "
          "stay float32; the export computes in float32): float32, float16 (a GPU of "
          "compute capability 7.0 or more; a dynamic loss scale) or bfloat16 (GPUs of "
          "compute capability 8.0 or more; on CPUs without AMX usually slower than float32)",
          "float32", choices=PRECISIONS),
    Param("jit-compile", bool, "compile the training step with XLA (Model Garden's "
          "runtime.enable_xla)", False),
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
                f"{where}: {line!r:.80} is not key=value (for example num-steps=100)")
        raw_key, value = (part.strip() for part in line.split("=", 1))
        key = canonical_key(raw_key)
        if key in _FROM_DATASET:
            raise HyperparameterError(
                f"{where}: the number of classes comes from the dataset's labels; remove "
                f"{raw_key!r}")
        if key not in BY_KEY:
            close = difflib.get_close_matches(key, list(BY_KEY) + list(ALIASES), n=1,
                                              cutoff=0.6)
            hint = f"; did you mean {ALIASES.get(close[0], close[0])!r}?" if close else (
                f"; valid keys: {', '.join(BY_KEY)}")
            raise HyperparameterError(f"{where}: unknown hyperparameter {raw_key!r:.80}{hint}")
        if key in seen:
            raise HyperparameterError(
                f"{where}: {key} is already set on line {seen[key]}; keep one of them")
        seen[key] = n
        values[key] = convert(BY_KEY[key], value, where)
    return values


def hparams_given(text: str = "", file: str | os.PathLike[str] = "") -> tuple[str, str]:
    """The hyperparameter lines given as ``text`` or in ``file`` (not both), and where they
    came from, for messages: what the CLI, the pipeline and the notebooks all read."""
    if not file:
        return text, "hyperparameters"
    if text.strip():
        raise UsageError("give hyperparameters as text or as a file, not both")
    return read_hparams_file(file), str(file)


def read_hparams_file(path: str | os.PathLike[str]) -> str:
    """The text of a hyperparameters file; a UsageError naming it when it cannot be read."""
    try:
        TEXT.check(Path(path).stat().st_size, f"hyperparameters file {path}")
        return Path(path).read_text(encoding="utf-8-sig")  # a Windows editor's BOM too
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
            f"{where}: {param.key}={value!r:.80} is not {kind}") from None
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
        raise HyperparameterError(f"{prefix}{text} must be {op} {param.bound(param.min)}")
    if param.max is not None and value > param.max:
        raise HyperparameterError(f"{prefix}{text} must be <= {param.bound(param.max)}")
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
