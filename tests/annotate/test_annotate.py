"""Pre-annotation: on the fake CVAT server through the real cvat-sdk (and cvat-cli), and
offline into an annotations file that the export reader reads back."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes.cvat_server import PASSWORD, USER
from PIL import Image
from fakes.saved_models import DETECTIONS, frame_shift, model_garden_like
from helpers import folded

from cvatkit import connect, open_export
from cvatkit.annotate import annotate_export, annotate_task
from cvatkit.cli import main
from cvatkit.cvat import sample_frame
from cvatkit.errors import ModelError, ServerError, UsageError
from cvatkit.inference import load_detector
from cvatkit.label_files import write_label_files
from cvatkit.records import LabelMap

FRAMES = 3  # sample frames are 160 x 128
MODEL_LABELS = ("cat", "dog", "bird")


def found_on(jpeg: bytes, label: str) -> tuple[float, float, float, float]:
    """The box the test model finds for ``label`` on this frame (see fakes/saved_models.py)."""
    with Image.open(io.BytesIO(jpeg)) as img:
        pixels = np.asarray(img.convert("RGB"))
    height, width = pixels.shape[:2]
    shift = frame_shift(pixels)
    (ymin, xmin, ymax, xmax), _cls, _score = next(
        d for d in DETECTIONS if MODEL_LABELS[d[1] - 1] == label)
    return ((xmin + shift) * width, ymin * height, (xmax + shift) * width, ymax * height)


@pytest.fixture(scope="module", autouse=True)
def frames(fake_cvat):
    """The frames of every task this module makes (``new_task``)."""
    fake_cvat.frames = [(f.name, jpeg) for f, jpeg in
                        (sample_frame(1, i, index=i) for i in range(FRAMES))]


@pytest.fixture(autouse=True)
def no_fault_left(fake_cvat):
    """A fault one test arms and no request meets must not hit the next test."""
    yield
    assert fake_cvat.reset_faults() == [], "a fault was armed and never met"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = model_garden_like(tmp_path_factory.mktemp("model") / "mg")
    write_label_files(LabelMap.from_names(MODEL_LABELS), path)
    return path


@pytest.fixture(scope="module")
def mask_model(tmp_path_factory):
    path = model_garden_like(tmp_path_factory.mktemp("mask-model") / "mg", masks=True)
    write_label_files(LabelMap.from_names(MODEL_LABELS), path)
    return path


@pytest.fixture
def client(cvat_env):
    c = connect()
    yield c
    c.close()


def new_task(fake_cvat, labels, *, shapes=(), media_type="image") -> int:
    return fake_cvat.add_task("photos", [{"name": n, "type": t} for n, t in labels],
                           fake_cvat.frames, shapes=shapes, media_type=media_type, chunk_size=2)


def auto(fake_cvat, task_id):
    return [s for s in fake_cvat.shapes(task_id) if s["source"] == "auto"]


MANUAL = {"type": "rectangle", "label": "cat", "frame": 0, "points": [1, 1, 10, 10],
          "attributes": []}


def test_shapes_land_with_the_right_labels_frames_and_coordinates(fake_cvat, client, model):
    task = new_task(fake_cvat, [("cat", "rectangle"), ("dog", "polygon"), ("bird", "any")],
                    shapes=[MANUAL])
    shown = []
    result = annotate_task(client, task, load_detector(model), threshold=0.5,
                           on_mapping=shown.append, frames="all")
    assert shown and shown[0].targets == ("cat", "dog", "bird")
    assert result.shapes == {"cat": FRAMES, "dog": FRAMES, "bird": 0}
    written = auto(fake_cvat, task)
    assert len(written) == 2 * FRAMES
    assert len(fake_cvat.shapes(task)) == 2 * FRAMES + 1  # the manual shape is kept
    corners = set()
    for frame, (_name, jpeg) in enumerate(fake_cvat.frames):
        mine = {s["label"]: s for s in written if s["frame"] == frame}
        assert mine["cat"]["type"] == "rectangle"
        # each shape carries the model's confidence, as CVAT stores and shows it
        assert (mine["cat"]["score"], mine["dog"]["score"]) == (0.8, 0.95)
        assert mine["cat"]["points"] == pytest.approx(list(found_on(jpeg, "cat")), abs=0.02)
        # a polygon label gets the box as a polygon from a box-only model
        assert mine["dog"]["type"] == "polygon"
        x0, y0, x1, y1 = found_on(jpeg, "dog")
        assert mine["dog"]["points"] == pytest.approx([x0, y0, x1, y0, x1, y1, x0, y1],
                                                      abs=0.02)
        corners.add(x0)
    assert len(corners) == FRAMES  # each frame has boxes of its own


def test_retrying_after_a_failed_upload_does_not_duplicate_shapes(fake_cvat, client, model):
    detector = load_detector(model)
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")])
    # the server stores the shapes but the answer is lost on the way back
    fake_cvat.fail_next("PATCH", status=502, apply=True)
    with pytest.raises(ServerError, match="run the same command again"):
        annotate_task(client, task, detector)
    assert len(auto(fake_cvat, task)) == 2 * FRAMES
    again = annotate_task(client, task, detector)
    assert again.total == 0 and again.skipped_frames == {"already annotated": FRAMES}
    # asked to predict on annotated frames too, it still writes no shape twice
    everywhere = annotate_task(client, task, detector, frames="all")
    assert everywhere.total == 0 and everywhere.skipped_existing == 2 * FRAMES
    assert len(auto(fake_cvat, task)) == 2 * FRAMES
    # the upload fails before anything is stored: the retry writes everything once
    other = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")])
    fake_cvat.fail_next("PATCH", status=500, apply=False)
    with pytest.raises(ServerError, match="Nothing is lost"):
        annotate_task(client, other, detector)
    assert auto(fake_cvat, other) == []
    assert annotate_task(client, other, detector).total == 2 * FRAMES
    assert len(auto(fake_cvat, other)) == 2 * FRAMES


def test_frames_people_annotated_get_no_predictions(fake_cvat, client, model, capsys):
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")],
                    shapes=[MANUAL])
    result = annotate_task(client, task, load_detector(model))
    assert result.skipped_frames == {"already annotated": 1}
    assert {s["frame"] for s in auto(fake_cvat, task)} == set(range(1, FRAMES))
    assert "1 frames already annotated were left as they are" in folded(result.format())
    dry = annotate_task(client, task, load_detector(model), frames="all", dry_run=FRAMES)
    assert dry.frames == FRAMES and dry.skipped_frames == {}
    # the job of the fake server's task is new: new-jobs takes the same frames
    assert annotate_task(client, task, load_detector(model), frames="new-jobs").total == 0
    with pytest.raises(UsageError, match="goes with all frames"):
        annotate_task(client, task, load_detector(model), clear_existing=True,
                      frames="unannotated")
    assert main(["annotate", str(model), "--task", str(task), "--frames", "new-jobs",
                 "--dry-run", "1"]) == 0
    # every frame holds shapes now: nothing is left to predict on
    assert "3 frames already annotated were left" in folded(capsys.readouterr().out)
    assert len(auto(fake_cvat, task)) == 2 * (FRAMES - 1)


def test_dry_run_writes_nothing(fake_cvat, client, model):
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")])
    before = len(fake_cvat.requests)
    result = annotate_task(client, task, load_detector(model), dry_run=2, threshold=0.0)
    assert result.dry_run and result.frames == 2 and len(result.predictions) == 2
    assert result.shapes == {"cat": 2, "dog": 2, "bird": 2}
    assert not [r for r in fake_cvat.requests[before:] if r[0] in ("PATCH", "PUT", "DELETE")]
    assert fake_cvat.shapes(task) == []
    assert "would write 6 shapes on 2 frames" in result.format()


def test_clear_existing_replaces_the_annotations(fake_cvat, client, model):
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")],
                    shapes=[MANUAL])
    annotate_task(client, task, load_detector(model), clear_existing=True)
    shapes = fake_cvat.shapes(task)
    assert len(shapes) == 2 * FRAMES and all(s["source"] == "auto" for s in shapes)
    assert ("PUT", f"/api/tasks/{task}/annotations/") in fake_cvat.requests


def test_unmapped_labels_are_refused_unless_mapped_or_dropped(fake_cvat, client, model):
    detector = load_detector(model)
    task = new_task(fake_cvat, [("cat", "any"), ("Dog", "any"), ("vehicle", "any")])
    with pytest.raises(UsageError, match=r"no label for the model's 'bird'.*--drop-unmapped"):
        annotate_task(client, task, detector)
    assert fake_cvat.shapes(task) == []
    result = annotate_task(client, task, detector, threshold=0.0, drop_unmapped=True)
    assert result.mapping.target("dog") == "Dog"  # same name, other case
    assert result.dropped == FRAMES and result.shapes == {"cat": FRAMES, "Dog": FRAMES}
    stored = sorted(s["label"] for s in auto(fake_cvat, task))  # what the server now holds
    assert stored == ["Dog"] * FRAMES + ["cat"] * FRAMES
    other = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("vehicle", "any")])
    result = annotate_task(client, other, detector, threshold=0.0,
                           mapping={"bird": "vehicle"})
    assert result.shapes["vehicle"] == FRAMES
    stored = sorted(s["label"] for s in auto(fake_cvat, other))
    assert stored == ["cat"] * FRAMES + ["dog"] * FRAMES + ["vehicle"] * FRAMES
    assert re.search(r"bird +-> vehicle +\(your mapping\)", result.mapping.format())
    with pytest.raises(UsageError, match="'plane', which the model does not predict"):
        annotate_task(client, other, detector, mapping={"plane": "cat"})


def test_a_model_that_fails_on_the_frames_is_not_called_an_upload_error(fake_cvat, client,
                                                                        tmp_path):
    """A label map shorter than what the model predicts is found while predicting:
    that is the model's fault, and running again will not help."""
    model = model_garden_like(tmp_path / "mg")
    write_label_files(LabelMap.from_names(["cat", "dog"]), model)
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any")])
    with pytest.raises(ModelError, match="returned class id 3, but its label map") as info:
        annotate_task(client, task, load_detector(model), threshold=0.0)
    assert "run the same command again" not in str(info.value)
    assert fake_cvat.shapes(task) == []


def test_a_task_with_none_of_the_models_labels(fake_cvat, client, model):
    task = new_task(fake_cvat, [("car", "any"), ("truck", "any")])
    with pytest.raises(UsageError, match="has none of the model's labels"):
        annotate_task(client, task, load_detector(model), drop_unmapped=True)


def test_a_video_task_gets_a_clear_error(fake_cvat, client, model):
    task = new_task(fake_cvat, [("cat", "any")], media_type="video")
    with pytest.raises(UsageError, match="is a video task; cvat-sdk's annotate_task "
                                         "pre-annotates image tasks only"):
        annotate_task(client, task, load_detector(model))


def test_a_mask_model_writes_what_each_label_takes(fake_cvat, client, mask_model):
    task = new_task(fake_cvat, [("cat", "polygon"), ("dog", "mask"), ("bird", "rectangle")])
    annotate_task(client, task, load_detector(mask_model), threshold=0.0)
    kinds = {(s["label"], s["type"]) for s in auto(fake_cvat, task)}
    assert kinds == {("cat", "polygon"), ("dog", "mask"), ("bird", "rectangle")}


def test_cli_annotate_shows_the_mapping_first(fake_cvat, client, model, capsys):
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")])
    assert main(["annotate", str(model), "--task", str(task), "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.index("model label -> label of task") < out.index("wrote 6 shapes on 3 frames")
    assert len(auto(fake_cvat, task)) == 2 * FRAMES
    assert main(["annotate", str(model), "--task", str(task), "--threshold", "2"]) == 2
    assert "outside 0..1" in folded(capsys.readouterr().err)


@pytest.mark.slow  # starts cvat-cli
def test_cvat_cli_runs_the_same_function_module(fake_cvat, model, tmp_path):
    task = new_task(fake_cvat, [("cat", "any"), ("dog", "any"), ("bird", "any")])
    env = {**os.environ, "PASS": PASSWORD, "CVATKIT_CVAT_CACHE": str(tmp_path)}
    env.pop("CVAT_ACCESS_TOKEN", None)
    cli = Path(sys.executable).parent / "cvat-cli"
    proc = subprocess.run(
        [str(cli), "--server-host", fake_cvat.url, "--auth", USER, "task", "auto-annotate",
         str(task), "--function-module", "cvatkit.cvat_function", "-p",
         f"model=str:{model}", "-p", "threshold=float:0.5"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = auto(fake_cvat, task)
    assert sorted(s["label"] for s in written) == ["cat"] * FRAMES + ["dog"] * FRAMES
    assert {(s["label"], s["score"]) for s in written} == {("cat", 0.8), ("dog", 0.95)}
    assert PASSWORD not in proc.stdout + proc.stderr
    # a model that is not there: cvat-cli says so, without a traceback
    proc = subprocess.run(
        [str(cli), "--server-host", fake_cvat.url, "--auth", USER, "task", "auto-annotate",
         str(task), "--function-module", "cvatkit.cvat_function", "-p",
         f"model=str:{tmp_path / 'no-such-model'}"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "no-such-model does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_tags_the_frames_with_likely_annotation_mistakes(fake_cvat, client, model,
                                                                   tmp_path, capsys):
    """Frame 0 agrees with the model; frame 1 lacks the cat it finds at 0.80; frame 2
    has a second cat where it sees nothing. Only frames 1 and 2 get the review tag,
    once."""
    def rect(label, frame, points):
        return {"type": "rectangle", "label": label, "frame": frame, "points": list(points),
                "attributes": []}

    jpegs = [jpeg for _, jpeg in fake_cvat.frames]
    shapes = [rect("cat", 0, found_on(jpegs[0], "cat")), rect("dog", 0, found_on(jpegs[0], "dog")),
              rect("dog", 1, found_on(jpegs[1], "dog")),
              rect("cat", 2, found_on(jpegs[2], "cat")), rect("dog", 2, found_on(jpegs[2], "dog")),
              rect("cat", 2, (2, 100, 12, 110))]
    task = fake_cvat.add_task("review", [{"name": n, "type": t} for n, t in (
        ("cat", "rectangle"), ("dog", "rectangle"), ("bird", "rectangle"),
        ("needs-review", "tag"))], fake_cvat.frames, shapes=shapes, chunk_size=2)
    mistakes = tmp_path / "mistakes.csv"
    args = ["evaluate", str(model), f"cvat://{task}", "--review-tag", "needs-review",
            "--mistakes", str(mistakes), "--confident", "0.8"]
    assert main(args) == 0
    out = folded(capsys.readouterr().out)
    assert f"task {task}: tagged 2 frames 'needs-review' (1, 2)" in out
    assert "frame 1 frame_000001.jpg: cat (0.80) where nothing is annotated" in out
    assert "frame 2 frame_000002.jpg: cat annotated where the model sees nothing" in out
    assert [(t["frame"], t["label"]) for t in fake_cvat.tags(task)] == [(1, "needs-review"),
                                                                    (2, "needs-review")]
    kinds = [(row.split(",")[0], row.split(",")[2]) for row in
             mistakes.read_text().splitlines()[1:]]
    assert ("1", "unannotated") in kinds and ("2", "stray") in kinds
    assert not [k for k in kinds if k[0] == "0"]
    # the tag label is a frame tag, not a class the model is scored on
    assert "needs-review" not in out.split("likely annotation mistakes")[0]
    # again: nothing is tagged twice
    assert main(args) == 0
    assert "tagged 0 frames 'needs-review'; 2 had the tag already" in folded(
        capsys.readouterr().out)
    assert len(fake_cvat.tags(task)) == 2
    # a task without that tag label: told what to add, nothing written
    assert main([*args[:4], "next", *args[5:]]) == 2
    out, err = capsys.readouterr()
    err = folded(err)
    assert "COCO AP" not in out  # refused before predicting
    assert "it has no tag label 'next'. Add a label of type Tag named 'next'" in err
    assert "pick one of its tag labels (needs-review)" in err
    # offline exports have no server to tag on
    assert main(["evaluate", str(model), str(tmp_path), "--review-tag", "x"]) == 2
    assert "give the task as cvat://TASK_ID" in folded(capsys.readouterr().err)


def test_rank_tags_the_frames_to_annotate_next(fake_cvat, client, model, capsys):
    task = fake_cvat.add_task("next", [{"name": n, "type": t} for n, t in (
        ("cat", "rectangle"), ("dog", "rectangle"), ("bird", "rectangle"), ("next", "tag"))],
        fake_cvat.frames, chunk_size=2)
    args = ["rank", str(model), f"cvat://{task}", "--top", "2", "--tag", "next"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 frames ranked, most uncertain first" in out
    lines = out.splitlines()
    table = lines.index(next(line for line in lines if line.lstrip().startswith("rank")))
    ranked = [int(line.split()[1]) for line in lines[table + 1:table + 3]]  # the top 2
    assert len(set(ranked)) == 2 and set(ranked) <= {0, 1, 2}
    assert [t["frame"] for t in fake_cvat.tags(task)] == sorted(ranked)
    assert main(args) == 0  # again: nothing tagged twice
    assert "tagged 0 frames 'next'; 2 had the tag already" in folded(capsys.readouterr().out)
    assert len(fake_cvat.tags(task)) == 2
    assert main([*args[:-1], "needs-review"]) == 2
    assert "it has no tag label 'needs-review'" in folded(capsys.readouterr().err)


# ------------------------------------------------------------------ offline
@pytest.mark.parametrize("suffix", [".xml", ".zip"])
def test_offline_annotations_file_reads_back_identically(model, sample_cvat, tmp_path,
                                                         suffix):
    detector = load_detector(model)
    mapping = {"cat": "square", "dog": "triangle", "bird": "circle"}
    source = open_export(sample_cvat)
    frames = list(source.frames())
    planned = annotate_export(detector, source, None, mapping=mapping, threshold=0.0,
                              dry_run=len(frames), frames="all")
    out = tmp_path / f"pre{suffix}"
    result = annotate_export(detector, source, out, mapping=mapping, threshold=0.0,
                             frames="all")
    assert result.out == out and result.total == planned.total == 3 * len(frames)
    folder = tmp_path / "readback"
    folder.mkdir()
    if suffix == ".zip":
        with zipfile.ZipFile(out) as z:
            assert z.namelist() == ["annotations.xml"]
            z.extractall(folder)
    else:
        (folder / "annotations.xml").write_bytes(out.read_bytes())
    back = list(open_export(folder).frames())
    assert [f.name for f in back] == [f.name for f in frames]
    for got, before, plan in zip(back, frames, planned.predictions):
        # CVAT's XML has no score: it travels as a "score" attribute of each new shape
        new = tuple(replace(s, score=None, attributes=(("score", f"{s.score:.4f}"),))
                    for s in plan.frame.shapes)
        assert got.shapes == before.shapes + new
        # and where the model found them on that very frame
        squares = [s.points for s in got.shapes[len(before.shapes):] if s.label == "square"]
        assert squares == [pytest.approx(found_on(source.read_image(before), "cat"),
                                         abs=0.02)]
    assert not list(tmp_path.glob(".*partial"))


def test_offline_masks_read_back_inside_their_boxes(mask_model, tmp_path):
    from cvatkit.cvat import write_cvat_xml
    from cvatkit.geometry import mask_bitmap

    frames = [sample_frame(2, i, index=i) for i in range(2)]
    labels = LabelMap.from_names(MODEL_LABELS, types={"cat": "mask", "dog": "polygon"})
    task = tmp_path / "task.zip"
    jpegs = {f.name: jpeg for f, jpeg in frames}
    write_cvat_xml(task, [replace(f, shapes=()) for f, _ in frames], labels,
                   task_name="masks", images=lambda f: jpegs[f.name])
    source = open_export(task)
    out = tmp_path / "pre.xml"
    result = annotate_export(load_detector(mask_model), source, out, clear_existing=True,
                             threshold=0.5)
    assert result.shapes == {"cat": 2, "dog": 2, "bird": 0}
    back = list(open_export(_folder_with(out, tmp_path / "back")).frames())
    for frame, (_f, jpeg) in zip(back, frames):
        kinds = {s.label: s.kind for s in frame.shapes}
        assert kinds == {"cat": "mask", "dog": "polygon"}
        cat = next(s for s in frame.shapes if s.label == "cat")
        x0, y0, x1, y1 = found_on(jpeg, "cat")
        ys, xs = np.nonzero(mask_bitmap(cat, frame.width, frame.height))
        # the test mask covers the middle 4/6 of its box
        assert x0 + (x1 - x0) / 6 - 2 <= xs.min() and xs.max() <= x1 - (x1 - x0) / 6 + 2
        assert y0 + (y1 - y0) / 6 - 2 <= ys.min() and ys.max() <= y1 - (y1 - y0) / 6 + 2


def test_offline_cli_and_its_bad_input(model, sample_cvat, tmp_path, capsys):
    out = tmp_path / "pre.xml"
    code = main(["annotate", str(model), "--source", str(sample_cvat), "--out", str(out),
                 "--map", "cat=square", "--map", "dog=triangle", "--drop-unmapped",
                 "--clear-existing"])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "bird" in text and "(dropped)" in text and "Upload annotations" in text
    back = list(open_export(_folder_with(out, tmp_path / "back")).frames())
    assert {s.label for f in back for s in f.shapes} == {"square", "triangle"}
    assert main(["annotate", str(model), "--source", str(sample_cvat)]) == 2
    assert "give --out FILE" in folded(capsys.readouterr().err)
    assert main(["annotate", str(model), "--source", str(sample_cvat), "--out",
                 str(tmp_path / "x.json"), "--drop-unmapped"]) == 2
    assert "written as .xml or .zip" in folded(capsys.readouterr().err)
    assert main(["annotate", str(model), "--source", str(sample_cvat), "--out",
                 str(tmp_path / "y.xml"), "--map", "cat"]) == 2
    assert "is not MODEL_LABEL=TASK_LABEL" in folded(capsys.readouterr().err)
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.xml").exists()


def _folder_with(xml: Path, folder: Path) -> Path:
    folder.mkdir()
    (folder / "annotations.xml").write_bytes(xml.read_bytes())
    return folder
