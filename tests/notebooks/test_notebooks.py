"""The notebooks run in a real kernel under papermill, with parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from helpers import MODEL, PLANTED, ROOT, SECRET, write_run

from cvatkit.errors import CvatkitError
from cvatkit.training import read_record

TWO_STEPS = "num-steps=2\nbatch-size=4\nimage-size=128\nlog-interval=1\neval-interval=0\n"
NOTEBOOKS = ROOT / "notebooks"


def run_notebook(name: str, executed: Path, cwd: Path, **parameters) -> nbformat.NotebookNode:
    papermill.execute_notebook(str(NOTEBOOKS / name), str(executed), parameters=parameters,
                               cwd=str(cwd), kernel_name="python3", progress_bar=False)
    return nbformat.read(executed, as_version=4)


def outputs(nb: nbformat.NotebookNode) -> tuple[str, list[dict]]:
    """All text the cells printed, and every output."""
    every = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in every)
    text += "".join(str(o.get("data", {}).get("text/plain", "")) for o in every)
    return text, every


def test_every_notebook_has_a_parameters_cell_of_literals_and_no_definitions():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{path.name}: outputs committed"
        for cell in code:
            assert not any(line.lstrip().startswith(("def ", "class "))
                           for line in cell.source.splitlines()), path.name
        if path.name != "dashboard.ipynb":
            tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
            assert len(tagged) == 1, path.name
            import ast

            for stmt in ast.parse(tagged[0].source).body:
                assert isinstance(stmt, ast.Assign) and isinstance(
                    stmt.value, ast.Constant), f"{path.name}: {ast.unparse(stmt)}"


@pytest.mark.slow  # starts a kernel
def test_train_notebook_runs_headless_on_a_cvat_task_and_publishes(sample_cvat, fake_cvat,
                                                                     tmp_path, monkeypatch):
    """A batch run on a task of the fake CVAT server, credentials from the environment:
    neither the CVAT password nor the AWS secret may land in the executed notebook, the
    work folder or the model store."""
    from fakes.cvat_server import USER

    from cvatkit import open_export

    export = open_export(sample_cvat)
    frames, shapes = [], []
    for frame in export.frames():
        frames.append((frame.name, export.read_image(frame)))
        shapes += [{"type": s.kind, "label": s.label, "frame": len(frames) - 1,
                    "points": list(s.points), "attributes": []} for s in frame.shapes]
    password = PLANTED["CVAT_PASSWORD"]
    server = fake_cvat
    monkeypatch.setattr(server, "password", password)
    task = server.add_task("sample", [{"name": n} for n in export.labels.names], frames,
                           shapes=shapes)
    monkeypatch.setenv("CVAT_HOST", server.url)
    monkeypatch.delenv("CVAT_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("CVAT_USER", USER)
    monkeypatch.setenv("CVAT_PASSWORD", password)
    monkeypatch.setenv("CVATKIT_CVAT_CACHE", str(tmp_path / "cvat-cache"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store = tmp_path / "store"
    nb = run_notebook("train.ipynb", tmp_path / "train.ipynb", tmp_path,
                      interactive=False, task_id=task, model=MODEL, hparams=TWO_STEPS,
                      weights="none", workdir="work", run_name="nb", store=str(store),
                      store_namespace="team")
    text, _ = outputs(nb)
    assert f"preparing cvat://{task} on {server.url}" in text
    assert "step 2/2: loss" in text
    # the recipe fitted to the sample's frames, and what the given values replaced
    assert "note: image-size=128 as given, in place of the fitted image-size=160" in text
    assert "note: num-steps=2 as given, in place of the fitted num-steps=" in text
    assert "completed" in text and "published " in text
    assert (tmp_path / "work" / "runs" / "nb" / "export" / "saved_model").is_dir()
    record = read_record(tmp_path / "work" / "runs" / "nb")
    assert record.weights == "none" and record.init is None  # the notebook's choice
    assert list(store.glob("team/models/*/*/manifest.json"))
    written = (tmp_path / "train.ipynb").read_text()
    assert password not in written and SECRET not in written
    scanned = 0
    for path in [*(tmp_path / "work").rglob("*"), *store.rglob("*")]:
        if path.is_file() and path.suffix not in (".tfrecord", ".jpg", ".png"):
            content = path.read_bytes()
            assert password.encode() not in content and SECRET.encode() not in content, path
            scanned += 1
    assert scanned > 20


@pytest.mark.slow  # starts a kernel
def test_a_failing_train_notebook_fails_with_the_reason_and_no_traceback(sample_cvat,
                                                                         tmp_path):
    """The papermill command, as a batch job runs it: it exits non-zero, and both its
    output and the executed notebook give the reason without a traceback."""
    papermill_bin = Path(sys.executable).parent / "papermill"
    executed = tmp_path / "train.ipynb"
    done = subprocess.run(
        [str(papermill_bin), str(NOTEBOOKS / "train.ipynb"), str(executed), "-k", "python3",
         "--no-progress-bar", "-p", "interactive", "False", "-p", "source", str(sample_cvat),
         "-p", "hparams", "num-steps=abc", "-p", "workdir", "work"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "HyperparameterError" in done.stderr and "'abc'" in done.stderr
    errors = [o for c in nbformat.read(executed, as_version=4).cells
              if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "HyperparameterError"
    shown = "\n".join(errors[0]["traceback"])
    assert "num-steps" in shown and "'abc'" in shown
    assert "Traceback" not in shown and 'File "' not in shown and "pipeline.py" not in shown
    assert not (tmp_path / "work" / "runs").exists()


def test_a_batch_run_that_did_not_complete_fails(tmp_path):
    """A run that ended stopped (a scheduler's SIGTERM, `cvatkit stop`) has no model:
    the batch run must not go on as if it had."""
    from cvatkit.pipeline import follow
    from cvatkit.runs import StatusEvent

    run = write_run(tmp_path / "run", num_steps=100)
    run.append(StatusEvent(step=40, time=0.0, state="stopped", message="stop requested"))
    (run.path / "status.json").write_text(json.dumps(
        {"state": "stopped", "step": 40, "total_steps": 100, "pid": 0, "error": ""}))
    lines = []
    with pytest.raises(CvatkitError, match=r"training stopped at step 40 of 100 before it "
                                           r"completed .*--resume"):
        follow(run, say=lines.append)
    assert lines == ["stopped: stop requested"]


@pytest.mark.slow  # starts a kernel
def test_the_train_notebook_opens_the_app_with_its_parameters(tmp_path):
    (tmp_path / "demo.hparams").write_text("num-steps=30\n")
    nb = run_notebook("train.ipynb", tmp_path / "train.ipynb", tmp_path, interactive=True,
                      hparams_file="demo.hparams", store=str(tmp_path / "store"),
                      namespace="team", workdir="work")
    _, every = outputs(nb)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in every)
    assert not any(o.get("output_type") == "error" for o in every)
    assert not (tmp_path / "work" / "runs").exists()  # nothing starts by itself


def test_inference_notebook_draws_the_gallery_and_evaluates(trained, sample_cvat, tmp_path):
    nb = run_notebook("inference.ipynb", tmp_path / "inference.ipynb", tmp_path,
                      interactive=False, model=str(trained.path),
                      frames=str(sample_cvat.parent / "test.zip"), threshold=0.3, count=4,
                      out=str(tmp_path / "pictures"))
    text, every = outputs(nb)
    assert "frames: 6" in text and "COCO AP" in text and "mistakes at score >= 0.3" in text
    # the gallery, the precision-recall curves and the confusion matrix
    assert sum("image/png" in o.get("data", {}) for o in every) == 3
    assert (tmp_path / "pictures" / "gallery.png").exists()
    assert len(list((tmp_path / "pictures" / "pictures").glob("*.png"))) == 4
    for name in ("pr_curves.png", "confusion.png"):
        assert (tmp_path / "pictures" / name).exists()


@pytest.mark.slow  # starts a kernel
def test_dashboard_notebook_builds_the_app(tmp_path):
    nb = run_notebook("dashboard.ipynb", tmp_path / "dashboard.ipynb", tmp_path)
    _, every = outputs(nb)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in every)
    assert not any(o.get("output_type") == "error" for o in every)


@pytest.mark.parametrize("call, message", [
    (lambda p: p.task_uri("sample", "12a"), "task_id '12a' is not a task number"),
    (lambda p: p.task_uri("sample", True), "task_id True is not a task number"),
    (lambda p: p.task_uri("sample", 0), "task_id 0 is not a task number"),
    (lambda p: p.show_predictions(None, threshold="0.5"),
     "score threshold '0.5' is not a number; give one from 0 to 1"),
    (lambda p: p.predict_frames("model", "frames", count="3"),
     "count '3' is not a number of frames"),
])
def test_papermill_parameters_of_the_wrong_type_are_named(call, message):
    """`papermill -r` passes text: a parameter of the wrong type is named as such, not
    taken for a value out of range or left to a traceback."""
    import cvatkit.pipeline as pipeline

    with pytest.raises(CvatkitError, match=message.replace("(", r"\(")):
        call(pipeline)
    assert pipeline.task_uri("sample", " 12") == "cvat://12"  # text of a number is one
