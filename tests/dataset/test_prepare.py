"""Prepared datasets: records Model Garden's own decoder reads back, label files, split."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from helpers import SAMPLE_FRAMES, folded

from cvatkit import open_export, prepare
from cvatkit.cvat import write_cvat_xml
from cvatkit.dataset.split import split_val
from cvatkit.geometry import clipped_bbox, mask_bitmap
from cvatkit.label_files import read_label_map
from cvatkit.records import Frame, LabelMap, Shape


def _decode_all(path, include_mask):
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    decoder = TfExampleDecoder(include_mask=include_mask)
    out = []
    for raw in tf.data.TFRecordDataset([str(p) for p in path]):
        d = decoder.decode(raw)
        out.append({k: v.numpy() for k, v in d.items()})
        out[-1]["raw"] = tf.train.Example.FromString(raw.numpy())
    return out


def test_records_decode_with_model_garden_to_the_same_boxes_labels_and_masks(
        prepared, sample_cvat):
    ds = prepared
    src = open_export(sample_cvat)
    frames = {f.name: f for f in src.frames()}
    records = _decode_all([ds.path / n for n in ds.train_files + ds.val_files], True)
    assert len(records) == SAMPLE_FRAMES
    labels = ds.labels
    for rec in records:
        name = rec["raw"].features.feature["image/filename"].bytes_list.value[0].decode()
        frame = frames[name]
        assert (rec["height"], rec["width"]) == (frame.height, frame.width)
        assert rec["image"].shape == (frame.height, frame.width, 3)
        # The JPEG is stored exactly as it was in the export.
        stored = rec["raw"].features.feature["image/encoded"].bytes_list.value[0]
        assert stored == src.read_image(frame)
        expected = [clipped_bbox(s, frame.width, frame.height) for s in frame.shapes]
        got = [(x0 * frame.width, y0 * frame.height, x1 * frame.width, y1 * frame.height)
               for y0, x0, y1, x1 in rec["groundtruth_boxes"]]
        np.testing.assert_allclose(np.reshape(got, (-1, 4)), np.reshape(expected, (-1, 4)),
                                   atol=1e-3)
        assert list(rec["groundtruth_classes"]) == [labels.id_of(s.label) for s in frame.shapes]
        masks = rec["groundtruth_instance_masks"]
        assert masks.shape == (len(frame.shapes), frame.height, frame.width)
        for m, s in zip(masks, frame.shapes):
            assert set(np.unique(m)) <= {0.0, 1.0}
            np.testing.assert_array_equal(m.astype(bool), mask_bitmap(s, frame.width,
                                                                     frame.height))


def test_label_files_and_dataset_meta(prepared, tmp_path):
    p = prepared.path
    assert (p / "classes.csv").read_text() == "labels\nsquare\ntriangle\ncircle\n"
    assert json.loads((p / "label_map.json").read_text()) == {
        "label_map": {"1": "square", "2": "triangle", "3": "circle"}}
    assert "item {\n  id: 2\n  name: 'triangle'\n}" in (p / "label_map.pbtxt").read_text()
    for f in ("label_map.json", "label_map.pbtxt", "classes.csv"):
        alone = tmp_path / f.replace(".", "_")
        alone.mkdir()
        (alone / f).write_bytes((p / f).read_bytes())
        assert read_label_map(alone).names == prepared.labels.names
    meta = json.loads((p / "dataset.json").read_text())
    assert meta["train_frames"] + meta["val_frames"] == SAMPLE_FRAMES
    assert meta["val_frames"] == 4  # 10% of 40
    assert meta["include_masks"] is True
    report = json.loads((p / "report.json").read_text())
    assert sum(report["shapes_per_label"].values()) == sum(
        report["shapes_per_kind"].values()) > 0
    coco = json.loads((p / "val_coco.json").read_text())
    assert len(coco["images"]) == 4 and [c["name"] for c in coco["categories"]] == [
        "square", "triangle", "circle"]
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = coco
    gt.createIndex()
    assert gt.getAnnIds()


def test_split_is_deterministic_exact_and_order_free():
    names = [f"f{i}.jpg" for i in range(200)]
    val = split_val(names, 0.1)
    assert len(val) == 20
    assert split_val(reversed(names), 0.1) == val
    assert split_val(names, 0.1, seed=1) != val
    # A frame keeps its side when the task grows... mostly: the count is exact, so a
    # few frames may move, but most stay.
    grown = split_val(names + [f"g{i}.jpg" for i in range(20)], 0.1)
    assert len(val & grown) >= 15
    assert split_val(["a", "b"], 0.1) and split_val(["a"], 0.1) == set()
    assert split_val(names, 0.0) == set()


def test_clipping_and_dropping_are_counted_and_written(tmp_path):
    labels = LabelMap.from_names(["a"])
    img = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (10, 20, 30)).save(img)
    shapes = (
        Shape(kind="rectangle", label="a", points=(-5, -5, 10, 10)),   # clipped
        Shape(kind="rectangle", label="a", points=(50, 5, 60, 10)),    # outside
        Shape(kind="rectangle", label="a", points=(5, 5, 5, 20)),      # zero area
        Shape(kind="polygon", label="a", points=(1, 1, 5, 5)),         # 2 points
        Shape(kind="rectangle", label="a", points=(10, 10, 12, 25)),   # tiny
    )
    frames = [Frame(index=0, name="img.png", width=40, height=30, shapes=shapes),
              Frame(index=1, name="img2.png", width=40, height=30)]
    data = img.read_bytes()
    write_cvat_xml(tmp_path / "t.zip", frames, labels, task_name="t",
                   images=lambda f: data)
    ds = prepare(open_export(tmp_path / "t.zip"), tmp_path / "out", val_fraction=0.0)
    r = ds.report
    assert (r.clipped, r.outside_dropped, r.degenerate_dropped, r.tiny) == (1, 1, 2, 1)
    assert r.frames_without_shapes == 1 and r.shapes_per_label == {"a": 2}
    assert any("img.png" in p and "fully outside" in p for p in r.problems)
    assert any("zero or negative area" in p and "line" in p for p in r.problems)
    assert any("has 2 points" in p for p in r.problems)
    rec = _decode_all([ds.path / n for n in ds.train_files], False)[0]
    np.testing.assert_allclose(rec["groundtruth_boxes"][0], [0, 0, 10 / 30, 10 / 40], atol=1e-6)
    assert ds.val_files == () and not ds.include_masks
    assert "raw" in rec and "image/object/mask" not in rec["raw"].features.feature


def test_shards_round_robin(monkeypatch, sample_cvat, tmp_path):
    monkeypatch.setattr("cvatkit.dataset.tfrecords.FRAMES_PER_SHARD", 10)
    ds = prepare(open_export(sample_cvat), tmp_path / "out", val_fraction=0.25)
    assert ds.train_files == tuple(f"train-{k:05d}-of-00003.tfrecord" for k in range(3))
    assert ds.val_files == ("val-00000-of-00001.tfrecord",)
    counts = [sum(1 for _ in tf.data.TFRecordDataset(str(ds.path / n))) for n in ds.train_files]
    assert counts == [10, 10, 10]


def test_png_frames_pass_through_and_other_formats_become_png(tmp_path):
    import io

    from PIL import Image

    labels = LabelMap.from_names(["a"])
    imgs = {}
    for name, fmt in (("p.png", "PNG"), ("t.tiff", "TIFF")):
        buf = io.BytesIO()
        Image.new("RGB", (20, 10), (200, 0, 0)).save(buf, format=fmt)
        imgs[name] = buf.getvalue()
    frames = [Frame(index=i, name=n, width=20, height=10,
                    shapes=(Shape(kind="rectangle", label="a", points=(1, 1, 9, 9)),))
              for i, n in enumerate(imgs)]
    write_cvat_xml(tmp_path / "t.zip", frames, labels, task_name="t",
                   images=lambda f: imgs[f.name])
    ds = prepare(open_export(tmp_path / "t.zip"), tmp_path / "out", val_fraction=0.0)
    recs = _decode_all([ds.path / n for n in ds.train_files], False)
    stored = {r["raw"].features.feature["image/filename"].bytes_list.value[0].decode():
              r["raw"].features.feature["image/encoded"].bytes_list.value[0] for r in recs}
    assert stored["p.png"] == imgs["p.png"]
    assert stored["t.tiff"][:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((ds.path / "dataset.json").read_text())
    assert meta["image_formats"] == {"PNG": 1, "PNG (re-encoded from TIFF)": 1}


def test_worker_processes_write_the_same_records_and_pass_errors_on(monkeypatch, sample_cvat,
                                                                     tmp_path):
    from cvatkit.errors import SourceError

    one = prepare(open_export(sample_cvat), tmp_path / "one", workers=1)
    import sys

    monkeypatch.setattr(sys.modules["cvatkit.dataset.preparation"], "PROCESS_POOL_MIN_FRAMES", 1)
    many = prepare(open_export(sample_cvat), tmp_path / "many", workers=2)
    for name in one.train_files + one.val_files:
        assert (one.path / name).read_bytes() == (many.path / name).read_bytes()
    # A frame that does not decode fails the run from inside a worker process, clearly.
    broken = tmp_path / "broken"
    with zipfile.ZipFile(sample_cvat) as src, zipfile.ZipFile(tmp_path / "b.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"junk" if info.filename.endswith("000007.jpg") else data)
    with pytest.raises(SourceError, match=r"images/frame_000007.jpg .* does not decode"):
        prepare(open_export(tmp_path / "b.zip"), broken, workers=2)
    assert not broken.exists()


def test_a_dataset_made_from_the_same_annotations_is_reused(tmp_path):
    from PIL import Image

    from cvatkit.dataset import dataset_folder_name
    from cvatkit.errors import OutputExistsError

    labels = LabelMap.from_names(["a"])
    Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / "img.png")
    data = (tmp_path / "img.png").read_bytes()

    def export(name: str, x: float) -> str:
        frames = [Frame(index=0, name="img.png", width=40, height=30, shapes=(
            Shape(kind="rectangle", label="a", points=(x, 2, x + 10, 12)),))]
        (tmp_path / name).mkdir(exist_ok=True)
        write_cvat_xml(tmp_path / name / "task.zip", frames, labels, task_name="t",
                       images=lambda f: data)
        return str(tmp_path / name / "task.zip")

    out = tmp_path / "ds"
    first = prepare(open_export(export("a", 2)), out, val_fraction=0.0, reuse=True)
    assert not first.reused
    stamp = (out / "dataset.json").stat().st_mtime_ns
    again = prepare(open_export(export("a", 2)), out, val_fraction=0.0, reuse=True)
    assert again.reused and again.train_files == first.train_files
    assert (out / "dataset.json").stat().st_mtime_ns == stamp  # nothing written
    # other settings, or a shape moved in CVAT: made again (with overwrite), else refused
    moved = export("a", 5)
    with pytest.raises(OutputExistsError, match="already holds a dataset"):
        prepare(open_export(moved), out, val_fraction=0.0, reuse=True)
    remade = prepare(open_export(moved), out, val_fraction=0.0, reuse=True, overwrite=True)
    assert not remade.reused and (out / "dataset.json").stat().st_mtime_ns != stamp
    assert not prepare(open_export(moved), out, val_fraction=0.5, reuse=True,
                       overwrite=True).reused
    # two exports of one name in two folders are two datasets
    assert dataset_folder_name(export("a", 2)) != dataset_folder_name(export("b", 2))
    assert dataset_folder_name(export("a", 2)).startswith("task-")


def test_masks_are_prepared_for_the_models_that_read_them(tmp_path, capsys):
    """Boxes only for a detector (the polygons counted); made again, with masks, when a
    mask model needs them; a dataset equal in what it holds is reused."""
    from PIL import Image

    from cvatkit.cli import main
    from cvatkit.errors import HyperparameterError
    from cvatkit.training import get_model, plan_run

    labels = LabelMap.from_names(["a"])
    Image.new("RGB", (64, 48), (10, 20, 30)).save(tmp_path / "img.png")
    frames = [Frame(index=i, name=f"f{i}.png", width=64, height=48, shapes=(
        Shape(kind="polygon", label="a", points=(5, 5, 40, 8, 20, 30)),
        Shape(kind="rectangle", label="a", points=(1, 1, 9, 9)))) for i in range(4)]
    task = tmp_path / "task.zip"
    write_cvat_xml(task, frames, labels, task_name="t",
                   images=lambda f: (tmp_path / "img.png").read_bytes())
    out = tmp_path / "ds"
    boxes = prepare(open_export(task), out, val_fraction=0.0, reuse=True,
                    masks=get_model("ssd-mobilenet-v2").masks)
    assert not boxes.include_masks and boxes.mask_shapes == 4
    assert json.loads((out / "dataset.json").read_text())["mask_shapes"] == 4
    with pytest.raises(HyperparameterError, match="prepared without them .* 4 polygons"):
        plan_run(out, "maskrcnn")
    masked = prepare(open_export(task), out, val_fraction=0.0, reuse=True, overwrite=True,
                     masks=get_model("maskrcnn").masks)
    assert masked.include_masks and not masked.reused
    assert plan_run(out, "maskrcnn").data.include_masks
    assert prepare(open_export(task), out, val_fraction=0.0, reuse=True, masks="always").reused

    assert main(["prepare", str(task), str(tmp_path / "cli"), "--model", "frcnn-res50"]) == 0
    assert "with instance masks" not in folded(capsys.readouterr().out)
    assert main(["prepare", str(task), str(tmp_path / "cli2"), "--model", "maskrcnn"]) == 0
    assert "with instance masks" in folded(capsys.readouterr().out)
    assert main(["prepare", str(task), str(tmp_path / "cli3"), "--model", "maskrcnn",
                 "--masks", "never"]) == 2
    assert "not both" in folded(capsys.readouterr().err) and not (tmp_path / "cli3").exists()


@pytest.mark.parametrize("shape", [
    Shape(kind="polygon", label="a", points=(3.2, 1.5, 40.7, 9.1, 20.4, 30.9)),
    Shape(kind="polygon", label="a", points=(-10.0, -5.0, 30.0, 12.0, 5.0, 60.0)),  # clipped
    Shape(kind="polygon", label="a", points=(1.0, 36.0, 44.0, 36.2, 20.0, 39.0)),  # low, thin
    Shape(kind="rectangle", label="a", points=(0.4, 2.6, 44.6, 7.4)),
    Shape(kind="mask", label="a", points=(2, 3, 1, 3, 10, 20, 12, 22)),  # RLE over a 3x3 box
])
def test_mask_pngs_decode_to_the_shapes_bitmap_with_values_0_and_1(shape):
    from cvatkit.dataset.tfrecords import _mask_png

    width, height = 45, 40  # rows of 45 pixels: bits that do not fill their last byte
    png = _mask_png(shape, width, height)
    want = mask_bitmap(shape, width, height)
    assert want.any()
    by_tf = tf.io.decode_png(png, channels=1).numpy()[..., 0]
    with Image.open(io.BytesIO(png)) as img:
        by_pil = np.asarray(img)
    for got in (by_tf, by_pil):
        assert set(np.unique(got)) <= {0, 1}
        np.testing.assert_array_equal(got.astype(bool), want)


def _jpeg_turned(width: int, height: int, orientation: int) -> bytes:
    """A JPEG of width x height pixels whose EXIF says to turn it (6: 90 degrees right);
    its left half red, its right half blue."""
    img = Image.new("RGB", (width, height), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_gif_frames_and_photos_turned_by_their_exif_train_as_cvat_shows_them(tmp_path):
    """TensorFlow decodes a GIF as a stack of frames and ignores EXIF: a GIF frame is
    stored as PNG, and a photo with an EXIF orientation is stored turned, at the size CVAT
    gives it (CVAT turns such photos); the report says so."""
    from cvatkit.images import decode_rgb

    labels = LabelMap.from_names(["a"])
    gif = io.BytesIO()
    Image.new("RGB", (32, 24), (0, 200, 0)).save(gif, format="GIF")
    images = {"g.gif": gif.getvalue(), "turned.jpg": _jpeg_turned(32, 24, 6)}
    box = (Shape(kind="rectangle", label="a", points=(1, 1, 9, 9)),)
    frames = [Frame(index=0, name="g.gif", width=32, height=24, shapes=box),
              Frame(index=1, name="turned.jpg", width=24, height=32, shapes=box)]
    write_cvat_xml(tmp_path / "t.zip", frames, labels, task_name="t",
                   images=lambda f: images[f.name])
    ds = prepare(open_export(tmp_path / "t.zip"), tmp_path / "out", val_fraction=0.0)
    decoded = {r["raw"].features.feature["image/filename"].bytes_list.value[0].decode(): r
               for r in _decode_all([ds.path / n for n in ds.train_files], False)}
    assert decoded["g.gif"]["image"].shape == (24, 32, 3)  # one frame, not a stack
    turned = decoded["turned.jpg"]["image"]
    assert turned.shape == (32, 24, 3)  # as CVAT shows it: upright, 24 wide
    assert turned[2, 12, 0] > 200 and turned[-3, 12, 2] > 200  # red on top, blue below
    meta = json.loads((ds.path / "dataset.json").read_text())
    assert meta["image_formats"] == {"PNG (re-encoded from GIF)": 1,
                                     "PNG (re-encoded from JPEG turned by its EXIF "
                                     "orientation (6))": 1}
    # predictions see the frame as CVAT does too
    assert decode_rgb(images["turned.jpg"], "turned.jpg").shape == (32, 24, 3)


def test_a_photo_whose_exif_turns_it_off_its_annotated_size_is_refused(tmp_path):
    labels = LabelMap.from_names(["a"])
    frames = [Frame(index=0, name="p.jpg", width=32, height=24,
                    shapes=(Shape(kind="rectangle", label="a", points=(1, 1, 9, 9)),))]
    write_cvat_xml(tmp_path / "t.zip", frames, labels, task_name="t",
                   images=lambda f: _jpeg_turned(32, 24, 8))
    from cvatkit.errors import SourceError

    with pytest.raises(SourceError, match=r"is 24x32 pixels once turned by its EXIF "
                                          r"orientation \(8\) but .* says 32x24"):
        prepare(open_export(tmp_path / "t.zip"), tmp_path / "out", val_fraction=0.0)
    assert not (tmp_path / "out").exists()


_POOL_THEN_WAIT = """
import sys, time
from cvatkit import open_export
from cvatkit.dataset import preparation
preparation.PROCESS_POOL_MIN_FRAMES = 1
pool = preparation._start_pool(open_export(sys.argv[1]), 2)
print("workers started", flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # starts worker processes
def test_a_killed_prepare_leaves_no_worker_process(sample_cvat):
    """SIGKILL ends a prepare at once; its worker processes end soon after, whatever the
    parent could not tell them."""
    import os
    import signal
    import subprocess
    import sys

    import pacing

    from cvatkit.processes import pid_alive

    parent = subprocess.Popen([sys.executable, "-c", _POOL_THEN_WAIT, str(sample_cvat)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "workers started"
        workers = pacing.until("the workers to show", lambda: _children(parent.pid))
        assert len(workers) == 2
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    pacing.until("the workers to end", lambda: not any(pid_alive(w) for w in workers),
                 patience=120)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the pool's resource tracker aside)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        cmdline = (stat.parent / "cmdline").read_bytes()
        if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found
