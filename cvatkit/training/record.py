"""The record of a run: ``run.json``, what the run is (its model, hyperparameters, data,
starting weights, devices) and what it has cost, read and written here alone.

``write_record`` writes a ``RunRecord`` as ``FORMAT``; ``read_record`` reads that and
every earlier format, and refuses a newer one (written by a newer cvatkit) or a damaged
one with a ``RunError`` naming the file and the field. ``docs/architecture.md`` lists
the fields and what each format changed.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..dataset import Dataset
from ..errors import RunError
from ..files import write_text_file
from ..runs import RUN_JSON, Run
from .catalog import ModelSpec, Weights
from .costs import PhaseCosts
from .resolution import Hyperparameters

FORMAT = 2
"""The shape ``write_record`` writes. 1: the load report of published weights (restored,
total, fresh) was kept inside ``init``; 2: it is ``init_loaded``."""
UPGRADE = "pip install --upgrade cvatkit-train"


@dataclass(frozen=True)
class InitCheckpoint:
    """Where a run's first weights come from."""

    path: str
    """A checkpoint prefix (or a Keras .h5 file)."""
    kind: str
    """'run' (an earlier cvatkit run or a store version), 'coco' or 'imagenet' (the
    catalog entry's published weights)."""
    modules: str = "all"
    """What to load: 'all', 'backbone', 'backbone,decoder'."""
    labels: tuple[str, ...] = ()
    source: str = ""
    num_classes: int = 0
    """A published detector's class count (modules 'all'): the variables whose shape
    depends on it start afresh when the task's differs."""


@dataclass(frozen=True)
class FitReport:
    """What loading a published detector trained on other classes did."""

    restored: int
    """Variables copied from the checkpoint."""
    total: int
    """Variables of the model's backbone, decoder and head."""
    fresh: tuple[str, ...]
    """Those that start afresh (their shape depends on the class count)."""

    def summary(self, source: str) -> str:
        fresh = f"; fresh: {', '.join(self.fresh)}" if self.fresh else ""
        return f"restored {self.restored} of {self.total} variables from {source}{fresh}"


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """How the run is spread over devices: as planned, then as its trainer found it."""

    num_clones: int
    """Replicas planned on each worker (``num-clones``)."""
    planned_workers: int
    """Worker processes (machines) planned (``--workers``)."""
    kind: str = ""
    """The ``tf.distribute`` strategy the trainer runs under ('' before it started)."""
    workers: int = 0
    """Workers it found (0 before it started)."""
    replicas: int = 0
    """Replicas in sync over all workers (0 before it started)."""
    global_batch: int = 0
    per_replica_batch: int = 0


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run as ``run.json`` records it."""

    created: str
    """When it was written, ``2026-11-20T10:00:00Z`` (UTC)."""
    model: ModelSpec
    """The catalog entry it trains, whole: a later catalog does not change the run."""
    hparams: Hyperparameters
    """Every hyperparameter, resolved."""
    hparams_text: str = ""
    """The hyperparameters as the user gave them (``key=value`` lines)."""
    notes: tuple[str, ...] = ()
    """What planning the run found worth saying (recommended steps, fitted values)."""
    labels: tuple[str, ...]
    """The classes it learns, in the order of the model's class ids (1-based)."""
    data: Dataset
    """The prepared dataset it trains on (its path need not exist any more)."""
    eval_data: Dataset | None = None
    """The dataset it is evaluated on, when not ``data``'s validation frames."""
    weights: str = "none"
    """What it was told to start from: 'coco', 'imagenet', 'none', or the run folder,
    checkpoint or store version."""
    init: InitCheckpoint | None = None
    """The checkpoint its first weights come from; None for random weights."""
    init_loaded: FitReport | None = None
    """What loading a published detector did, once the trainer has loaded it."""
    strategy: Strategy
    versions: dict[str, str] = field(default_factory=dict)
    """The versions of cvatkit and its training libraries that wrote it."""
    costs: PhaseCosts | None = None
    """What its trainer processes have spent so far (``costs.py``); None before any said."""

    @property
    def eval_frames(self) -> Dataset:
        """The dataset its evaluations run on."""
        return self.eval_data or self.data

    def to_json(self) -> dict[str, Any]:
        """``run.json`` of ``FORMAT``."""
        def dataset(d: Dataset | None) -> dict[str, Any] | None:
            return d.to_json() if d is not None else None

        return {
            "format": FORMAT,
            "created": self.created,
            "model": _plain(self.model),
            "hparams": self.hparams.to_dict(),
            "hparams_text": self.hparams_text,
            "notes": list(self.notes),
            "labels": list(self.labels),
            "data": dataset(self.data),
            "eval_data": dataset(self.eval_data),
            "weights": self.weights,
            "init": _plain(self.init),
            "init_loaded": _plain(self.init_loaded),
            "strategy": _plain(self.strategy),
            "versions": dict(self.versions),
            "costs": self.costs.to_json() if self.costs is not None else None,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str | Path = RUN_JSON) -> RunRecord:
        """The record in ``obj`` (``run.json`` of this format or an earlier one), or a
        RunError naming ``where`` and what is wrong."""
        return _Reader(obj, str(where)).record()


def read_record(run: Run | str | Path) -> RunRecord:
    """The record of the run in ``run`` (a ``Run`` or its folder)."""
    run = run if isinstance(run, Run) else Run(run)
    return RunRecord.from_json(run.record_json(), run.path / RUN_JSON)


def write_record(run: Run | str | Path, record: RunRecord) -> None:
    """Write ``record`` as the run's ``run.json`` (whole, atomically)."""
    run = run if isinstance(run, Run) else Run(run)
    write_text_file(run.path / RUN_JSON,
                    json.dumps(record.to_json(), indent=2, default=str) + "\n")


def update_record(run: Run | str | Path, **changes: Any) -> RunRecord:
    """Write the run's record with ``changes`` (field=value) and return it."""
    record = replace(read_record(run), **changes)
    write_record(run, record)
    return record


# -- reading ------------------------------------------------------------------------------

_SIMPLE = {"int": int, "float": (int, float), "str": str, "bool": bool}
_WHAT = {"int": "a whole number", "float": "a number", "str": "a string",
         "bool": "true or false", "tuple[str, ...]": "a list of strings"}
_DATASET = {"labels": "tuple[str, ...]", "train_frames": "int", "val_frames": "int"}
"""What a run's dataset must say; the rest of ``Dataset.to_json`` has defaults (a store
version's record has no ``path``: it was the path on the machine that trained it)."""
_DATASET_MORE = {"path": "str", "val_fraction": "float", "include_masks": "bool",
                 "mask_shapes": "int", "source": "str", "task": "str",
                 "train_files": "tuple[str, ...]", "val_files": "tuple[str, ...]"}


class _Reader:
    """Reads one ``run.json`` object, field by field; a wrong field raises naming it
    (``hparams.num-steps``)."""

    def __init__(self, obj: Any, where: str) -> None:
        self.obj, self.where = obj, where

    def damaged(self, name: str, why: str) -> RunError:
        return RunError(
            f"{self.where} is damaged ({name} {why}), so the run cannot be read; restore "
            "the file from a copy, or delete the run folder if the run is not needed")

    def wrong(self, name: str, value: Any, what: str) -> RunError:
        return self.damaged(name, f"is {_short(value)}, not {what}")

    def record(self) -> RunRecord:
        obj = self.obj
        if not isinstance(obj, dict):
            raise self.damaged("the file", "is not a JSON object")
        fmt = obj.get("format", 1)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
            raise self.wrong("format", fmt, "a format number")
        if fmt > FORMAT:
            raise RunError(
                f"{self.where} is a run record of format {fmt}, written by a newer cvatkit; "
                f"this one reads formats up to {FORMAT}: upgrade cvatkit ({UPGRADE}) to "
                "read the run")
        model = self.model()
        hparams = self.typed("hparams", Hyperparameters, self.required("hparams"),
                             keys={f.name: f.name.replace("_", "-")
                                   for f in fields(Hyperparameters)})
        init = self.section("init", InitCheckpoint, unpublished={"path": ""})
        loaded = self.section("init_loaded", FitReport)
        if fmt == 1 and isinstance(obj.get("init"), dict) and "restored" in obj["init"]:
            loaded = self.typed("init", FitReport, obj["init"])
        strategy = self.section("strategy", Strategy) or Strategy(
            num_clones=hparams.num_clones, planned_workers=1)
        versions = self.value("versions", dict, {})
        return RunRecord(
            created=self.value("created", str, ""),
            model=model,
            hparams=hparams,
            hparams_text=self.value("hparams_text", str, ""),
            notes=self.checked("notes", "tuple[str, ...]", obj.get("notes") or []),
            labels=self.checked("labels", "tuple[str, ...]", self.required("labels")),
            data=self.dataset("data", self.required("data")),
            eval_data=self.dataset("eval_data", obj.get("eval_data")),
            weights=self.value("weights", str, "none"),
            init=init, init_loaded=loaded, strategy=strategy,
            versions={str(k): str(v) for k, v in versions.items()},
            costs=self.costs(obj.get("costs")),
        )

    def value(self, key: str, kind: type, default: Any) -> Any:
        got = self.obj.get(key)
        if got is None:
            return default
        if not isinstance(got, kind):
            raise self.wrong(key, got, "a JSON object" if kind is dict else "a string")
        return got

    def required(self, key: str) -> Any:
        if self.obj.get(key) is None:
            raise self.damaged(key, "is missing")
        return self.obj[key]

    def section(self, key: str, cls: type, *, unpublished: dict[str, Any] | None = None
                ) -> Any:
        """``cls`` from the object under ``key`` (None when there is none);
        ``unpublished``: the fields a store version's record leaves out (this machine's
        paths), with what they read as."""
        got = self.obj.get(key)
        if got is None:
            return None
        if unpublished and isinstance(got, dict):
            got = {**unpublished, **got}
        return self.typed(key, cls, got)

    def typed(self, name: str, cls: type, got: Any, *, keys: dict[str, str] | None = None):
        """``cls(**got)``, each field of a simple type checked; ``keys``: the names the
        file gives the fields where they differ (``num-steps``)."""
        if not isinstance(got, dict):
            raise self.wrong(name, got, "a JSON object")
        keys = keys or {}
        values = {}
        for f in fields(cls):
            key = keys.get(f.name, f.name)
            if key in got:
                values[f.name] = self.checked(f"{name}.{key}", str(f.type), got[key])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise self.damaged(f"{name}.{key}", "is missing")
        return cls(**values)

    def checked(self, name: str, annotation: str, value: Any) -> Any:
        """``value``, of the type ``annotation`` names (left as it is for a type not
        simple), or a RunError naming ``name``."""
        base = annotation.removesuffix(" | None")
        if value is None and base != annotation:
            return None
        if base == "tuple[str, ...]":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise self.wrong(name, value, _WHAT[base])
            return tuple(value)
        kind = _SIMPLE.get(base)
        if kind is None:
            return value
        if not isinstance(value, kind) or (base != "bool" and isinstance(value, bool)):
            raise self.wrong(name, value, _WHAT[base])
        return float(value) if base == "float" else value

    def model(self) -> ModelSpec:
        spec = self.typed("model", ModelSpec, self.required("model"))
        if not isinstance(spec.overrides, dict):
            raise self.wrong("model.overrides", spec.overrides, "a JSON object")
        published = {name: self.typed(f"model.{name}", Weights, getattr(spec, name))
                     for name in ("weights", "coco") if getattr(spec, name) is not None}
        return replace(spec, **published)

    def dataset(self, name: str, got: Any) -> Dataset | None:
        if got is None:
            return None
        if not isinstance(got, dict):
            raise self.wrong(name, got, "a JSON object")
        for part, kind in (_DATASET | _DATASET_MORE).items():
            if part in got:
                self.checked(f"{name}.{part}", kind, got[part])
            elif part in _DATASET:
                raise self.damaged(f"{name}.{part}", "is missing")
        return Dataset.from_json(got)

    def costs(self, got: Any) -> PhaseCosts | None:
        if got is None:
            return None
        if not isinstance(got, dict):
            raise self.wrong("costs", got, "a JSON object")
        seconds = {}
        for part in ("cpu_s", "wall_s"):
            phases = got.get(part) or {}
            if not isinstance(phases, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in phases.values()):
                raise self.wrong(f"costs.{part}", phases, "seconds by phase")
            seconds[part] = {str(k): float(v) for k, v in phases.items()}
        steps = self.checked("costs.steps", "int", got.get("steps", 0))
        return PhaseCosts(cpu_s=seconds["cpu_s"], wall_s=seconds["wall_s"], steps=steps)


def _plain(obj: Any) -> Any:
    """A dataclass as JSON values (tuples as lists); None as None."""
    return None if obj is None else json.loads(json.dumps(asdict(obj)))


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
