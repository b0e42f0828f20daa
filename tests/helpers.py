"""Small helpers the tests share."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
"""The repository."""
DATA = TESTS / "data"
"""Files the tests read (recorded CVAT exchanges)."""

MODEL = "ssd-mobilenet-v2-small"
"""The model the tests train (the demo's): it starts from random weights (no download)."""
SAMPLE_FRAMES = 40
SAMPLE_TEST_FRAMES = 6
TRAINED = "num-steps=800;batch-size=8;image-size=160;initial-learning-rate=0.08;" \
          "warmup-steps=10;anchor-size=2;log-interval=100;checkpoint-interval=400;" \
          "eval-interval=400"
"""The shared run (``conftest.trained``): enough steps for the tests' model to find the
sample's shapes surely, so that what is tested on its output (NMS, evaluation,
pre-annotation, mistakes) has confident boxes to work on. Measured: after 800 steps it found
72 of the 74 training objects at a score of 0.5 (best score per frame: median 0.95), COCO AP
0.886 on its validation frames. After 400 steps, the best scores' median was 0.43 to 0.51
(this model, and ssd-mobilenet-v2 at 128 px): too few objects at 0.5 for the tests
that need them."""
SECRET = "aws-secret-that-must-not-leak"
PLANTED = {"AWS_SECRET_ACCESS_KEY": SECRET,
           "CVAT_ACCESS_TOKEN": "cvat-token-that-must-not-leak",
           "CVAT_PASSWORD": "cvat-password-that-must-not-leak"}
"""Secrets set in the environment while the shared run trains (``conftest.trained``)."""


def folded(text: str) -> str:
    """``text`` with each run of whitespace (line breaks too) made one space: how tests
    compare what cvatkit printed with what it must say, so that a terminal's or a cell's
    line break, or a path with spaces in it, never splits what is looked for."""
    return " ".join(text.split())


def unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
    return dest


def hyperparameters(**values):
    """The tests' model's resolved hyperparameters with ``values`` set (``num_steps=30``
    for num-steps=30), as a run on a small dataset would have them."""
    from cvatkit.dataset import Dataset
    from cvatkit.records import LabelMap
    from cvatkit.training import get_model, resolve

    data = Dataset(path=Path("."), labels=LabelMap.from_names(["a"]), train_frames=100,
                   val_frames=10, val_fraction=0.1, include_masks=False)
    given = {k.replace("_", "-"): v for k, v in values.items()}
    return resolve(get_model(MODEL), given, data, gpus=0)[0]


def run_record(*, labels=("a",), model=MODEL, **values):
    """The record ``start_run`` writes of a run of ``model`` on a stand-in dataset of
    ``labels`` (its folder need not exist), with the hyperparameters ``values``
    (``num_steps=30``) over the tests' model's."""
    from cvatkit.dataset import Dataset
    from cvatkit.records import LabelMap
    from cvatkit.training import RunRecord, Strategy, get_model

    data = Dataset(path=Path("/nowhere/dataset"), labels=LabelMap.from_names(labels),
                   train_frames=100, val_frames=10, val_fraction=0.1, include_masks=False)
    hp = hyperparameters(**values)
    return RunRecord(created="2026-11-20T10:00:00Z", model=get_model(model), hparams=hp,
                     labels=tuple(labels), data=data,
                     strategy=Strategy(num_clones=hp.num_clones, planned_workers=1))


def write_run(path, **fields):
    """A run folder at ``path`` holding the record ``run_record(**fields)`` and nothing
    else (its ``Run``)."""
    from cvatkit.runs import Run
    from cvatkit.training import write_record

    run = Run(path)
    run.path.mkdir(parents=True, exist_ok=True)
    write_record(run, run_record(**fields))
    return run


# -- tasks made for a rule: frames of given sizes with given boxes ---------------------------

def box(label, x, y, w, h):
    """A rectangle of ``label`` at (x, y), w x h pixels."""
    from cvatkit.records import Shape

    return Shape(kind="rectangle", label=label, points=(x, y, x + w, y + h))


def frames_of(width, height, shapes_per_frame, count=4):
    """``count`` frames of ``width`` x ``height``, each with the shapes given."""
    from cvatkit.records import Frame

    return [Frame(index=i, name=f"{i}.jpg", width=width, height=height,
                  shapes=tuple(shapes_per_frame)) for i in range(count)]


def export(tmp_path, frames, labels, name="t"):
    """``frames`` as a CVAT for images export in ``tmp_path``, grey JPEGs of their sizes."""
    from PIL import Image

    from cvatkit.cvat import write_cvat_xml
    from cvatkit.records import LabelMap

    sizes = {(f.width, f.height) for f in frames}
    jpegs = {}
    for w, h in sizes:
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (90, 90, 90)).save(buf, format="JPEG")
        jpegs[w, h] = buf.getvalue()
    path = tmp_path / f"{name}.zip"
    write_cvat_xml(path, frames, LabelMap.from_names(labels), task_name=name,
                   images=lambda f: jpegs[f.width, f.height])
    return path
