"""Loading detectors of both export kinds, predicting over frames, evaluating, drawing."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from fakes.saved_models import (DETECTIONS, frame_shift, model_garden_like, od_api_like,
                         unknown_signature)
from fakes.progress import Recorder
from helpers import folded

from cvatkit import open_export
from cvatkit.cli import main
from cvatkit.errors import ModelError, SourceError, UsageError
from cvatkit.geometry import mask_bitmap
from cvatkit.images import decode_rgb
from cvatkit.inference import Prediction, evaluate, load_detector, predict
from cvatkit.label_files import write_label_files
from cvatkit.records import Frame, LabelMap, Shape

LABELS = LabelMap.from_names(["cat", "dog", "bird"])


def expected_boxes(width: int, height: int, threshold: float = 0.5, shift: float = 0.0):
    """The test models' detections in pixels of a width x height frame whose
    ``frame_shift`` is ``shift``."""
    return [(LABELS.name_of(cls), ((xmin + shift) * width, ymin * height,
                                   (xmax + shift) * width, ymax * height))
            for (ymin, xmin, ymax, xmax), cls, score in DETECTIONS if score >= threshold]


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


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
    """Image files of two sizes, JPEG and PNG, each with its own top left pixel (so the
    test models put each frame's boxes somewhere else)."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(5):
        size = (160, 120) if i < 3 else (96, 64)
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        pixels[:8, :8] = 40 * i  # a flat corner: JPEG keeps its value
        Image.fromarray(pixels).save(root / f"f{i}.{'jpg' if i < 3 else 'png'}")
    return root


@pytest.mark.parametrize("key", ["mg", "od"])
def test_boxes_come_back_in_pixels_of_the_original_frame(models, key):
    detector = load_detector(models[key])
    assert detector.info.kind == ("model-garden" if key == "mg" else "od-api")
    assert detector.info.batch_size == (None if key == "mg" else 1)
    for width, height, corner in ((160, 120, 0), (64, 200, 255)):
        image = np.zeros((height, width, 3), np.uint8)
        image[0, 0] = corner
        shapes = detector.detect([image], threshold=0.5)[0]
        got = [(s.label, s.points) for s in shapes]
        want = expected_boxes(width, height, shift=frame_shift(image))
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
    done = Recorder()
    preds = list(predict(detector, [frames_dir], batch_size=2, progress=done))
    assert [Path(p.frame.name).name for p in preds] == [f"f{i}.{'jpg' if i < 3 else 'png'}"
                                                        for i in range(5)]
    assert [p.frame.index for p in preds] == list(range(5))
    assert done.starts == [("predicting", 5, "frame")] and done.advances == [1] * 5
    # batches of at most 2, never mixing frame sizes; the odd one goes last
    assert calls == [(2, 120, 160, 3), (2, 64, 96, 3), (1, 120, 160, 3)]
    shifts = set()
    for p in preds:  # each frame got its own shapes, whatever batch it went in
        shift = frame_shift(decoded(Path(p.frame.name)))
        shifts.add(round(shift, 4))
        want = expected_boxes(p.frame.width, p.frame.height, shift=shift)
        got = [v for s in p.frame.shapes for v in s.points]
        assert got == pytest.approx([v for _, b in want for v in b], abs=0.05)
    assert len(shifts) == 5
    one = list(predict(load_detector(models["od"]), [frames_dir / "f3.png"], limit=1))
    assert (one[0].frame.width, one[0].frame.height) == (96, 64)


def test_frames_of_alternating_sizes_still_go_in_full_batches(models, tmp_path):
    """A, B, A, B...: each size waits (a bounded while) for a batch of its own."""
    rng = np.random.default_rng(1)
    sizes = [(160, 120), (96, 64)] * 4 + [(64, 64 + 8 * i) for i in range(10)]
    for i, (w, h) in enumerate(sizes):
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        pixels[:8, :8] = 10 * i
        Image.fromarray(pixels).save(tmp_path / f"f{i:02d}.png")
    detector = load_detector(models["mg"])
    calls = []
    real_call = detector.call
    detector.call = lambda batch: calls.append(batch.shape[:3]) or real_call(batch)
    preds = list(predict(detector, [tmp_path], batch_size=2))
    assert [p.frame.index for p in preds] == list(range(len(sizes)))
    assert calls[:4] == [(2, 120, 160), (2, 64, 96)] * 2
    assert calls[4:] == [(1, 64 + 8 * i, 64) for i in range(10)]  # sizes seen once
    for p in preds:
        want = expected_boxes(p.frame.width, p.frame.height,
                              shift=frame_shift(decoded(Path(p.frame.name))))
        assert [v for s in p.frame.shapes for v in s.points] == pytest.approx(
            [v for _, b in want for v in b], abs=0.05)


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
    test_zip_source = open_export(test_zip)
    preds = list(predict(detector, test_zip_source, threshold=0.0, max_detections=5))
    assert len(preds) == 6
    for p in preds:  # as many shapes as the model returned detections, up to 5
        image = decode_rgb(test_zip_source.read_image(p.frame), p.frame.name)
        raw = detector.call(image[None])
        assert len(p.frame.shapes) == min(int(raw["num_detections"][0]), 5), p.frame.name
    assert sum(len(p.frame.shapes) for p in preds) >= 6
    for p in preds:
        assert (p.frame.width, p.frame.height) == (160, 128) and len(p.frame.shapes) <= 5
        for s in p.frame.shapes:
            x0, y0, x1, y1 = s.points
            assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 128
            assert s.label in detector.labels.names and 0 <= s.score <= 1


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
    # corrections (missed + false): 4 at 0.5, 3 at 0.3 (the third cat found), 2 at 0.85
    # (only the first cat kept, nothing false)
    assert ev.fewest == (0.85, 1, 0)
    assert ("fewest corrections at score >= 0.85: found 1 (33.3%), 0 false boxes (0.00 per "
            "frame), 2 to correct; pre-annotate with --threshold 0.85") in ev.format()
    noisy = preds + (box("dog", 40, 0.2), box("cat", 70, 0.1), box("cat", 20, 0.12))
    ev = evaluate([Prediction(frame=Frame(**{**frame.__dict__, "shapes": noisy}),
                              ground_truth=truth)], ["cat", "dog"], threshold=0.5)
    # 0.2 and 0.15 find the dog too: 0 missed, 2 false, a tie with 0.85 that the lowest
    # threshold (more found) wins; 0.1 and lower only add false boxes
    assert ev.fewest == (0.15, 3, 2)
    nothing = evaluate([Prediction(frame=Frame(**{**frame.__dict__, "shapes": preds}))],
                       ["cat", "dog"])
    assert nothing.fewest is None and "fewest" not in nothing.format()


def test_a_shape_without_a_score_is_a_plain_claim_everywhere():
    """Shapes from a file (no score) are kept at every threshold by the evaluation, the
    review and the ranking alike, and rank first."""
    from cvatkit.inference import review

    frame = Frame(index=0, name="a.jpg", width=100, height=50)
    truth = (Shape(kind="rectangle", label="cat", points=(0, 10, 20, 30)),)
    plain = Shape(kind="rectangle", label="cat", points=(0, 10, 20, 30))
    scored = Shape(kind="rectangle", label="cat", points=(50, 10, 70, 30), score=0.6)
    assert (plain.confidence, scored.confidence) == (1.0, 0.6)
    p = Prediction(frame=Frame(**{**frame.__dict__, "shapes": (scored, plain)}),
                   ground_truth=truth)
    ev = evaluate([p], ["cat"], threshold=0.95)
    assert (ev.found, ev.false) == (1, 0)  # the plain shape kept, the scored one not
    assert review([p], threshold=0.95).counts() == {}  # the cat found, the scored one left
    assert review([p], threshold=0.5).counts() == {"false": 1}


# ------------------------------------------------------------------ bad input
def test_coco_ap_averages_iou_thresholds_and_ap50_does_not():
    """Known partial matches: 'a' is found once with IoU 0.72 (counted at IoU 0.50 to 0.70,
    5 of COCO's 10 thresholds), 'b' once of its two objects, exactly (recall 0.5 at every
    threshold: 51 of the 101 recall points)."""
    frame = Frame(index=0, name="a.jpg", width=100, height=100)
    truth = (Shape(kind="rectangle", label="a", points=(0, 0, 10, 10)),
             Shape(kind="rectangle", label="b", points=(50, 50, 70, 70)),
             Shape(kind="rectangle", label="b", points=(20, 60, 30, 90)))
    preds = (Shape(kind="rectangle", label="a", points=(0, 0, 10, 7.2), score=0.9),
             Shape(kind="rectangle", label="b", points=(50, 50, 70, 70), score=0.8))
    ev = evaluate([Prediction(frame=Frame(**{**frame.__dict__, "shapes": preds}),
                              ground_truth=truth)], ["a", "b"], threshold=0.5)
    per = {c.label: c for c in ev.per_class}
    assert per["a"].ap == pytest.approx(0.5) and per["a"].ap50 == pytest.approx(1.0)
    assert per["b"].ap == pytest.approx(51 / 101) and per["b"].ap50 == pytest.approx(51 / 101)
    assert ev.ap == pytest.approx((0.5 + 51 / 101) / 2)
    assert ev.ap50 == pytest.approx((1.0 + 51 / 101) / 2)
    assert ev.ap75 == pytest.approx((0.0 + 51 / 101) / 2)
    assert (ev.found, ev.annotated, ev.false) == (2, 3, 0)
    assert ev.ap <= ev.ap50 and all(c.ap <= c.ap50 for c in ev.per_class)


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
    assert "outside 0..1" in folded(capsys.readouterr().err)


def test_cli_predict_writes_predictions_and_pictures(models, frames_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(models["mg"]), str(frames_dir), "--out", str(out),
                 "--draw", "2"]) == 0
    assert "10 shapes on 5 frames" in folded(capsys.readouterr().out)
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
    assert "is not empty" in folded(capsys.readouterr().err)
    assert len(list((out / "pictures").glob("*.png"))) == 2


def test_cli_evaluate_prints_the_figures(trained, sample_cvat, tmp_path, capsys):
    figures = tmp_path / "eval.json"
    plots, mistakes = tmp_path / "plots", tmp_path / "mistakes.csv"
    assert main(["evaluate", str(trained.path), str(sample_cvat.parent / "test.zip"),
                 "--json", str(figures), "--threshold", "0.1", "--plots", str(plots),
                 "--mistakes", str(mistakes)]) == 0
    out = folded(capsys.readouterr().out)
    assert "frames: 6" in out and "COCO AP" in out and "square" in out
    assert "mistakes at score >= 0.1: missed" in out and "likely annotation mistakes" in out
    data = json.loads(figures.read_text())
    assert data["frames"] == 6 and data["annotated"] > 0
    # the shared run finds the shapes (a young focal-loss model scores them low)
    assert data["ap50"] > 0.3 and data["found"] > 0 and data["threshold"] == 0.1
    assert {c["label"] for c in data["per_class"]} == {"square", "triangle", "circle"}
    # the review agrees with the figures: what is found is on the confusion's diagonal
    matrix = data["review"]["confusion"]["counts"]
    assert sum(matrix[i][i] for i in range(3)) == data["found"]
    assert sum(row[3] for row in matrix[:3]) == data["annotated"] - data["found"] - sum(
        matrix[i][j] for i in range(3) for j in range(3) if i != j)
    assert mistakes.read_text().startswith("frame,name,kind,")
    for name in ("pr_curves.png", "confusion.png"):
        assert (plots / name).read_bytes().startswith(b"\x89PNG")
    assert main(["evaluate", str(trained.path), str(sample_cvat.parent / "test.zip"),
                 "--plots", str(mistakes)]) == 2
    assert "is a file; give the folder" in folded(capsys.readouterr().err)


def test_a_zoo_label_map_with_gaps_and_display_names(tmp_path):
    """The TF2 model zoo's COCO label map: 80 labels with ids up to 90, the readable name
    in display_name; the model's per-class scores count 90 classes and the background."""
    model = od_api_like(tmp_path / "zoo" / "saved_model", classes_predicted=90,
                        class_ids=(1, 3, 90))
    (tmp_path / "zoo" / "mscoco_label_map.pbtxt").write_text(
        'item {\n  name: "/m/01g317"\n  id: 1\n  display_name: "person"\n}\n'
        'item {\n  name: "/m/0k4j"\n  id: 3\n  display_name: "car"\n}\n'
        'item {\n  name: "/m/012xff"\n  id: 90\n  display_name: "toothbrush"\n}\n')
    detector = load_detector(model, labels=tmp_path / "zoo" / "mscoco_label_map.pbtxt")
    assert detector.labels.names == ("person", "car", "toothbrush")
    shapes = detector.detect([np.zeros((100, 200, 3), np.uint8)], threshold=0.0)[0]
    assert [s.label for s in shapes] == ["car", "person", "toothbrush"]  # ids 3, 1, 90
    # a map that stops short of what the model predicts is refused at once
    short = tmp_path / "short.pbtxt"
    short.write_text("item { id: 1 name: 'person' }\nitem { id: 3 name: 'car' }\n")
    with pytest.raises(ModelError, match=r"predicts 90 classes, but .*short\.pbtxt has 2 "
                                         r"labels \(ids up to 3\)"):
        load_detector(model, labels=short)


def test_fixed_input_sizes_and_batches_are_met(models, tmp_path):
    """A signature that fixes the input size gets frames resized to it (shapes still in
    pixels of the frame); one that fixes the batch size gets full batches."""
    fixed = od_api_like(tmp_path / "fixed" / "saved_model", input_size=(48, 64))
    write_label_files(LABELS, tmp_path / "fixed")
    detector = load_detector(fixed)
    assert detector.info.input_size == (48, 64)
    image = np.full((120, 160, 3), 200, np.uint8)  # flat: the resize keeps its corner
    shapes = detector.detect([image], threshold=0.5)[0]
    want = expected_boxes(160, 120, shift=frame_shift(image))
    assert [v for s in shapes for v in s.points] == pytest.approx(
        [v for _, b in want for v in b], abs=0.05)

    four = model_garden_like(tmp_path / "four", batch=4)
    write_label_files(LABELS, four)
    detector = load_detector(four)
    assert detector.info.batch_size == 4
    calls = []
    real_call = detector.call
    detector.call = lambda batch: calls.append(batch.shape[0]) or real_call(batch)
    images = []
    for i in range(5):
        image = np.zeros((30, 40, 3), np.uint8)
        image[0, 0] = 50 * i
        images.append(image)
    results = detector.detect(images, threshold=0.5)
    assert calls == [4, 4]  # 4, then 1 padded to 4
    for image, shapes in zip(images, results):
        want = expected_boxes(40, 30, shift=frame_shift(image))
        assert [v for s in shapes for v in s.points] == pytest.approx(
            [v for _, b in want for v in b], abs=0.05)


def test_decoding_runs_ahead_of_the_model(models):
    """While the model works on a frame, the next frames are being read and decoded: the
    model's first call waits until frame 2 is being read, which only a reader running
    ahead of the model does (one that waits for the model would never get there)."""
    detector = load_detector(models["mg"])
    frame, jpeg = _frame_and_jpeg()
    reading = [threading.Event() for _ in range(6)]

    class Source:  # a task source that says which frame is being read
        def frames(self):
            return iter([dataclasses.replace(frame, index=i, name=f"f{i}.jpg")
                         for i in range(6)])

        def image_name(self, f):
            return f.name

        def read_image(self, f):
            reading[f.index].set()
            return jpeg

    real_call = detector.call
    overlapped = []

    def call(batch):
        if not overlapped:  # the model's first call: frame 2 is being read meanwhile
            overlapped.append(reading[2].wait(timeout=120))
        return real_call(batch)

    detector.call = call
    preds = list(predict(detector, Source(), batch_size=1))
    assert [p.frame.index for p in preds] == list(range(6))
    assert overlapped == [True]


def _frame_and_jpeg():
    from cvatkit.cvat import sample_frame

    return sample_frame(0, 0, index=0)


def test_a_model_store_version_loads_and_checks_its_labels(trained, sample_cvat, tmp_path):
    from cvatkit.store import open_store, publish

    version = publish(trained.path, open_store(str(tmp_path / "store")), "team")
    assert version.uri.startswith("file://")
    detector = load_detector(version.uri)
    assert detector.info.kind == "model-garden" and detector.labels.names == (
        "square", "triangle", "circle")
    frames = open_export(sample_cvat.parent / "test.zip")
    from_store = list(predict(detector, frames, threshold=0.0, limit=2))
    from_run = list(predict(load_detector(trained.path), frames, threshold=0.0, limit=2))
    assert [p.frame.shapes for p in from_store] == [p.frame.shapes for p in from_run]
    # what the export says of its labels travels with it, and is checked
    pulled = detector.info.saved_model.parent
    assert json.loads((pulled / "model.json").read_text())["labels"] == [
        "square", "triangle", "circle"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("labels\nsquare\ncircle\ntriangle\n")
    with pytest.raises(ModelError, match="lists 3 labels .* was trained on 3"):
        load_detector(version.uri, labels=wrong)


# ------------------------------------------------------------ bad input at the command line
@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, models):
    """Models and files that cannot be used as given."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("bad-models")
    (root / "empty").mkdir()
    unknown_signature(root / "unknown")
    write_label_files(LABELS, root / "unknown")
    float_input = od_api_like(root / "float" / "saved_model", dtype=tf.float32)
    write_label_files(LABELS, root / "float")
    (root / "two.csv").write_text("labels\ncat\ndog\n")
    (root / "latin1.pbtxt").write_bytes("item { id: 1 name: 'caf\xe9' }\n".encode("latin-1"))
    (root / "a-file").write_text("not a folder")
    return {"empty": root / "empty", "unknown": root / "unknown", "float": float_input,
            "two": root / "two.csv", "latin1": root / "latin1.pbtxt",
            "file": root / "a-file"}


@pytest.mark.parametrize("case, args, needles", [
    ("not a SavedModel", ["predict", "{empty}", "{frames}"], ["is not a SavedModel"]),
    ("unknown signature", ["predict", "{unknown}", "{frames}"],
     ["takes ['features']", "'input_tensor'"]),
    ("input not uint8", ["predict", "{float}", "{frames}"],
     ["input 'input_tensor' takes float32", "uint8 images"]),
    ("no label files", ["predict", "{od-masks}", "{frames}"], ["has no label file", "--labels"]),
    ("labels do not match the class count", ["predict", "{od}", "{frames}", "--labels", "{two}"],
     ["predicts 3 classes", "two.csv has 2 labels"]),
    ("label file not UTF-8", ["predict", "{od}", "{frames}", "--labels", "{latin1}"],
     ["latin1.pbtxt is not UTF-8 text"]),
    ("frames that do not decode", ["predict", "{mg}", "{bad_frames}"],
     ["b.jpg cannot be decoded as an image"]),
    ("threshold outside 0-1", ["predict", "{mg}", "{frames}", "--threshold", "1.5"],
     ["outside 0..1"]),
    ("--out is a file", ["predict", "{mg}", "{frames}", "--out", "{file}"], ["is a file"]),
    ("a task with none of the model's labels",
     ["annotate", "{mg}", "--source", "{task}", "--out", "{out}.xml", "--drop-unmapped"],
     ["has none of the model's labels", "--map"]),
    ("--out is a folder", ["annotate", "{mg}", "--source", "{task}", "--out", "{folder}",
                           "--map", "cat=square", "--drop-unmapped"], ["is a folder"]),
    ("evaluate on a task with none of the model's labels",
     ["evaluate", "{mg}", "{task}", "--json", "{out}.json"], ["has none of the model's labels"]),
])
def test_bad_input_at_the_command_line(case, args, needles, models, bad_models, frames_dir,
                                       sample_cvat, tmp_path, capsys):
    """Each: exit code 2, one message saying what is wrong and what to do, no traceback,
    and nothing written where the output was to go."""
    bad_frames = tmp_path / "bad-frames"
    bad_frames.mkdir()
    (bad_frames / "a.jpg").write_bytes((frames_dir / "f0.jpg").read_bytes())
    (bad_frames / "b.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "folder").mkdir()
    names = {**models, **bad_models, "frames": frames_dir,
             "bad_frames": bad_frames, "out": tmp_path / "out", "folder": tmp_path / "folder",
             "task": _task_without_model_labels(tmp_path) if "none of" in case
             else sample_cvat}
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    if argv[0] == "predict" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    before = set(tmp_path.iterdir())
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (case, out, err)
    flat = folded(err)
    for needle in needles:
        assert needle in flat, (case, flat)
    assert "Traceback" not in out + err
    left = {p.name for p in set(tmp_path.iterdir()) - before}
    assert not left, f"{case}: left {left}"
    assert list((tmp_path / "folder").iterdir()) == []
    assert bad_models["file"].read_text() == "not a folder"


def _task_without_model_labels(tmp_path: Path) -> Path:
    """A one-frame CVAT export labelled car and truck (the test models know cat, dog,
    bird)."""
    from cvatkit.cvat import write_cvat_xml

    frame, jpeg = _frame_and_jpeg()
    dest = tmp_path / "cars.zip"
    write_cvat_xml(dest, [dataclasses.replace(frame, shapes=())],
                   LabelMap.from_names(["car", "truck"]), task_name="cars",
                   images=lambda _f: jpeg)
    return dest


def test_cli_evaluate_maps_model_labels_to_the_tasks(models, sample_cvat, tmp_path, capsys):
    figures = tmp_path / "eval.json"
    assert main(["evaluate", str(models["mg"]), str(sample_cvat), "--limit", "4",
                 "--map", "cat=square", "--map", "dog=triangle", "--json",
                 str(figures)]) == 0
    out = capsys.readouterr().out
    assert out.index("model label -> label of") < out.index("COCO AP")
    rows = {c["label"]: c for c in json.loads(figures.read_text())["per_class"]}
    # bird has no task label: its boxes are counted as false ones, under its own name
    assert set(rows) == {"square", "triangle", "circle", "bird"}
    assert rows["bird"]["annotated"] == 0 and rows["bird"]["false"] == 0  # score 0.3 < 0.5
    assert rows["square"]["false"] + rows["square"]["found"] == 4  # one cat box a frame
    assert main(["evaluate", str(models["mg"]), str(sample_cvat), "--limit", "4",
                 "--map", "cat=square", "--map", "dog=triangle", "--drop-unmapped",
                 "--threshold", "0.2", "--json", str(figures)]) == 0
    capsys.readouterr()
    rows = {c["label"]: c for c in json.loads(figures.read_text())["per_class"]}
    assert "bird" not in rows


TF_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} \d\d:\d\d:\d\d|WARNING:|"
    r"INFO:|.*(tensorflow/|oneDNN|cuda|cpu_feature_guard|rebuild TensorFlow))", re.M)


def test_predict_prints_no_tensorflow_log_lines_unless_verbose(trained, sample_cvat, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CVATKIT_VERBOSE")}

    def run(*extra: str) -> str:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        done = subprocess.run(
            [str(Path(sys.executable).parent / "cvatkit"), *extra, "predict",
             str(trained.path), str(sample_cvat.parent / "test.zip"), "--out", str(out),
             "--limit", "2"], capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    quiet = run()
    assert "predictions" in quiet and not TF_LOG_LINE.search(quiet), quiet
    assert TF_LOG_LINE.search(run("--verbose"))  # what the quiet run hides is there
    assert TF_LOG_LINE.search((trained.path / "trainer.log").read_text())  # the whole log
