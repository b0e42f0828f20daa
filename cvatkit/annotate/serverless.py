"""A trained model as a CVAT serverless function: the folder ``nuctl deploy`` builds into
the detector CVAT lists under Models and runs from a task's Actions > Automatic
annotation, for annotators who never open a notebook.

The folder follows CVAT's own examples (``serverless/tensorflow/*/nuclio/``):
``function.yaml`` (CPU) and ``function-gpu.yaml`` with CVAT's metadata (display name,
``type: detector``, the label spec) and build directives; ``main.py``, the handler
(``nuclio_handler.py``); the model with its labels in ``model/``; a copy of cvatkit, which
the handler loads the model with; ``requirements.txt``, what the build installs on top
of TensorFlow's image; ``cvatkit-function.json``, the handler's settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import UsageError
from ..files import folder_written_aside, require_new_or_empty
from ..inference import Detector, check_threshold

HANDLER = Path(__file__).with_name("nuclio_handler.py")
SETTINGS = "cvatkit-function.json"
REQUIREMENTS = ("numpy", "pillow")
"""What the handler needs beside TensorFlow (the base image's) and the standard library."""
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
DEPLOY = "nuctl deploy --project-name cvat --path {path} --platform local"


@dataclass(frozen=True)
class FunctionFolder:
    """What ``write_function`` wrote."""

    path: Path
    name: str
    labels: tuple[str, ...]

    def deploy_lines(self) -> list[str]:
        """How to deploy it (CPU, then GPU) to the Nuclio CVAT uses."""
        path = str(self.path)
        return [DEPLOY.format(path=path),
                DEPLOY.format(path=path) + f" --file {self.path / 'function-gpu.yaml'}"]


def function_name(text: str) -> str:
    """A Nuclio function name made of ``text`` (lower case, digits and dashes)."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50].strip("-")
    return f"cvatkit-{name}" if name else "cvatkit-detector"


def write_function(detector: Detector, out: str | os.PathLike[str], *, name: str | None = None,
                   display_name: str | None = None, threshold: float = 0.5,
                   max_detections: int = 100, overwrite: bool = False) -> FunctionFolder:
    """Write the serverless function of ``detector`` (from ``load_detector``) into the new
    folder ``out``; ``name`` is the Nuclio function's (default: from the model)."""
    check_threshold(threshold)
    if not isinstance(max_detections, int) or max_detections < 1:
        raise UsageError(f"max detections {max_detections!r}: give a whole number from 1 on")
    info = detector.info
    name = name or function_name(info.model_key or info.saved_model.parent.name)
    if not _NAME.match(name):
        raise UsageError(f"function name {name!r}: Nuclio names a function with lower-case "
                         "letters, digits and dashes (at most 63, starting and ending with a "
                         "letter or digit), e.g. cvatkit-cells")
    out = Path(out)
    if overwrite and out.is_dir() and (out / "function.yaml").is_file():
        pass  # a function folder written before: replaced whole below
    else:
        require_new_or_empty(out, "give a new folder for the function, or --overwrite to "
                             "replace a function folder written before")
    kind = "polygon" if info.has_masks else "rectangle"
    spec = [{"id": i, "name": label, "type": kind,
             "attributes": [{"name": "score", "input_type": "text", "values": []}]}
            for i, label in enumerate(info.labels.names, start=1)]
    with folder_written_aside(out) as tmp:
        _copy_model(info, tmp / "model")
        _copy_package(tmp / "cvatkit")
        shutil.copyfile(HANDLER, tmp / "main.py")
        (tmp / SETTINGS).write_text(json.dumps(
            {"threshold": threshold, "max_detections": max_detections}, indent=1) + "\n")
        (tmp / "requirements.txt").write_text(
            "".join(f"{p}=={metadata.version(p)}\n" for p in REQUIREMENTS))
        title = display_name or f"{name} (cvatkit)"
        for file, gpu in (("function.yaml", False), ("function-gpu.yaml", True)):
            (tmp / file).write_text(function_yaml(name, title, spec, gpu=gpu))
    return FunctionFolder(path=out, name=name, labels=tuple(info.labels.names))


def function_yaml(name: str, title: str, spec: list[dict], *, gpu: bool) -> str:
    """The Nuclio function config CVAT reads (its metadata annotations) and nuctl builds."""
    import tensorflow as tf
    import yaml

    version = tf.__version__.split("+")[0]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    config = {
        "metadata": {
            "name": name,
            "namespace": "cvat",
            "annotations": {"name": title, "type": "detector", "framework": "tensorflow",
                            "spec": json.dumps(spec, indent=1)},
        },
        "spec": {
            "description": f"{title}: a detector trained with cvatkit"
                           + (", on the GPU" if gpu else ""),
            "runtime": f"python:{python}",
            "handler": "main:handler",
            "eventTimeout": "30s",
            "env": [{"name": "PYTHONPATH", "value": "/opt/nuclio"}],
            "build": {
                "image": f"cvat.{name}" + (":latest-gpu" if gpu else ""),
                "baseImage": f"tensorflow/tensorflow:{version}" + ("-gpu" if gpu else ""),
                "directives": {
                    "preCopy": [{"kind": "WORKDIR", "value": "/opt/nuclio"}],
                    "postCopy": [{"kind": "RUN", "value": "pip install --no-cache-dir -r "
                                  "/opt/nuclio/requirements.txt"}],
                },
            },
            "triggers": {"myHttpTrigger": {
                "numWorkers": 1 if gpu else 2, "kind": "http",
                "workerAvailabilityTimeoutMilliseconds": 10000,
                "attributes": {"maxRequestBodySize": 33554432}}},
            "platform": {"attributes": {
                "restartPolicy": {"name": "always", "maximumRetryCount": 3},
                "mountMode": "volume"}},
        },
    }
    if gpu:
        config["spec"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    return yaml.safe_dump(config, sort_keys=False, width=100)


def _copy_model(info, dest: Path) -> None:
    """The SavedModel with its label file (and model.json, when it has one)."""
    shutil.copytree(info.saved_model, dest)
    if not any((dest / n).is_file() for n in ("label_map.json", "label_map.pbtxt",
                                              "classes.csv")):
        shutil.copyfile(info.label_file, dest / info.label_file.name)
    for folder in (info.saved_model, info.saved_model.parent):
        if (folder / "model.json").is_file() and not (dest / "model.json").exists():
            shutil.copyfile(folder / "model.json", dest / "model.json")


def _copy_package(dest: Path) -> None:
    """cvatkit's own modules (no caches, no notebooks' widgets): what the handler imports."""
    package = Path(__file__).resolve().parent.parent
    shutil.copytree(package, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
