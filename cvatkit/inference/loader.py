"""Loading a detector: from a run, its export, a SavedModel folder or a model-store
version, with its label map checked against what the model predicts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import ModelError, UsageError
from ..label_files import CLASSES_CSV, LABEL_MAP_JSON, PBTXT, read_class_names
from ..limits import TEXT
from ..records import LabelMap
from ..runs import EXPORT, MODEL_JSON, RUN_JSON, SAVED_MODEL
from ..store import is_version_uri, pull
from .detector import (INPUT_KINDS, MODEL_GARDEN, OD_API, REQUIRED_OUTPUTS, SIGNATURE, Detector,
                       ModelInfo)


def load_detector(model: str | os.PathLike[str], *,
                  labels: str | os.PathLike[str] | None = None) -> Detector:
    """Load a detector from a run folder, its ``export/``, a SavedModel folder or a
    model-store version URI. ``labels`` (a label file or a folder with one) is needed
    for SavedModels that carry none, e.g. the TF2 model zoo's."""
    info_dir, description = _locate(model)
    saved = info_dir / SAVED_MODEL if (info_dir / SAVED_MODEL / "saved_model.pb").is_file() \
        else info_dir
    class_names, label_file = _labels(saved, labels, description)
    label_map = LabelMap.from_names(class_names[i] for i in sorted(class_names))
    model_json = _model_json(saved)
    if model_json.get("labels") is not None and list(model_json["labels"]) != \
            list(label_map.names):
        raise ModelError(
            f"{label_file} lists {len(label_map)} labels {list(label_map.names)}, but "
            f"{description} was trained on {len(model_json['labels'])}: "
            f"{list(model_json['labels'])}; give the label map the model was trained with")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(saved))
    except Exception as e:  # TF raises many kinds for a damaged or foreign file
        raise ModelError(f"{saved} could not be loaded as a SavedModel "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    fn, kind, dims = _signature(loaded, saved)
    outputs = fn.structured_outputs
    _check_class_count(outputs, saved, kind, sorted(class_names), label_file, description)
    fixed_size = (int(dims[1]), int(dims[2])) if dims[1] and dims[2] else None
    info = ModelInfo(description=description, saved_model=saved, kind=kind,
                     labels=label_map, label_file=label_file,
                     has_masks="detection_masks" in outputs,
                     batch_size=int(dims[0]) if dims[0] else None,
                     model_key=str(model_json.get("model", "")),
                     class_ids=tuple(sorted(class_names)), input_size=fixed_size)
    detector = Detector(info, fn)
    detector._loaded = loaded  # keeps the functions' variables alive
    return detector


def _signature(loaded, saved: Path) -> tuple[object, str, list[int | None]]:
    """The serving function, the kind of export it is and its input's dimensions
    (``None`` where any size goes), after checking it takes what cvatkit sends."""
    import tensorflow as tf

    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if SIGNATURE not in signatures:
        raise ModelError(
            f"{saved} has no {SIGNATURE!r} signature (it has: "
            f"{', '.join(signatures) or 'none'}); export the detector with one")
    fn = signatures[SIGNATURE]
    inputs = fn.structured_input_signature[1]
    kind = next((INPUT_KINDS[k] for k in inputs if k in INPUT_KINDS), None)
    outputs = fn.structured_outputs
    missing = [k for k in REQUIRED_OUTPUTS if k not in outputs]
    if kind is None or len(inputs) != 1 or missing:
        raise ModelError(
            f"{saved}: its {SIGNATURE!r} signature takes {sorted(inputs)} and returns "
            f"{sorted(outputs)}; cvatkit runs detectors exported by TF Model Garden (input "
            "'inputs') or the TF2 Object Detection API (input 'input_tensor') that return "
            f"{', '.join(REQUIRED_OUTPUTS)}")
    if kind == MODEL_GARDEN and "image_info" not in outputs:
        raise ModelError(f"{saved}: a Model Garden export without 'image_info' cannot map "
                         "boxes back to the frame; export it with image_info (the default)")
    name = next(k for k in inputs if k in INPUT_KINDS)
    spec = inputs[name]
    dims = spec.shape.as_list() if spec.shape.rank is not None else None
    if spec.dtype != tf.uint8 or (dims is not None and (len(dims) != 4 or dims[3] != 3)):
        raise ModelError(
            f"{saved}: its {SIGNATURE!r} input {name!r} takes {spec.dtype.name} "
            f"{dims if dims is not None else '(any shape)'}; cvatkit sends uint8 images "
            "[batch, height, width, 3]: export it with input_type image_tensor (both TF "
            "Model Garden's and the TF2 Object Detection API's exporters offer it)")
    return fn, kind, dims or [None] * 4


def _locate(model: str | os.PathLike[str]) -> tuple[Path, str]:
    text = os.fspath(model)
    if is_version_uri(text):
        return pull(text), text
    if "://" in text:
        raise UsageError(f"{text!r}: give a run folder, a SavedModel folder or a model-store "
                         "version URI (s3://bucket/namespace/models/KEY/VERSION)")
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a run folder, its export/ folder, a "
                         "SavedModel folder or a model-store version URI")
    if (path / RUN_JSON).is_file():
        if not (path / EXPORT).is_dir():
            raise ModelError(f"{path} is a run that has not exported a model yet (no "
                             "export/ folder); wait for it to complete, or resume it")
        path = path / EXPORT
    if not ((path / "saved_model.pb").is_file()
            or (path / SAVED_MODEL / "saved_model.pb").is_file()):
        raise ModelError(f"{path} is not a SavedModel: it has no saved_model.pb (nor "
                         "saved_model/saved_model.pb); give a run folder, its export/ "
                         "folder or a SavedModel folder")
    return path, text


def _labels(saved: Path, labels: str | os.PathLike[str] | None,
            description: str) -> tuple[dict[int, str], Path]:
    """Class id -> name, from ``labels`` (a file, or a folder holding one) or the label
    file beside the SavedModel; and the file it came from."""
    names = (LABEL_MAP_JSON, PBTXT, CLASSES_CSV)
    folders: tuple[Path, ...] = (saved, saved.parent)
    if labels is not None:
        path = Path(labels)
        if path.is_file():
            return _class_names(path), path
        if not path.is_dir():
            raise UsageError(f"label file {path} does not exist")
        folders = (path,)
    for folder in folders:
        found = [folder / n for n in names if (folder / n).is_file()]
        if found:
            return _class_names(found[0]), found[0]
    raise ModelError(
        f"{description} has no label file ({', '.join(names)}) beside its SavedModel "
        f"({saved}); give the one it was trained with, e.g. --labels label_map.pbtxt")


def _class_names(path: Path) -> dict[int, str]:
    names = read_class_names(path)
    if not names:
        raise ModelError(f"{path} names no labels; give the label map the model was "
                         "trained with")
    return names


def _model_json(saved: Path) -> dict:
    for folder in (saved, saved.parent):
        if (folder / MODEL_JSON).is_file():
            try:
                TEXT.check((folder / MODEL_JSON).stat().st_size, str(folder / MODEL_JSON))
                return json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
            except ValueError:
                return {}
    return {}


def _check_class_count(outputs, saved: Path, kind: str, ids: list[int], label_file: Path,
                       description: str) -> None:
    """The label file must name what the model predicts: its highest class id is the
    model's class count, as Model Garden's params.yaml (``num_classes`` counts the
    background), the TF2 Object Detection API's pipeline.config (``num_classes``) or its
    per-class scores (background first) say."""
    predicted = None
    spec = outputs.get("detection_multiclass_scores")
    if spec is not None and spec.shape.rank and spec.shape[-1] is not None:
        predicted = int(spec.shape[-1]) - 1
    for folder in (saved, saved.parent):
        if predicted is not None:
            break
        predicted = _configured_classes(folder, kind)
    if predicted is not None and predicted != ids[-1]:
        gaps = "" if ids == list(range(1, len(ids) + 1)) else f" (ids up to {ids[-1]})"
        raise ModelError(
            f"{description} predicts {predicted} classes, but {label_file} has "
            f"{len(ids)} labels{gaps}; give the label map the model was trained with")


def _configured_classes(folder: Path, kind: str) -> int | None:
    """The class count an export's own configuration gives, if it has one."""
    if kind == MODEL_GARDEN and (folder / "params.yaml").is_file():
        import yaml

        try:
            TEXT.check((folder / "params.yaml").stat().st_size, str(folder / "params.yaml"))
            params = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))
            return int(params["task"]["model"]["num_classes"]) - 1
        except (yaml.YAMLError, KeyError, TypeError, ValueError, UnicodeDecodeError):
            return None
    if kind == OD_API and (folder / "pipeline.config").is_file():
        try:
            TEXT.check((folder / "pipeline.config").stat().st_size,
                       str(folder / "pipeline.config"))
            text = (folder / "pipeline.config").read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return None
        found = re.search(r"\bnum_classes\s*:\s*(\d+)", text)
        return int(found.group(1)) if found else None
    return None
