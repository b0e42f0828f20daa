"""The inference viewer, the publish and pre-annotate panel and the composed app, driven
without a browser: their states directly, their controls through trait values and
``Button.click()``. The model is a tiny SavedModel with known outputs (fakes/saved_models.py)
inside a completed run folder written by hand; no training starts here."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fakes.cvat_server import TOKEN
from helpers import run_record, write_run
from cvatkit.widgets import (AnnotatePanel, AnnotateState, App, InferenceState, InferenceViewer,
                             PublishPanel, PublishState)
from cvatkit.widgets.inference import run_frames
from fakes.saved_models import model_garden_like

from cvatkit import open_export, write_sample
from cvatkit.cvat import SAMPLE_LABELS as LABELS
from cvatkit.cvat import sample_frame
from cvatkit.label_files import write_label_files
from cvatkit.records import LabelMap
from cvatkit.runs import EvalEvent, Run
from cvatkit.store import list_models, open_store
from cvatkit.training import read_record, write_record

PNG = b"\x89PNG\r\n\x1a\n"
TEST_FRAMES = 6
# The test model finds on every frame: triangle 0.95, square 0.80, circle 0.30.
PER_FRAME = {0.5: 2, 0.2: 3, 0.9: 1}


pytestmark = pytest.mark.usefixtures("widget_callbacks_raise")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), frames=8,
                        test_frames=TEST_FRAMES)


def completed_run(path: Path, saved_model: Path, *, data_source: str = "",
                  data: Path | None = None) -> Run:
    """A completed run folder as the trainer leaves it, around ``saved_model``, trained
    on the prepared dataset ``data`` (default: a stand-in naming ``data_source``)."""
    run = Run(path)
    path.mkdir(parents=True)
    if data is None:  # a dataset folder as an older cvatkit described it: the run does not
        data = path.parent / f"{path.name}-dataset"  # name its source, the folder does
        data.mkdir()
        write_label_files(LABELS, data)
        (data / "dataset.json").write_text(json.dumps({"source": data_source,
                                                       "labels": list(LABELS.names)}))
    record = run_record(labels=LABELS.names, model="ssd-mobilenet-v2", num_steps=5)
    write_record(run, replace(record, data=replace(record.data, path=Path(data))))
    run.append(EvalEvent(step=5, time=0, ap=0.5, ap50=0.9, per_class={"square": 0.4}))
    run.set_status("completed", step=5, total_steps=5)
    export = path / "export"
    export.mkdir()
    shutil.copytree(saved_model, export / "saved_model")
    write_label_files(LABELS, export)
    ck = path / "checkpoints"
    ck.mkdir()
    (ck / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    (ck / "ckpt-5.index").write_bytes(b"i" * 10)
    (ck / "ckpt-5.data-00000-of-00001").write_bytes(b"d" * 5000)
    return run


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    return model_garden_like(tmp_path_factory.mktemp("model") / "saved_model")


@pytest.fixture(scope="module")
def run(tmp_path_factory, saved_model, sample) -> Run:
    return completed_run(tmp_path_factory.mktemp("runs") / "run", saved_model,
                         data_source=str(sample.task))


# -- inference -----------------------------------------------------------------------------


def _count_calls(detector) -> list[int]:
    calls: list[int] = []
    detect = detector.detect

    def counted(images, **kwargs):
        calls.append(len(images))
        return detect(images, **kwargs)

    detector.detect = counted
    return calls


def test_the_threshold_filters_the_predictions_without_running_the_model(run, sample):
    state = InferenceState(model=str(run.path), frames=str(sample.test))
    viewer = InferenceViewer(state, background=False)
    assert state.load() is not None and state.error == ""
    assert "3 labels (square, triangle, circle)" in state.status
    calls = _count_calls(state.detector)

    viewer.run_button.click()
    assert state.error == "" and not state.busy
    assert len(state.predictions) == TEST_FRAMES and sum(calls) == TEST_FRAMES
    assert f"{TEST_FRAMES} frames predicted" in state.status
    # Predicted once at the floor: the weak circle is kept, only filtered out for display.
    assert all(len(p.frame.shapes) == 3 for p in state.predictions)
    assert state.shapes_drawn == PER_FRAME[0.5] * TEST_FRAMES
    assert state.gallery.startswith(PNG) and bytes(viewer.image.value) == state.gallery
    ev = state.evaluation
    assert ev is not None and ev.frames == TEST_FRAMES and ev.threshold == 0.5
    assert {c.label for c in ev.per_class} == set(LABELS.names)
    assert "COCO AP" in state.evaluation_text and "<table>" in viewer.table.value
    assert "circle" in viewer.table.value and "at score ≥ 0.50" in viewer.table.value
    # the pictures of the evaluation: PR curves per label and the confusion matrix
    assert state.pr_picture.startswith(PNG) and state.confusion_picture.startswith(PNG)
    assert bytes(viewer.pr_image.value) == state.pr_picture
    confusion_at_half = state.confusion_picture

    drawn_at_half, false_at_half = bytes(viewer.image.value), ev.false
    n_calls = len(calls)
    viewer.threshold.value = 0.2
    assert state.shapes_drawn == PER_FRAME[0.2] * TEST_FRAMES
    assert state.gallery != drawn_at_half and bytes(viewer.image.value) == state.gallery
    assert state.evaluation.threshold == 0.2 and state.evaluation.false > false_at_half
    assert "at score ≥ 0.20" in viewer.table.value
    assert state.confusion_picture != confusion_at_half  # more boxes counted at 0.2
    viewer.threshold.value = 0.9
    assert state.shapes_drawn == PER_FRAME[0.9] * TEST_FRAMES
    assert state.evaluation.ap == ev.ap  # AP ranks every prediction: no threshold
    viewer.ground_truth.value = False
    assert state.gallery.startswith(PNG) and state.shapes_drawn == TEST_FRAMES
    assert len(calls) == n_calls  # none of that called the model
    viewer.threshold.value = 0.5
    viewer.ground_truth.value = True
    assert bytes(viewer.image.value) == drawn_at_half  # the same picture for the same filter


def test_mistakes_first_and_a_filter_by_kind(run, sample):
    from cvatkit.inference import KINDS, SUSPECT_KINDS

    state = InferenceState(model=str(run.path), frames=str(sample.test), count=2)
    viewer = InferenceViewer(state, background=False)
    viewer.run_button.click()
    r = state.review
    assert state.error == "" and r is not None and len(r.frames) == TEST_FRAMES
    task_order = [p.frame.index for p in state.shown_predictions()]
    assert task_order == list(range(TEST_FRAMES))
    viewer.order.value = "mistakes"
    assert state.order == "mistakes"
    assert [p.frame.index for p in state.shown_predictions()] == [f.frame for f in r.frames]
    items = state.gallery_items()
    worst = r.frames[:2]
    assert [title.split(":")[0] for *_, title in items] == [f.name for f in worst]
    for (_image, _shapes, _truth, title), f in zip(items, worst):
        assert all(f"{n} {k}" in title for k, n in f.kinds.items())
        assert f": {f.found} of {f.annotated} found" in title
    # frames past the first two were predicted without their pixels: read again
    again = [f.frame for f in worst if f.frame >= 2]
    assert sorted(state._images) == sorted(again)
    assert bytes(viewer.image.value) == state.gallery and state.gallery.startswith(PNG)

    counts = r.counts()
    kind = next(k for k in (*SUSPECT_KINDS, *KINDS) if counts[k])
    assert f"{kind} ({counts[kind]})" in [label for label, _ in viewer.kind.options]
    viewer.kind.value = kind
    assert state.kind == kind
    shown = [p.frame.index for p in state.shown_predictions()]
    assert shown and shown == [f.frame for f in r.frames if f.kinds[kind]]
    assert "annotation mistakes" in viewer.mistakes.value
    # a threshold that changes the mistakes keeps the filter and recounts
    viewer.threshold.value = 0.2
    assert state.review.threshold == 0.2 and state.kind == kind
    assert all(state.review.frames[[f.frame for f in state.review.frames].index(i)].kinds[kind]
               for i in (p.frame.index for p in state.shown_predictions()))
    viewer.kind.value = ""
    viewer.order.value = "task"
    assert [p.frame.index for p in state.shown_predictions()] == list(range(TEST_FRAMES))
    state.kind = "typo"
    assert "kind 'typo': choose one of missed" in state.error


def test_only_the_shown_frames_keep_their_pixels(run, sample):
    state = InferenceState(model=str(run.path), frames=str(sample.test), count=2, limit=4)
    assert state.run() == 4
    assert [p.image is not None for p in state.predictions] == [True, True, False, False]
    assert len(state.gallery_items()) == 2 and state.shapes_drawn == 2 * PER_FRAME[0.5]
    assert state.evaluation.frames == 4

    # Plain image files carry no annotations: a gallery, and no evaluation.
    images = Path(sample.test).parent / "images"
    images.mkdir(exist_ok=True)
    for i in range(3):
        frame, jpeg = sample_frame(7, i, index=i)
        (images / f"{i}.jpg").write_bytes(jpeg)
    state.frames = str(images)
    assert state.run() == 3 and state.error == ""
    assert state.evaluation is None and state.evaluation_text == ""
    assert "no annotations" in state.status and state.gallery.startswith(PNG)


def test_inference_problems_show_as_messages(run, tmp_path):
    viewer = InferenceViewer(InferenceState(), background=False)
    state = viewer.state
    viewer.run_button.click()  # must not raise (callbacks_raise would re-raise)
    assert state.error.startswith("give the model")
    assert "give the model" in viewer.error.value

    state.model = str(run.path)
    state.frames = str(tmp_path / "nowhere.zip")
    viewer.run_button.click()
    assert "nowhere.zip: no such file or folder" in state.error

    unfinished = write_run(tmp_path / "unfinished", model="ssd-mobilenet-v2").path
    state.model = str(unfinished)
    viewer.run_button.click()
    assert "has not exported a model yet" in state.error
    assert not state.busy and not viewer.run_button.disabled
    with pytest.raises(Exception, match="should not be greater than 1.0"):
        state.threshold = 1.5  # the slider cannot go there; the trait refuses it too


def test_a_run_names_its_test_frames(run, sample, tmp_path):
    # The sample task's run is looked at on the held-out test.zip beside it.
    assert run_frames(str(run.path)) == str(sample.test)
    other = write_run(tmp_path / "other")  # a run that names its dataset's source itself
    record = read_record(other)
    write_record(other, replace(record, data=replace(
        record.data, path=tmp_path / "gone", source="cvat://7 on http://cvat")))
    assert run_frames(str(other.path)) == "cvat://7"


def test_the_viewer_predicts_in_a_thread(run, sample):
    viewer = InferenceViewer(InferenceState(model=str(run.path), frames=str(sample.test)))
    viewer.run_button.click()
    viewer.wait(60)
    assert viewer.state.error == "" and len(viewer.state.predictions) == TEST_FRAMES
    assert bytes(viewer.image.value).startswith(PNG) and not viewer.run_button.disabled


# -- publish -------------------------------------------------------------------------------


def test_publish_a_run_to_a_local_store_with_progress(run, tmp_path):
    publish_state = PublishState()
    panel = PublishPanel(publish_state, background=False)
    seen: list[float] = []
    publish_state.observe(lambda c: seen.append(c.new), names="progress")
    panel.run_dir.value = str(run.path)
    panel.store.value = str(tmp_path / "store")
    panel.publish_button.click()
    assert publish_state.error == "give a namespace (a team or project name, e.g. 'lab')"
    assert "namespace" in panel.publish_error.value

    panel.namespace.value = "lab"
    panel.publish_button.click()
    assert publish_state.error == ""
    versions = list_models(open_store(str(tmp_path / "store")), "lab")
    assert [v.uri for v in versions] == [publish_state.published_uri]
    assert publish_state.published_uri.startswith(
        (tmp_path / "store" / "lab" / "models" / "ssd-mobilenet-v2").as_uri())
    assert publish_state.published_uri in panel.published.value
    assert "AP 0.500, AP@0.5 0.900" in publish_state.status
    total = publish_state.total_bytes
    assert total > 5000 and publish_state.sent_bytes == total
    assert panel.progress.value == 1.0
    assert len(seen) > 2 and seen == sorted(seen) and 0 < seen[0] < 1
    assert "of" in panel.progress_text.value and not panel.publish_button.disabled

    uri = publish_state.published_uri
    panel.publish_button.click()  # the same run is the same version
    assert publish_state.error == "" and publish_state.published_uri == uri


def test_publishing_a_run_that_has_not_completed_is_refused(run, tmp_path):
    stopped = tmp_path / "stopped"
    shutil.copytree(run.path, stopped)
    Run(stopped).set_status("stopped", step=2, total_steps=5)
    state = PublishState(run_dir=str(stopped), store=str(tmp_path / "store"),
                         namespace="lab")
    assert state.publish() is None
    assert "has not completed (it is stopped)" in state.error
    state.run_dir, state.namespace = str(run.path), "bad name!"
    assert state.publish() is None and "namespace 'bad name!'" in state.error
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.json"))


# -- pre-annotate ----------------------------------------------------------------------------


def test_annotate_an_export_offline_after_previewing_the_mapping(run, sample, tmp_path):
    out = tmp_path / "out" / "annotations.xml"
    state = AnnotateState(model=str(run.path), export_path=str(sample.test),
                          out_file=str(out))
    panel = AnnotatePanel(state, background=False)
    assert panel.annotate_button.disabled and panel.dry_run_button.disabled
    assert state.run() is None and state.error.startswith("preview the label mapping first")

    panel.preview_button.click()
    assert state.error == "" and state.previewed
    assert re.search(r"triangle -> triangle +\(same name\)", state.mapping_preview)
    assert "square" in panel.mapping_preview.value
    assert not panel.annotate_button.disabled and not panel.dry_run_button.disabled

    panel.dry_run_frames.value = 2
    panel.dry_run_button.click()  # by default only the frames nobody annotated
    truth = open_export(sample.test)
    try:
        annotated = sum(1 for f in truth.frames() if f.shapes)
    finally:
        truth.close()
    assert 0 < annotated < TEST_FRAMES
    assert state.error == "" and f"on {TEST_FRAMES - annotated} frames" in state.result
    assert f"{annotated} frames already annotated were left as they are" in state.result
    panel.frames.value = "all"
    assert state.frames == "all" and not state.previewed  # previewed again below
    panel.preview_button.click()
    panel.dry_run_button.click()
    assert state.error == "" and not out.exists()
    assert "would write 4 shapes on 2 frames" in state.result
    assert "frame 0" in state.result and "frame 1" in state.result
    assert "nothing was written" in state.status

    panel.annotate_button.click()
    assert state.error == "" and out.is_file()
    assert f"wrote {PER_FRAME[0.5] * TEST_FRAMES} shapes on {TEST_FRAMES} frames" in \
        state.result
    written = open_export(out.parent)  # a folder holding annotations.xml
    try:
        truth = open_export(sample.test)
        try:
            before = sum(len(f.shapes) for f in truth.frames())
        finally:
            truth.close()
        frames = list(written.frames())
    finally:
        written.close()
    assert sum(len(f.shapes) for f in frames) == before + PER_FRAME[0.5] * TEST_FRAMES

    # Any change of the inputs asks for a new preview before writing.
    panel.threshold.value = 0.2  # (not a mapping input: the preview still holds)
    assert state.previewed
    panel.mapping_text.value = "square=circle"
    assert not state.previewed and state.mapping_preview == ""
    assert panel.annotate_button.disabled


def test_unmapped_labels_are_refused_until_mapped_or_dropped(saved_model, sample, tmp_path):
    model = tmp_path / "blob-model"
    shutil.copytree(saved_model, model)
    write_label_files(LabelMap.from_names(["square", "blob", "circle"]), model)
    state = AnnotateState(model=str(model), export_path=str(sample.test),
                          out_file=str(tmp_path / "a.xml"))
    panel = AnnotatePanel(state, background=False)
    panel.preview_button.click()
    assert "has no label for the model's 'blob'" in state.error
    assert "--drop-unmapped" in state.error  # cvatkit's own message
    assert state.mapping_preview == "" and panel.annotate_button.disabled
    panel.annotate_button.click()  # disabled in the browser; refused here too
    assert state.error.startswith("preview the label mapping first")
    assert not (tmp_path / "a.xml").exists()

    panel.mapping_text.value = "blob"
    panel.preview_button.click()
    assert "'blob' is not MODEL_LABEL=TASK_LABEL" in state.error
    panel.mapping_text.value = "blob=triangle"
    panel.preview_button.click()
    assert state.error == ""
    assert re.search(r"blob +-> triangle +\(your mapping\)", state.mapping_preview)
    panel.mapping_text.value = ""
    panel.drop_unmapped.value = True
    panel.preview_button.click()
    assert state.error == "" and re.search(r"blob +-> \(dropped\)", state.mapping_preview)
    panel.dry_run_button.click()
    assert "predictions of unmapped labels were dropped" in state.result


@pytest.fixture
def cvat(fake_cvat, monkeypatch, tmp_path):
    """The fake CVAT server with a new task of the sample's labels (no shapes), and no
    CVAT settings in the environment."""
    for key in ("CVAT_HOST", "CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CVATKIT_CVAT_CACHE", str(tmp_path / "cvat-cache"))
    frames = [(f.name, jpeg) for f, jpeg in (sample_frame(3, i, index=i) for i in range(3))]
    fake_cvat.task = fake_cvat.add_task("next task", [{"name": n} for n in LABELS.names],
                                        frames, chunk_size=2)
    return fake_cvat


def test_annotate_a_task_on_the_data_steps_server(run, cvat, tmp_path):
    app = App(workdir=tmp_path / "work", background=False, autopoll=False, gpus_detected=0)
    data, annotate = app.state.data, app.state.annotate
    app.data.host.value = cvat.url
    app.data.token.value = TOKEN
    app.data.connect_button.click()
    assert data.error == "" and annotate.target == "server"
    assert cvat.task in {v for _label, v in app.annotate.task.options}
    app.annotate.task.value = cvat.task
    annotate.model = str(run.path)
    app.annotate.preview_button.click()
    assert annotate.error == ""
    assert f"label of task {cvat.task} on {cvat.url}" in annotate.mapping_preview
    app.annotate.dry_run_frames.value = 1
    app.annotate.dry_run_button.click()
    assert annotate.error == "" and "would write 2 shapes on 1 frames" in annotate.result
    assert cvat.shapes(cvat.task) == []
    app.annotate.annotate_button.click()
    assert annotate.error == "", annotate.error
    assert len([s for s in cvat.shapes(cvat.task) if s["source"] == "auto"]) == 2 * 3
    app.close()


# -- the app -------------------------------------------------------------------------------


def test_the_app_builds_with_prefilled_values(sample, tmp_path):
    app = App(workdir=tmp_path / "work", source=str(sample.task), model="frcnn-res50",
              hparams="num-steps=20\nbatch-size=2\n", store=str(tmp_path / "store"),
              namespace="lab",  # the older name of store_namespace
              background=False, autopoll=False, gpus_detected=0)
    assert app.tabs.titles == ("1. Data", "2. Model", "3. Train", "4. Inference",
                               "5. Publish")
    assert list(app.tabs.children[:4]) == [app.data, app.model, app.monitor, app.inference]
    assert list(app.tabs.children[4].children) == [app.publish, app.annotate]
    s = app.state
    assert s.data.mode == "export" and app.data.export_path.value == str(sample.task)
    assert app.model.model.value == "frcnn-res50" and s.model.message == ""
    assert s.model.values == {"num-steps": 20, "batch-size": 2}
    assert app.publish.store.value == str(tmp_path / "store")
    assert app.publish.namespace.value == "lab"
    assert s.monitor.runs_root == str(tmp_path / "work" / "runs")
    assert not app.monitor.start_button.disabled
    app.show("Inference")
    assert app.tabs.selected_index == 3
    app.close()

    other = App(workdir=tmp_path / "w2", source="cvat://12", model="no-such-model",
                background=False, autopoll=False, gpus_detected=0)
    assert other.state.data.mode == "server" and other.state.data.task_id == 12
    assert "unknown model 'no-such-model'" in other.state.model.message
    assert "unknown model" in other.model.message.value
    other.close()


def test_start_prepares_the_data_plans_and_hands_the_run_on(sample, saved_model, tmp_path,
                                                            monkeypatch):
    started = []

    def start_run(plan, run_dir, *, detach=True):
        """The trainer's process is not started: the run folder it would write is."""
        started.append(plan)
        completed_run(Path(run_dir), saved_model, data=plan.data.path)

    monkeypatch.setattr("cvatkit.widgets.monitor_state.start_run", start_run)
    work = tmp_path / "work"
    app = App(workdir=work, source="sample", hparams="num-steps=abc", background=False,
              autopoll=False, gpus_detected=0, weights="none")
    s = app.state
    assert s.data.use_sample(frames=12)  # a small sample; Start would write the default
    shown = []
    s.monitor.observe(lambda change: shown.append(change.new), names="activity")
    app.monitor.start_button.click()
    assert not started
    # what Start did before there was a run to show, then nothing once it was done
    assert shown[0].startswith("getting ready") and shown[-1] == ""
    assert any(t.startswith("preparing the dataset of ") for t in shown)
    assert not app.monitor.start_button.disabled
    assert "num-steps='abc' is not a whole number" in s.monitor.error
    assert "num-steps=&#x27;abc&#x27;" in app.monitor.error.value
    assert (work / "datasets" / "sample" / "dataset.json").is_file()

    app.model.text.value = "num-steps=20\nbatch-size=4\nimage-size=128\nval-split=0.25\n"
    app.monitor.start_button.click()
    assert s.monitor.error == "" and len(started) == 1
    plan = started[0]
    assert plan.data.path == (work / "datasets" / "sample").resolve()
    assert plan.weights == "none" and plan.init is None  # the app's weights choice
    assert plan.data.val_fraction == 0.25 and plan.data.val_frames == 3  # the run's split
    # evaluated on the sample's held-out frames, as the notebooks and `make demo` are
    assert plan.eval_data.path == (work / "datasets" / "sample-test").resolve()
    assert plan.eval_data.val_frames == len(list(open_export(
        Path(s.data.sample_path).with_name("test.zip")).frames()))
    assert plan.hparams.num_steps == 20 and s.model.data is not None
    run_dir = s.monitor.run_dir
    assert Path(run_dir).parent == work / "runs" and s.monitor.state == "completed"
    assert app.monitor.picker.value == run_dir  # the picker shows the run started
    # The run goes on to the next steps.
    assert s.inference.model == run_dir and s.publish.run_dir == run_dir
    assert s.annotate.model == run_dir and run_dir in s.publish.run_choices
    assert s.inference.frames == str(Path(s.data.sample_path).with_name("test.zip"))
    assert app.inference.frames.value == s.inference.frames
    app.inference.count.value = 3
    app.inference.run_button.click()
    assert s.inference.error == "" and s.inference.gallery.startswith(PNG)

    # Bad data: the Data step's message shows in the Train step.
    app.data.mode.value = "export"
    app.data.export_path.value = str(tmp_path / "missing.zip")
    app.monitor.start_button.click()
    assert len(started) == 1 and "the data is not ready" in s.monitor.error
    assert "missing.zip" in s.monitor.error
    app.close()


def test_store_versions_are_offered_as_starting_points_with_their_class_check(
        run, sample, tmp_path):
    from cvatkit.dataset import Dataset
    from cvatkit.store import publish

    store = tmp_path / "store"
    version = publish(run.path, open_store(str(store)), "lab")
    ssd = read_record(run).model.key  # the published run's model
    app = App(workdir=tmp_path / "work", store=str(store), store_namespace="lab", model=ssd,
              background=False, autopoll=False)
    model = app.state.model
    assert (model.store, model.namespace) == (str(store), "lab")  # shared with Publish
    app.state.publish.namespace = "team"
    assert model.namespace == "team"
    model.namespace = "lab"
    assert model.list_store_versions(model.store, model.namespace) == [version.uri]
    assert version.uri in model.checkpoint_choices and not model.message
    # what the model can start from: its published weights, none, versions of its kind
    assert model.start_choices == ["imagenet", "none", version.uri]
    assert app.model.checkpoint.options == ("imagenet", "none", version.uri)
    model.model = "frcnn-res50"  # another architecture: the version cannot start it
    assert model.start_choices == ["imagenet", "none"]
    model.model = "retinanet-spinenet-mobile-coco"
    assert model.start_choices == ["coco", "none"]
    model.init_checkpoint = "imagenet"
    assert "has no published imagenet weights" in model.message
    model.init_checkpoint = ""
    model.model = ssd
    # a dataset with other labels: the version's class count is refused before training
    model.data = Dataset(path=tmp_path, labels=LabelMap.from_names("ab"), train_frames=10,
                         val_frames=0, include_masks=False, val_fraction=0.1)
    model.init_checkpoint = version.uri
    assert "trained on 3 classes" in model.message and "the task has 2" in model.message
    model.init_checkpoint = ""
    assert not model.message
    # before any data is prepared: checked against the task's labels, from its report
    model.data = None
    assert app.state.data.use_export(sample.task)
    assert model.task_labels == list(LABELS.names)
    model.init_checkpoint = version.uri
    assert not model.message and not model.notes
    model.task_labels = ["circle", "square", "triangle"]  # the same classes, in other order
    assert not model.message and "its classes are taken in that order" in model.notes
    assert "square -> circle" in model.notes
    model.task_labels = ["a", "b"]
    assert "trained on 3 classes" in model.message
    model.init_checkpoint = str(run.path)  # an earlier run: the same check
    assert "trained on 3 classes" in model.message
    model.init_checkpoint = ""
    assert model.list_store_versions("", "lab") is None
    assert "give the model store" in model.message
