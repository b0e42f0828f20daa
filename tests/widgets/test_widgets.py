"""The notebook widgets, driven without a browser: their state objects directly, their
controls through trait values and ``Button.click()``. No training starts here: the run
monitor reads run folders written by hand with cvatkit.runs' own records."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fakes.cvat_server import PASSWORD, TOKEN, USER
from helpers import write_run
from pacing import until
from cvatkit.widgets import (DataPanel, DataState, ModelPanel, ModelState, MonitorState,
                             RateLimiter, RunMonitor)
from cvatkit.widgets.data import PICTURES, SHOWN_FRAMES
from cvatkit.widgets.redraw import MAX_GAP, RenderMeter

from cvatkit import open_export, write_sample
from cvatkit.cvat import SAMPLE_LABELS as LABELS
from cvatkit.cvat import sample_frame
from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent

SSD = "ssd-mobilenet-v2"  # its catalog defaults are what these tests check

SAMPLE_FRAMES = 12


pytestmark = pytest.mark.usefixtures("widget_callbacks_raise")


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), frames=SAMPLE_FRAMES,
                        test_frames=0).task


# -- data ----------------------------------------------------------------------------------


def test_sample_task_gives_its_report_and_a_dataset(tmp_path):
    state = DataState()
    assert state.use_sample(tmp_path / "sample", frames=SAMPLE_FRAMES)
    assert state.error == ""
    assert state.source_uri == str(tmp_path / "sample" / "task.zip")
    assert "Task 'cvatkit sample'" in state.report
    assert f"frames: {SAMPLE_FRAMES} (" in state.report
    for label in LABELS.names:
        assert label in state.report

    ds = state.prepare_dataset(tmp_path / "data")
    assert ds is not None and (ds.path / "dataset.json").is_file()
    assert state.dataset_path == str(ds.path)
    # Preparing into the same folder again is refused with cvatkit's message, not raised.
    assert state.prepare_dataset(tmp_path / "data") is None
    assert "data" in state.error and "overwrite" in state.error.lower()


def test_export_panel_shows_the_report_in_a_pre(sample_zip):
    panel = DataPanel()
    panel.mode.value = "export"
    assert panel._export_box.layout.display == "" and panel._server_box.layout.display == "none"
    panel.export_path.value = str(sample_zip)
    panel.export_button.click()
    assert panel.state.error == "" and panel.error.value == ""
    assert panel.report.value.startswith("<pre") and "cvatkit sample" in panel.report.value
    assert panel.state.source_uri == str(sample_zip)


def test_a_checked_task_is_pictured_with_its_own_counts(sample_zip):
    panel = DataPanel(background=False)
    s = panel.state
    assert all(getattr(panel, f"{n}_picture").layout.display == "none" for n in PICTURES)
    panel.mode.value = "export"
    panel.export_path.value = str(sample_zip)
    panel.export_button.click()
    assert s.error == "" and s.checks == 1 and not s.drawing
    for name in PICTURES:
        image = getattr(panel, f"{name}_picture")
        png = bytes(image.value)
        assert png.startswith(b"\x89PNG") and png == getattr(s, f"{name}_picture")
        assert image.layout.display == ""
    source = open_export(sample_zip)
    try:
        frames = list(source.frames())
    finally:
        source.close()
    held = Counter(shape.label for f in frames for shape in f.shapes)
    (bars,) = s.figures["labels"].axes[0].containers
    assert [bar.get_width() for bar in bars] == [held[n] for n in LABELS.names]
    (sizes,) = s.figures["sizes"].axes[0].containers
    assert sum(bar.get_height() for bar in sizes) == sum(held.values())
    tiles = [ax for ax in s.figures["frames"].axes if ax.get_visible()]
    assert SAMPLE_FRAMES > SHOWN_FRAMES and len(tiles) == SHOWN_FRAMES
    assert [ax.get_title().split(": ")[0] for ax in tiles] == [
        f.name for f in frames[:SHOWN_FRAMES]]
    assert [len(ax.patches) for ax in tiles] == [
        2 * len(f.shapes) for f in frames[:SHOWN_FRAMES]]  # white under coloured dashes

    panel.mode.value = "sample"  # another source: its pictures are not these
    assert s.figures == {} and s.frames_picture == b""
    assert all(getattr(panel, f"{n}_picture").layout.display == "none" for n in PICTURES)


def test_pictures_are_drawn_in_the_background_and_missing_images_are_named(sample_zip,
                                                                          tmp_path):
    bare = tmp_path / "no-images.zip"  # an export made without 'Save images'
    with zipfile.ZipFile(sample_zip) as z, zipfile.ZipFile(bare, "w") as out:
        out.writestr("annotations.xml", z.read("annotations.xml"))
    panel = DataPanel(DataState(mode="export", export_path=str(sample_zip)))
    panel.export_button.click()
    panel.wait(60)
    assert panel.state.error == "" and set(panel.state.figures) == set(PICTURES)

    panel.export_path.value = str(bare)
    panel.export_button.click()
    panel.wait(60)
    s = panel.state
    assert "Save images" in s.error and "frame_000000.jpg" in s.error
    assert "cvatkit sample" in panel.report.value  # the check itself needs no images
    assert set(s.figures) == {"labels", "sizes"} and s.frames_picture == b""
    assert panel.frames_picture.layout.display == "none"


WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)


def test_an_export_uploaded_from_the_browser_is_kept_and_used(sample_zip, tmp_path):
    panel = DataPanel(DataState(upload_dir=str(tmp_path / "uploads")))
    panel.mode.value = "export"
    data = sample_zip.read_bytes()
    # what the browser sends: a FileUpload value of one file
    panel.upload.value = ({"name": "my task.zip", "type": "application/zip",
                           "size": len(data), "content": memoryview(data),
                           "last_modified": WHEN},)
    kept = tmp_path / "uploads" / "my task.zip"
    assert panel.state.error == "" and kept.read_bytes() == data
    assert panel.state.source_uri == str(kept) and "cvatkit sample" in panel.report.value
    assert panel.upload.value == ()  # the bytes do not stay in the page
    panel.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 2,
                           "content": memoryview(b"hi"), "last_modified": WHEN},)
    assert "'notes.txt' is not a .zip" in panel.state.error
    assert not (tmp_path / "uploads" / "notes.txt").exists()
    panel.upload.value = ({"name": "broken.zip", "type": "application/zip", "size": 9,
                           "content": memoryview(b"not a zip"), "last_modified": WHEN},)
    assert "broken.zip" in panel.state.error and "Traceback" not in panel.state.error


def test_a_folder_that_is_not_an_export_shows_the_cvatkit_message(tmp_path):
    (tmp_path / "notes.txt").write_text("not annotations")
    panel = DataPanel()
    panel.mode.value = "export"
    panel.export_path.value = str(tmp_path)
    panel.export_button.click()  # must not raise (callbacks_raise would re-raise)
    assert "is not a CVAT export" in panel.state.error
    assert "notes.txt" in panel.state.error
    assert "is not a CVAT export" in panel.error.value and panel.report.value == ""

    panel.export_path.value = ""
    panel.export_button.click()
    assert panel.state.error == "give the path of a CVAT export (a .zip or a folder)"
    panel.mode.value = "server"
    panel.check_button.click()
    assert panel.state.error == "connect to a CVAT server first"


@pytest.fixture(scope="module")
def cvat(fake_cvat):
    """The fake CVAT server with the module's two tasks: the sample's shapes, and one of
    another label."""
    frames, shapes = [], []
    for i in range(4):
        frame, jpeg = sample_frame(0, i, index=i)
        frames.append((frame.name, jpeg))
        shapes += [{"type": s.kind, "label": s.label, "frame": i, "points": list(s.points),
                    "attributes": []} for s in frame.shapes]
    fake_cvat.shapes_task = fake_cvat.add_task(
        "shapes for widgets", [{"name": n} for n in LABELS.names], frames, shapes=shapes,
        chunk_size=2)
    fake_cvat.other_task = fake_cvat.add_task("street cameras", [{"name": "car"}], frames[:1])
    return fake_cvat


@pytest.fixture
def no_cvat_env(monkeypatch, tmp_path):
    for key in ("CVAT_HOST", "CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CVATKIT_CVAT_CACHE", str(tmp_path / "cvat-cache"))


def _serialised(state: DataState) -> str:
    """Everything the state holds, as text: traits, attributes, repr and to_dict."""
    traits = {name: getattr(state, name) for name in state.trait_names()}
    return (repr(state) + json.dumps(state.to_dict(), default=str) + str(traits)
            + str(vars(state)))


def _panel_holds(panel: DataPanel, secret: str) -> bool:
    """Whether any control of the panel (what the page and saved widget state show)
    holds ``secret``."""
    return any(secret in str(w.get_state()) for w in _descendants(panel))


def _descendants(widget) -> list:
    out = [widget]
    for child in getattr(widget, "children", ()):
        out += _descendants(child)
    return out


def test_server_tasks_are_listed_searched_picked_and_checked(cvat, no_cvat_env):
    panel = DataPanel()
    state = panel.state
    panel.mode.value = "server"
    panel.host.value = cvat.url
    panel.token.value = TOKEN
    assert _panel_holds(panel, TOKEN)  # (the check can see a secret where there is one)
    assert TOKEN not in _serialised(state)
    panel.connect_button.click()
    assert state.error == ""
    assert state.connected_to and "2 tasks" in panel.connection.value
    # The token served its purpose: it is in neither the state nor any of the controls.
    assert TOKEN not in _serialised(state) and not _panel_holds(panel, TOKEN)

    rows = dict((v, label) for label, v in panel.tasks.options)
    shapes, other = f"cvat://{cvat.shapes_task}", f"cvat://{cvat.other_task}"
    assert set(rows) == {shapes, other}
    assert "shapes for widgets" in rows[shapes]
    assert "4 frames" in rows[shapes] and "square, triangle, circle" in rows[shapes]
    panel.search.value = "TRIANGLE"
    assert [v for _label, v in panel.tasks.options] == [shapes]

    panel.tasks.value = shapes
    assert state.task_id == cvat.shapes_task
    assert state.source_uri == f"cvat://{cvat.shapes_task}"
    panel.check_button.click()
    assert state.error == ""
    assert "Task 'shapes for widgets'" in state.report and "frames: 4" in state.report
    panel.wait(60)  # the pictures, drawn in a thread from the server's frames
    assert state.error == "" and state.frames_picture
    tiles = [ax for ax in state.figures["frames"].axes if ax.get_visible()]
    assert [ax.images[0].get_array().shape[:2] for ax in tiles] == [(128, 160)] * 4
    panel.close()


def test_server_login_errors_name_the_problem_but_not_the_secret(cvat, no_cvat_env):
    panel = DataPanel(DataState(host=cvat.url, mode="server"))
    state = panel.state
    panel.token.value = "wrong-" + TOKEN
    panel.connect_button.click()
    assert "refused the access token" in state.error
    # a failed login forgets the secret too
    assert TOKEN not in state.error and TOKEN not in _serialised(state)
    assert not _panel_holds(panel, TOKEN)
    panel.user.value, panel.password.value = USER, "wrong-" + PASSWORD
    panel.connect_button.click()
    assert state.error and not state.connected_to
    assert PASSWORD not in _serialised(state) and not _panel_holds(panel, PASSWORD)
    panel.close()

    state = DataState(host=cvat.url, user=USER)
    assert state.connect(password=PASSWORD)
    assert PASSWORD not in _serialised(state)
    assert not state.select_task(999_999)
    assert "999999 is not among the tasks" in state.error
    state.close()

    state = DataState(host=cvat.url, user=USER)  # no password
    assert not state.connect()
    assert "no CVAT credentials" in state.error


# -- model ---------------------------------------------------------------------------------


def test_text_edits_fill_the_form_and_form_edits_rewrite_the_text():
    state = ModelState(gpus_detected=0, model=SSD)
    panel = ModelPanel(state)
    assert state.defaults["num-steps"] == "10000"
    assert panel.fields["num-steps"].placeholder == "10000"

    panel.text.value = "num-steps=300\nlr=0.01  # faster\nwarmup-steps=10\n"
    assert state.message == ""
    assert state.form == {"num-steps": "300", "batch-size": "", "initial-learning-rate": "0.01",
                          "image-size": ""}
    assert panel.fields["initial-learning-rate"].value == "0.01"

    panel.fields["initial-learning-rate"].value = "0.02"
    panel.fields["batch-size"].value = "8"
    panel.fields["num-steps"].value = ""  # back to the model's default
    assert state.text == "lr=0.02  # faster\nwarmup-steps=10\nbatch-size=8\n"
    assert panel.text.value == state.text
    assert state.values == {"initial-learning-rate": 0.02, "warmup-steps": 10, "batch-size": 8}

    panel.model.value = "frcnn-res50"
    assert "Faster R-CNN ResNet-50" in panel.advice.value
    assert state.defaults["initial-learning-rate"] == "0.0003"


def test_bad_lines_and_values_are_reported_as_you_type():
    state = ModelState(gpus_detected=0, model=SSD)
    panel = ModelPanel(state)
    panel.text.value = "batch-size=8\nnum-steps=abc\n"
    assert state.message == "hyperparameters line 2: num-steps='abc' is not a whole number"
    assert "line 2" in panel.message.value and state.form["batch-size"] == "8"

    panel.text.value = "num-steps=10\nunknown-key=1\n"
    assert state.message.startswith("hyperparameters line 2: unknown hyperparameter "
                                    "'unknown-key'")
    panel.text.value = "lerning-rate=0.1"
    assert "did you mean 'initial-learning-rate'" in state.message

    panel.text.value = "num-steps=10"
    assert state.message == ""
    panel.fields["image-size"].value = "abc"  # the text keeps its last good value
    assert state.message == "the image-size field: image-size='abc' is not a whole number"
    assert state.text == "num-steps=10" and panel.fields["image-size"].value == "abc"
    panel.fields["image-size"].value = "100"  # a whole number, but not a valid size
    assert "image-size=100 must be a multiple of 32" in state.message
    panel.fields["image-size"].value = "128"
    assert state.message == "" and state.text == "num-steps=10\nimage-size=128\n"


def test_gpu_choice_and_num_clones_stay_in_step():
    state = ModelState(gpus_detected=2, model=SSD)
    panel = ModelPanel(state)
    assert state.gpus == 1 and panel.gpus.max == 2
    panel.gpus.value = 2
    assert state.text == "num-clones=2\n" and state.defaults["batch-size"] == "48"
    state.text = "num-clones=1\nnum-steps=5\n"
    assert state.gpus == 1 and panel.gpus.value == 1
    state.text = "num-clones=4\n"
    assert "num-clones=4 asks for 4 GPUs but this machine has 2" in state.message
    state.text = ""
    state.model = "frcnn-nas"  # SpineNet-49 needs no more than one GPU
    assert state.message == ""


def test_plan_checks_against_the_prepared_dataset(sample_zip, tmp_path):
    data = DataState()
    assert data.use_export(sample_zip)
    ds = data.prepare_dataset(tmp_path / "data")
    state = ModelState(gpus_detected=0, model=SSD)
    assert state.set_data(str(ds.path))
    # the recipe fitted to the sample's frames (160x128) and its 40 frames from scratch,
    # shown in the form's defaults and said in the notes: 160 px to the nearest multiple of
    # the model's coarsest stride, 64
    assert state.defaults["image-size"] == "192" and state.defaults["num-steps"] == "300"
    assert "image-size=192 (the model's is 320): the frames' median longer side is 160 px" \
        in state.notes
    assert "num-steps=300: 60 passes over" in state.notes
    state.init_checkpoint = "imagenet"  # from trained weights: the model's steps
    assert state.defaults["num-steps"] == "10000"
    assert "recommended num-steps for" in state.notes
    state.init_checkpoint = ""
    state.text = "num-steps=20\nbatch-size=4\nimage-size=128\nval-split=0.5\n"
    assert "the dataset was split with 0.1" in state.message
    assert state.plan(str(ds.path)) is None and "val-split=0.5" in state.message
    state.text = "num-steps=20\nbatch-size=4\nimage-size=128\n"
    plan = state.plan(str(ds.path))
    assert state.message == "" and plan is not None
    assert (plan.spec.key, plan.hparams.num_steps, plan.hparams.image_size) == (
        "ssd-mobilenet-v2", 20, 128)


def test_starting_checkpoint_is_checked(tmp_path):
    state = ModelState(gpus_detected=0, model=SSD)
    state.init_checkpoint = str(tmp_path / "nowhere")
    assert "is not a cvatkit run or one of its checkpoints" in state.message
    state.init_checkpoint = "s3://bucket/team/models/ssd-mobilenet-v2/20240101-abc"
    assert state.message == ""
    run = write_run(tmp_path / "run", model="frcnn-res50", num_steps=10)
    (run.path / "checkpoints").mkdir()
    (run.path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-10"\n')
    state.init_checkpoint = str(run.path)  # another architecture cannot start the model
    assert "it cannot start 'ssd-mobilenet-v2'" in state.message
    write_run(tmp_path / "run", model=SSD, num_steps=10)
    state.init_checkpoint = ""
    state.init_checkpoint = str(run.path)
    assert state.message == ""
    assert state.list_runs(str(tmp_path)) == [str(run.path)]
    assert state.checkpoint_choices == [str(run.path)]


# -- monitor -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _step(step: int, *, speed: float = 2.0, lr: float = 0.01) -> StepEvent:
    return StepEvent(step=step, time=0.0, losses={"cls_loss": 1.0 / step, "box_loss": 0.5 / step},
                     total_loss=1.5 / step, learning_rate=lr * step, examples_per_sec=8 * speed,
                     steps_per_sec=speed)


def _write_status(run: Run, state: str, step: int, *, total: int = 100, pid=None,
                  error: str = "") -> None:
    (run.path / "status.json").write_text(json.dumps(
        {"state": state, "step": step, "pid": pid, "error": error, "total_steps": total}))


def _make_run(path: Path, *, steps=(10, 20, 30, 40), evals=(20,), state="running") -> Run:
    run = write_run(path, model=SSD, num_steps=100)
    run.append(StatusEvent(step=0, time=0.0, state="running", message="training"))
    for s in steps:
        run.append(_step(s))
        if s in evals:
            run.append(EvalEvent(step=s, time=0.0, ap=0.25, ap50=0.5, per_class={"square": 0.3}))
    _write_status(run, state, steps[-1] if steps else 0)
    return run


def _monitor(tmp_path: Path, clock: FakeClock | None = None) -> RunMonitor:
    # Fake wall time: the CPU budget (real CPU time against it) is tested on its own.
    return RunMonitor(MonitorState(runs_root=str(tmp_path)), clock=clock or FakeClock(),
                      cpu_budget=None, autopoll=False, background=False)


def test_monitor_plots_each_series_and_shows_the_eta(tmp_path):
    run = _make_run(tmp_path / "run-a")
    clock = FakeClock()
    monitor = _monitor(tmp_path, clock)
    assert monitor.picker.options == (("run-a (running)", str(run.path)),)
    monitor.picker.value = str(run.path)
    monitor.attach_button.click()
    s = monitor.state
    assert s.error == "" and s.state == "running"
    lines = {line.get_label(): line for line in monitor.loss_ax.get_lines()}
    assert set(lines) == {"total_loss", "cls_loss", "box_loss"}
    assert list(lines["cls_loss"].get_xdata()) == [10, 20, 30, 40]
    assert list(lines["total_loss"].get_ydata()) == pytest.approx([0.15, 0.075, 0.05, 0.0375])
    assert len(monitor.lr_ax.get_lines()[0].get_xdata()) == 4
    ap, ap50 = monitor.ap_ax.get_lines()
    assert list(ap.get_xdata()) == [20] and list(ap50.get_ydata()) == [0.5]
    assert monitor.loss_ax.get_xlim() == pytest.approx((0, 102))  # the run's 100 steps
    # (100 - 40) steps at 2 steps/s
    assert s.eta_seconds == pytest.approx(30.0)
    assert "step 40 / 100 (40%)" in monitor.status.value and "ETA 30 s" in monitor.status.value
    assert "AP 0.250, AP@0.5 0.500" in s.summary()
    # a loss far above what was shown: the axes take it in
    low, high = monitor.loss_ax.get_ylim()
    assert high < 1.0
    run.append(StepEvent(step=50, time=0.0, losses={"cls_loss": 4.0, "box_loss": 3.0},
                         total_loss=7.0, learning_rate=0.5, examples_per_sec=16,
                         steps_per_sec=2.0))
    monitor.refresh(force=True)
    assert monitor.loss_ax.get_ylim()[1] >= 7.0 and monitor.lr_ax.get_ylim()[1] >= 0.5
    assert not monitor.stop_button.disabled and monitor.resume_button.disabled

    # New events: the same lines grow (no re-plotting).
    for step in (50, 60):
        run.append(_step(step, speed=4.0))
    _write_status(run, "running", 60)
    clock.now += 1
    assert monitor.refresh()
    assert {line.get_label() for line in monitor.loss_ax.get_lines()} == set(lines)
    assert list(lines["box_loss"].get_xdata()) == [10, 20, 30, 40, 50, 60]
    assert s.eta_seconds == pytest.approx(10.0) and "ETA 10 s" in s.summary()

    # A resumed run logs again from its checkpoint at 40: those points replace the old.
    run.append(_step(50, speed=4.0))
    clock.now += 1
    monitor.refresh()
    assert list(lines["cls_loss"].get_xdata()) == [10, 20, 30, 40, 50]

    run.append(StatusEvent(step=100, time=0.0, state="completed", message="done"))
    _write_status(run, "completed", 100)
    clock.now += 1
    monitor.refresh()
    assert s.finished and s.eta_seconds is None and "ETA" not in monitor.status.value
    assert monitor.stop_button.disabled and monitor.resume_button.disabled
    # the picker names the attached run, and says how it ended
    assert monitor.picker.value == str(run.path)
    assert monitor.picker.options[0][0] == "run-a (completed)"
    monitor.close()


def test_redraws_are_limited_to_two_per_second(tmp_path):
    run = _make_run(tmp_path / "run", steps=(1,), evals=())
    clock = FakeClock()
    monitor = _monitor(tmp_path, clock)
    assert monitor.state.attach(run.path)
    draws = []
    monitor.loss_fig.canvas.draw_idle = lambda: draws.append(clock.now)

    for tick in range(20):  # 10 polls a second for 2 seconds, each with a new event
        run.append(_step(2 + tick))
        monitor.refresh()
        clock.now += 0.1
    assert len(draws) == 4
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(draws, draws[1:]))
    # What was not drawn is still pending, and drawn at the next allowed moment.
    assert len(monitor.state.progress.total_loss) == 21
    assert len(monitor._total_line.get_xdata()) < 21
    clock.now += 0.5
    assert monitor.refresh() and len(monitor._total_line.get_xdata()) == 21
    assert not monitor.refresh()  # nothing new: nothing to draw

    limiter = RateLimiter(2, clock=clock, cpu_budget=None)
    start = clock.now
    allowed = []
    for k in range(30):
        clock.now = start + k * 0.05
        allowed.append(limiter.allow())
    assert sum(allowed) == 3  # at 0, 0.5 and 1.0 s within 1.45 s


def test_background_poller_follows_the_run_until_it_ends(tmp_path):
    """A thread polls (no asyncio loop runs under pytest) until the run has ended and all
    of it is drawn, redrawing no more often than the rate limit allows. The limit's clock
    is the test's: the test waits on what the monitor has read, never on real time."""
    run = _make_run(tmp_path / "run", steps=(10,), evals=())
    clock = FakeClock()
    start = clock.now
    monitor = RunMonitor(MonitorState(runs_root=str(tmp_path)), poll_seconds=0.01,
                         clock=clock, cpu_budget=None, background=False)
    monitor.picker.value = str(run.path)
    monitor.attach_button.click()
    assert monitor.polling

    def last_read() -> int | None:
        with monitor.state.lock:
            steps = monitor.state.progress.total_loss.steps
            return steps[-1] if steps else None

    for step in range(20, 110, 10):
        run.append(_step(step))
        until(f"the poller to read step {step}", lambda s=step: last_read() == s)
        clock.now += 0.1  # ten polls a second, each with a new event
    _write_status(run, "completed", 100)
    until("the poller to read the end", lambda: monitor.state.state == "completed")
    clock.now += 0.5  # the next moment the limit allows: the rest is drawn, polling ends
    until("the poller to end", lambda: not monitor.polling)
    assert monitor.state.state == "completed"
    assert list(monitor._total_line.get_xdata()) == list(range(10, 110, 10))
    assert 2 <= monitor.redraws <= 2 + 2 * (clock.now - start)  # 2 a second at most
    monitor.close()


def test_a_run_whose_trainer_vanished_is_shown_failed(tmp_path):
    run = _make_run(tmp_path / "run")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write_status(run, "running", 40, pid=gone.pid)
    monitor = _monitor(tmp_path)
    monitor.state.attach(run.path)
    assert monitor.state.state == "failed"
    assert monitor.state.run_error.startswith("the trainer is gone (last words: none)")
    assert "the trainer is gone" in monitor.error.value
    assert "(trainer gone)" in dict((v, k) for k, v in monitor.picker.options)[str(run.path)]
    assert not monitor.resume_button.disabled


def test_attaching_a_folder_that_is_no_run_shows_the_message(tmp_path):
    monitor = _monitor(tmp_path)
    (tmp_path / "junk").mkdir()
    monitor.picker.options = [("junk", str(tmp_path / "junk"))]
    monitor.picker.value = str(tmp_path / "junk")
    monitor.attach_button.click()
    assert "is not a cvatkit run (no run.json)" in monitor.state.error
    assert "is not a cvatkit run" in monitor.error.value
    monitor.resume_button.click()
    assert monitor.state.error.startswith("no run is attached")


_FAKE_TRAINER = """
import signal, sys, time
from cvatkit.runs import Run
run = Run(sys.argv[1])
def stop(*_):
    run.set_status("stopped", step=40, total_steps=100)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
run.set_status("running", step=40, total_steps=100)
time.sleep(60)
"""


def test_stop_ends_the_trainer_process_and_resume_refuses_a_completed_run(tmp_path):
    run = _make_run(tmp_path / "run")
    (run.path / "status.json").unlink()
    trainer = subprocess.Popen([sys.executable, "-c", _FAKE_TRAINER, str(run.path)])
    try:
        until("the trainer to start", lambda: run.status().pid == trainer.pid)
        monitor = _monitor(tmp_path)
        monitor.state.attach(run.path)
        monitor.refresh(force=True)
        assert monitor.state.state == "running" and not monitor.stop_button.disabled
        monitor.stop_button.click()
        assert monitor.state.error == "" and monitor.state.state == "stopped"
        assert trainer.wait(timeout=120) == 0
        assert "stopped" in monitor.status.value and not monitor.resume_button.disabled
    finally:
        if trainer.poll() is None:
            trainer.send_signal(signal.SIGKILL)
            trainer.wait()

    _write_status(run, "completed", 100)
    monitor.refresh(force=True)
    monitor.state.resume()
    assert "has completed" in monitor.state.error


def test_redraws_keep_within_their_cpu_budget():
    clock, renders = FakeClock(), RenderMeter()
    limiter = RateLimiter(2, cpu_budget=0.02, clock=clock, cost_clock=renders)
    assert limiter.allow()
    renders.add(0.1)  # the first redraw cost 0.1 s of CPU: the next may come 5 s later
    clock.now += 0.5
    assert limiter.allow()
    assert limiter.gap == pytest.approx(5.0)
    allowed_at = clock.now
    clock.now = allowed_at + 4.9
    assert not limiter.allow()
    clock.now = allowed_at + 5.01
    renders.add(0.004)  # a cheap one: back to the 2 Hz cap
    assert limiter.allow() and limiter.gap == pytest.approx(0.5)
    renders.add(3.0)  # a very costly one: the plots still move every MAX_GAP seconds
    clock.now += 0.5
    assert limiter.allow() and limiter.gap == pytest.approx(MAX_GAP)
    clock.now += MAX_GAP
    assert limiter.allow()
    limiter.reset()  # a newly attached run is drawn at once
    assert limiter.allow() and limiter.gap == pytest.approx(0.5)


def test_only_the_plots_renders_count_against_the_budget(tmp_path):
    """Whatever else the kernel does between two redraws (predicting, publishing) is not
    a cost of the plots; the renders themselves are measured on the canvases."""
    run = _make_run(tmp_path / "run")
    clock = FakeClock()
    monitor = RunMonitor(MonitorState(runs_root=str(tmp_path)), clock=clock,
                         autopoll=False, background=False)
    monitor.picker.value = str(run.path)
    monitor.attach_button.click()  # attaches and draws
    assert monitor.redraws >= 1
    before = monitor.meter.seconds
    monitor.loss_fig.canvas.draw()  # what ipympl runs when the browser asks for a frame
    assert monitor.meter.renders >= 1 and monitor.meter.seconds > before
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:  # CPU spent elsewhere in this process
        pass
    run.append(_step(50))
    clock.now += 0.5
    assert monitor.refresh()
    run.append(_step(60))
    clock.now += 0.5
    assert monitor.refresh(), f"a redraw was held back {monitor.limiter.gap:.1f} s"
    monitor.close()


def test_only_figures_with_new_points_are_redrawn(tmp_path):
    run = _make_run(tmp_path / "run-a")
    monitor = _monitor(tmp_path)
    drawn = []
    for fig in (monitor.loss_fig, monitor.lr_fig, monitor.ap_fig):
        fig.canvas.draw_idle = lambda fig=fig: drawn.append(fig)
    monitor.picker.value = str(run.path)
    monitor.attach_button.click()
    monitor.refresh(force=True)
    assert set(drawn) == {monitor.loss_fig, monitor.lr_fig, monitor.ap_fig}
    drawn.clear()
    run.append(_step(50))
    monitor.refresh(force=True)
    assert set(drawn) == {monitor.loss_fig, monitor.lr_fig}  # no new evaluation
