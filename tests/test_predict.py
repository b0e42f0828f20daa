"""Loading detectors of both export kinds, predicting over frames, evaluating, drawing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from savedmodels import DETECTIONS, model_garden_like, od_api_like, unknown_signature  # noqa: E402

from cvatkit import open_export  # noqa: E402
from cvatkit.annotations import Frame, LabelMap, Shape  # noqa: E402
from cvatkit.cli import main  # noqa: E402
from cvatkit.detector import ModelError, load_detector  # noqa: E402
from cvatkit.errors import SourceError, UsageError  # noqa: E402
from cvatkit.evaluation import evaluate  # noqa: E402
from cvatkit.geometry import mask_bitmap  # noqa: E402
from cvatkit.labelfiles import write_label_files  # noqa: E402
from cvatkit.predict import Prediction, predict  # noqa: E402

LABELS = LabelMap.from_names(["cat", "dog", "bird"])


def expected_boxes(width: int, height: int, threshold: float = 0.5):
    """The test models' detections in pixels of a width x height frame."""
    return [(LABELS.name_of(cls), (xmin * width, ymin * height, xmax * width, ymax * height))
            for (ymin, xmin, ymax, xmax), cls, score in DETECTIONS if score >= threshold]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    out = {
        "mg": model_garden_like(root / "mg"),
        "mg-masks": model_garden_like(root / "mg-masks", masks=True),
        "od": od_api_like(root / "od" / "saved_model"),
        "od-masks": od_api_like(root / "od-masks" / "saved_model", masks=True),
    }
    for key in ("mg", "mg-masks"):
        write_label_files(LABELS, out[key])
    write_label_files(LABELS, root / "od")  # beside saved_model/, as zoo tarballs unpack
    (root / "labels").mkdir()
    write_label_files(LABELS, root / "labels")
    out["labels"] = root / "labels" / "label_map.pbtxt"
    return out


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    """Image files of two sizes, JPEG and PNG."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(5):
        size = (160, 120) if i < 3 else (96, 64)
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"f{i}.{'jpg' if i < 3 else 'png'}")
    return root


@pytest.mark.parametrize("key", ["mg", "od"])
def test_boxes_come_back_in_pixels_of_the_original_frame(models, key):
    detector = load_detector(models[key])
    assert detector.info.kind == ("model-garden" if key == "mg" else "od-api")
    assert detector.info.batch_size == (None if key == "mg" else 1)
    for width, height in ((160, 120), (64, 200)):
        image = np.zeros((height, width, 3), np.uint8)
        shapes = detector.detect([image], threshold=0.5)[0]
        got = [(s.label, s.points) for s in shapes]
        want = expected_boxes(width, height)
        assert [g[0] for g in got] == [w[0] for w in want]
        for (_, points), (_, box) in zip(got, want):
            assert points == pytest.approx(box, abs=0.02)
        assert [s.score for s in shapes] == sorted((s.score for s in shapes), reverse=True)


def test_threshold_and_max_detections(models):
    detector = load_detector(models["mg"])
    image = np.zeros((50, 50, 3), np.uint8)
    assert len(detector.detect([image], threshold=0.0)[0]) == 3
    assert len(detector.detect([image], threshold=0.9)[0]) == 1
    assert len(detector.detect([image], threshold=0.0, max_detections=2)[0]) == 2


@pytest.mark.parametrize("key", ["mg-masks", "od-masks"])
def test_masks_relative_to_their_boxes_land_inside_them(models, key):
    detector = load_detector(models[key], labels=models["labels"] if key == "od-masks" else None)
    assert detector.info.has_masks
    width, height = 160, 120
    shapes = detector.detect([np.zeros((height, width, 3), np.uint8)], threshold=0.5)[0]
    assert [s.kind for s in shapes] == ["mask", "mask"]
    for shape, (_, (x0, y0, x1, y1)) in zip(shapes, expected_boxes(width, height)):
        bitmap = mask_bitmap(shape, width, height)
        ys, xs = np.nonzero(bitmap)
        # the test mask covers the middle 4/6 of its box
        bw, bh = x1 - x0, y1 - y0
        assert xs.min() >= x0 + bw / 6 - 2 and xs.max() <= x1 - bw / 6 + 2
        assert ys.min() >= y0 + bh / 6 - 2 and ys.max() <= y1 - bh / 6 + 2
        assert bitmap.sum() > 0.5 * (bw * 4 / 6) * (bh * 4 / 6)
    polygons = detector.detect([np.zeros((height, width, 3), np.uint8)], threshold=0.5,
                               polygons=True)[0]
    assert [s.kind for s in polygons] == ["polygon", "polygon"]
    assert polygons[0].bbox() == pytest.approx(shapes[0].bbox(), abs=1.5)


def test_predict_over_image_files_in_batches_of_mixed_sizes(models, frames_dir):
    detector = load_detector(models["mg"])
    calls = []
    real_call = detector.call
    detector.call = lambda batch: calls.append(batch.shape) or real_call(batch)
    done = []
    preds = list(predict(detector, [frames_dir], batch_size=2, progress=done.append))
    assert [Path(p.frame.name).name for p in preds] == [f"f{i}.{'jpg' if i < 3 else 'png'}"
                                                        for i in range(5)]
    assert [p.frame.index for p in preds] == list(range(5))
    assert len(done) == 5
    # batches of at most 2, never mixing frame sizes
    assert calls == [(2, 120, 160, 3), (1, 120, 160, 3), (2, 64, 96, 3)]
    for p in preds:
        want = expected_boxes(p.frame.width, p.frame.height)
        got = [v for s in p.frame.shapes for v in s.points]
        assert got == pytest.approx([v for _, b in want for v in b], abs=0.02)
    one = list(predict(load_detector(models["od"]), [frames_dir / "f3.png"], limit=1))
    assert (one[0].frame.width, one[0].frame.height) == (96, 64)


def test_predict_over_a_task_export_keeps_its_annotations(models, sample_cvat):
    detector = load_detector(models["mg"])
    source = open_export(sample_cvat)
    preds = list(predict(detector, source, limit=4, keep_images=True))
    frames = list(source.frames())[:4]
    assert [p.frame.name for p in preds] == [f.name for f in frames]
    assert [p.ground_truth for p in preds] == [f.shapes for f in frames]
    assert preds[0].image.shape == (frames[0].height, frames[0].width, 3)


def test_a_trained_run_loads_and_predicts_on_held_out_frames(trained, sample_cvat):
    detector = load_detector(trained.path)
    assert detector.info.kind == "model-garden"
    assert detector.labels.names == ("square", "triangle", "circle")
    test_zip = sample_cvat.parent / "test.zip"
    preds = list(predict(detector, open_export(test_zip), threshold=0.0, max_detections=5))
    assert len(preds) == 6
    for p in preds:
        assert (p.frame.width, p.frame.height) == (160, 128)
        for s in p.frame.shapes:
            x0, y0, x1, y1 = s.points
            assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 128


def test_evaluation_counts_found_and_false_boxes():
    def box(label, x, score=None):
        return Shape(kind="rectangle", label=label, points=(x, 10, x + 20, 30), score=score)

    frame = Frame(index=0, name="a.jpg", width=100, height=50)
    truth = (box("cat", 0), box("dog", 40), box("cat", 70))
    perfect = Prediction(frame=Frame(**{**frame.__dict__, "shapes": tuple(
        Shape(**{**s.__dict__, "score": 0.9}) for s in truth)}), ground_truth=truth)
    ev = evaluate([perfect], ["cat", "dog"], threshold=0.5)
    assert (ev.ap, ev.ap50, ev.found, ev.annotated, ev.false) == (pytest.approx(1.0),
                                                                  pytest.approx(1.0), 3, 3, 0)
    # one right, one wrong label on the dog, one below the threshold, one far off
    preds = (box("cat", 1, 0.9), box("cat", 40, 0.8), box("cat", 70, 0.3), box("dog", 5, 0.7))
    ev = evaluate([Prediction(frame=Frame(**{**frame.__dict__, "shapes": preds}),
                              ground_truth=truth)], ["cat", "dog"], threshold=0.5)
    assert (ev.found, ev.annotated, ev.false) == (1, 3, 2)
    assert ev.found_share == pytest.approx(1 / 3) and ev.false_per_frame == 2
    per = {c.label: c for c in ev.per_class}
    assert (per["cat"].found, per["cat"].false, per["dog"].found, per["dog"].false) == (
        1, 1, 0, 1)
    assert "found 1 of 3 annotated objects (33.3%)" in ev.format()


# ------------------------------------------------------------------ bad input
def test_not_a_savedmodel(tmp_path):
    with pytest.raises(ModelError, match="is not a SavedModel"):
        load_detector(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf at all")
    write_label_files(LABELS, tmp_path)
    with pytest.raises(ModelError, match="could not be loaded as a SavedModel"):
        load_detector(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        load_detector(tmp_path / "nothing")


def test_savedmodel_with_an_unknown_signature(tmp_path):
    path = unknown_signature(tmp_path / "m")
    write_label_files(LABELS, path)
    with pytest.raises(ModelError, match=r"takes \['features'\].*'input_tensor'"):
        load_detector(path)


def test_missing_label_files(models, tmp_path):
    with pytest.raises(ModelError, match="has no label file .*--labels"):
        load_detector(models["od-masks"])
    assert load_detector(models["od-masks"], labels=models["labels"]).labels == LABELS


def test_label_map_that_does_not_match_the_class_count(models, tmp_path):
    two = tmp_path / "two"
    two.mkdir()
    write_label_files(LabelMap.from_names(["cat", "dog"]), two)
    with pytest.raises(ModelError, match="predicts 3 classes, but .* has 2 labels"):
        load_detector(models["od"], labels=two / "classes.csv")
    # an export that says what it was trained on is checked against its label files
    export = tmp_path / "export"
    model_garden_like(export / "saved_model")
    write_label_files(LabelMap.from_names(["cat", "dog"]), export)
    (export / "model.json").write_text(json.dumps({"labels": ["cat", "dog", "bird"]}))
    with pytest.raises(ModelError, match=r"lists 2 labels .* trained on 3"):
        load_detector(export)
    # and a class id past the label map is named when it comes back
    (export / "model.json").unlink()
    detector = load_detector(export)
    with pytest.raises(ModelError, match="returned class id 3, but its label map"):
        detector.detect([np.zeros((10, 10, 3), np.uint8)], threshold=0.0)


def test_frames_that_do_not_decode(models, frames_dir, tmp_path):
    bad = tmp_path / "frames"
    bad.mkdir()
    (bad / "a.jpg").write_bytes((frames_dir / "f0.jpg").read_bytes())
    (bad / "b.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    detector = load_detector(models["mg"])
    with pytest.raises(SourceError, match=r"b\.jpg cannot be decoded as an image"):
        list(predict(detector, [bad]))


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_0_1(models, frames_dir, threshold, capsys):
    detector = load_detector(models["mg"])
    with pytest.raises(UsageError, match="outside 0..1"):
        list(predict(detector, [frames_dir], threshold=threshold))
    code = main(["predict", str(models["mg"]), str(frames_dir), "--out",
                 str(frames_dir.parent / "out"), "--threshold", str(threshold)])
    assert code == 2
    assert "outside 0..1" in capsys.readouterr().err


def test_cli_predict_writes_predictions_and_pictures(models, frames_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(models["mg"]), str(frames_dir), "--out", str(out),
                 "--draw", "2"]) == 0
    assert "10 shapes on 5 frames" in capsys.readouterr().out
    data = json.loads((out / "predictions.json").read_text())
    assert data["labels"] == list(LABELS.names) and len(data["frames"]) == 5
    first = data["frames"][0]
    assert (first["width"], first["height"]) == (160, 120)
    assert [s["label"] for s in first["shapes"]] == ["dog", "cat"]
    assert len(list((out / "pictures").glob("*.png"))) == 2
    with Image.open(out / "gallery.png") as gallery:
        assert gallery.width > 300
    # a second run into the same folder is refused and changes nothing
    assert main(["predict", str(models["mg"]), str(frames_dir), "--out", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert len(list((out / "pictures").glob("*.png"))) == 2


def test_cli_evaluate_prints_the_figures(trained, sample_cvat, tmp_path, capsys):
    figures = tmp_path / "eval.json"
    assert main(["evaluate", str(trained.path), str(sample_cvat.parent / "test.zip"),
                 "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "frames: 6" in out and "COCO AP" in out and "square" in out
    data = json.loads(figures.read_text())
    assert data["frames"] == 6 and data["annotated"] > 0
    assert {c["label"] for c in data["per_class"]} == {"square", "triangle", "circle"}
