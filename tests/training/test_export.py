"""Exports: the fast NMS finds Model Garden's v2 boxes, evaluation during training is the
export's, and a finished run can be exported again."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from helpers import folded

from cvatkit import open_export
from cvatkit.cli import main
from cvatkit.dataset import VAL_COCO_JSON
from cvatkit.inference import evaluate, load_detector, predict
from cvatkit.runs import EvalEvent, Run


@pytest.fixture(scope="module")
def v2_export(trained, tmp_path_factory):
    """The shared run exported again (its best checkpoint, as the run chose) with Model
    Garden's v2 NMS."""
    out = tmp_path_factory.mktemp("v2") / "export"
    assert main(["export", str(trained.path), "--nms", "v2", "--out", str(out)]) == 0
    return out


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _unmatched(ours, theirs) -> list:
    """Shapes of ``ours`` with no shape in ``theirs`` of the same label, IoU >= 0.95 and a
    score within 1e-3."""
    return [s for s in ours if not any(
        t.label == s.label and abs(t.score - s.score) <= 1e-3
        and _iou(s.points, t.points) >= 0.95 for t in theirs)]


def test_the_fast_nms_finds_the_boxes_of_model_gardens_v2(trained, v2_export, sample_cvat):
    assert json.loads((trained.path / "export" / "model.json").read_text())["nms"] == "batched"
    v2 = json.loads((v2_export / "model.json").read_text())
    assert v2["nms"] == "v2"
    assert v2["step"] == json.loads((trained.path / "export" / "model.json").read_text())["step"]
    fast, slow = load_detector(trained.path), load_detector(v2_export)
    frames = [sample_cvat, sample_cvat.parent / "test.zip"]  # every frame of the sample
    boxes = 0
    for source in frames:
        a = list(predict(fast, open_export(source), threshold=0.0))
        b = list(predict(slow, open_export(source), threshold=0.0))
        for pa, pb in zip(a, b, strict=True):
            assert pa.frame.name == pb.frame.name
            assert not _unmatched(pa.frame.shapes, pb.frame.shapes), pa.frame.name
            assert not _unmatched(pb.frame.shapes, pa.frame.shapes), pa.frame.name
            boxes += len(pa.frame.shapes)
    assert boxes >= 100  # every box above Model Garden's score floor of 0.05, not just the best


class _AsTraining:
    """The frames of a source whose names are given (the dataset's validation split), their
    pixels decoded as training decodes them (TF's JPEG decoder, not Pillow's) and handed on
    losslessly, so that both evaluations see the same pixels."""

    def __init__(self, source, names: set[str]) -> None:
        self.source, self.names = source, names

    def frames(self):
        return (f for f in self.source.frames() if f.name in self.names)

    def read_image(self, frame):
        import tensorflow as tf

        pixels = tf.io.decode_image(self.source.read_image(frame), channels=3)
        return tf.io.encode_png(pixels).numpy()

    def image_name(self, frame):
        return self.source.image_name(frame)


def test_evaluation_during_training_reports_the_exports_ap(trained, prepared, sample_cvat):
    step = json.loads((trained.path / "export" / "model.json").read_text())["step"]
    last = [e for e in trained.events() if isinstance(e, EvalEvent) and e.step == step][-1]
    val = {i["file_name"] for i in
           json.loads((prepared.path / VAL_COCO_JSON).read_text())["images"]}
    detector = load_detector(trained.path)
    got = evaluate(
        predict(detector, _AsTraining(open_export(sample_cvat), val), threshold=0.01),
        detector.labels.names)
    assert got.frames == len(val) >= 2 and got.ap50 > 0.3  # a model that finds things
    assert got.ap == pytest.approx(last.ap, abs=0.005)
    assert got.ap50 == pytest.approx(last.ap50, abs=0.005)


def test_exporting_again_replaces_the_export_and_refuses_what_cannot_be_exported(
        trained, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained.path, copy, ignore=shutil.ignore_patterns("tensorboard"))
    before = (copy / "export" / "saved_model" / "saved_model.pb").stat().st_mtime_ns
    assert main(["export", str(copy), "--checkpoint", "last"]) == 0
    assert "exported" in folded(capsys.readouterr().out)
    assert (copy / "export" / "saved_model" / "saved_model.pb").stat().st_mtime_ns != before
    model = json.loads((copy / "export" / "model.json").read_text())
    assert (model["nms"], model["exported"], model["step"]) == ("batched", "last", 800)
    assert [p.name for p in copy.iterdir() if p.name.startswith(".")] == []  # nothing aside

    assert main(["export", str(copy), "--nms", "v1"]) == 2
    assert "use one of batched, v2" in folded(capsys.readouterr().err)
    assert main(["export", str(copy), "--checkpoint", "first"]) == 2
    assert "checkpoint 'first': use one of best, last" in folded(capsys.readouterr().err)
    assert main(["export", str(tmp_path)]) == 2
    assert "is not a cvatkit run" in folded(capsys.readouterr().err)
    (copy / "out").mkdir()
    (copy / "out" / "notes.txt").write_text("mine")
    assert main(["export", str(copy), "--out", str(copy / "out")]) == 2
    assert "is not empty" in folded(capsys.readouterr().err)
    assert (copy / "out" / "notes.txt").read_text() == "mine"
    shutil.rmtree(copy / "checkpoints")
    assert main(["export", str(copy)]) == 2
    assert "has no checkpoint to export" in folded(capsys.readouterr().err)
    status = json.loads((copy / "status.json").read_text())
    (copy / "status.json").write_text(json.dumps({**status, "state": "running"}))
    Run(copy).record_pid(os.getpid())  # a live process stands in for its trainer
    assert main(["export", str(copy)]) == 2
    assert "is still running" in folded(capsys.readouterr().err)

