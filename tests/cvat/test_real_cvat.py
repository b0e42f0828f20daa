"""What cvatkit relies on in CVAT, checked against a real CVAT server (``real_cvat``):
tasks and projects listed and read (``cvat://`` sources), job filters, pre-annotation
(on the server, and offline through CVAT's own importer), scores, frame tags, and no
credential in any output or file."""

from __future__ import annotations

import json
import re

import pytest
from fakes.saved_models import model_garden_like
from helpers import MODEL, folded
from real_cvat import add_shapes, jpeg_files, make_project, make_task, set_job

from cvatkit import open_source, prepare
from cvatkit.annotate import annotate_export, annotate_task
from cvatkit.cli import main
from cvatkit.cvat import list_tasks, sample_frame
from cvatkit.cvat.projects import list_projects
from cvatkit.errors import AnnotationError, UsageError
from cvatkit.inference import load_detector
from cvatkit.label_files import write_label_files
from cvatkit.records import LabelMap

LABELS = [("square", "any"), ("triangle", "any"), ("circle", "any")]
MODEL_LABELS = ("square", "triangle", "circle")
TINY = ("batch-size=2;image-size=128;log-interval=2;checkpoint-interval=4;"
        "eval-interval=4;warmup-steps=2")


@pytest.fixture(scope="module")
def cvat(real_cvat):
    client = real_cvat.client()
    yield real_cvat, client
    client.close()


@pytest.fixture(scope="module")
def frames():
    """Six sample frames with the shapes drawn on them."""
    return [sample_frame(7, i, index=i) for i in range(6)]


@pytest.fixture
def env(cvat, monkeypatch, tmp_path):
    server, _ = cvat
    for key in ("CVAT_ACCESS_TOKEN",):
        monkeypatch.delenv(key, raising=False)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CVATKIT_CVAT_CACHE", str(tmp_path / "cvat-cache"))
    return server


def people_shapes(frames, only=None):
    """The sample's own shapes of ``frames`` as a person would have drawn them."""
    return [{"label": s.label, "frame": i, "points": list(s.bbox())}
            for i, (frame, _) in enumerate(frames) if only is None or i in only
            for s in frame.shapes]


def new_task(client, frames, tmp_path, name="photos", **kwargs) -> int:
    files = jpeg_files(tmp_path / f"{name}-files", [(f.name, data) for f, data in frames])
    return make_task(client, name, files, labels=kwargs.pop("labels", LABELS), **kwargs)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = model_garden_like(tmp_path_factory.mktemp("model") / "mg")
    write_label_files(LabelMap.from_names(MODEL_LABELS), path)
    return path


def test_a_task_reads_as_its_annotations_and_is_listed(cvat, env, frames, tmp_path):
    _, client = cvat
    task = new_task(client, frames, tmp_path, name="listed task")
    add_shapes(client, task, people_shapes(frames))
    assert any(t.id == task and t.name == "listed task" and t.frames == 6
               for t in list_tasks(client))
    source = open_source(f"cvat://{task}", client=client, jobs="all")
    read = list(source.frames())
    assert [f.name for f in read] == [f.name for f, _ in frames]
    for got, (want, _) in zip(read, frames):
        got_shapes = sorted((s.label, s.bbox()) for s in got.shapes)
        want_shapes = sorted((s.label, s.bbox()) for s in want.shapes)
        assert [label for label, _ in got_shapes] == [label for label, _ in want_shapes]
        for (_, box), (_, expected) in zip(got_shapes, want_shapes):
            assert box == pytest.approx(expected, abs=0.01)
    assert source.read_image(read[0])[:2] == b"\xff\xd8"  # the JPEG as uploaded


def test_job_states_choose_the_frames_trained_on(cvat, env, frames, tmp_path, capsys):
    _, client = cvat
    task = new_task(client, frames, tmp_path, name="two jobs", segment_size=3)
    add_shapes(client, task, people_shapes(frames))
    jobs = sorted(client.tasks.retrieve(task).get_jobs(), key=lambda j: j.start_frame)
    assert len(jobs) == 2
    # nothing finished: every frame is taken, and the report says why
    report = prepare(open_source(f"cvat://{task}", client=client), tmp_path / "all").report
    assert report.frames == 6 and report.frames_by_job == {"new": 6}
    assert "none of its 2 jobs is finished" in folded(report.format())
    with pytest.raises(AnnotationError, match="6 frames in a job new were left out.*--jobs all"):
        prepare(open_source(f"cvat://{task}", client=client, jobs="completed"),
                tmp_path / "none")
    set_job(client, jobs[0].id, state="completed")
    report = prepare(open_source(f"cvat://{task}", client=client), tmp_path / "auto").report
    assert (report.frames, report.left_out) == (3, {"in a job new": 3})
    assert report.frames_by_job == {"completed": 3, "new": 3}
    set_job(client, jobs[1].id, stage="validation")
    code = main(["check", f"cvat://{task}", "--jobs", "validation"])
    out = folded(capsys.readouterr().out)
    assert code == 0 and "frames: 3" in out and "3 in a job completed" in out
    assert main(["check", f"cvat://{task}", "--jobs", "done"]) == 2
    assert "'done' is not a job stage or state" in folded(capsys.readouterr().err)


@pytest.fixture(scope="module")
def project(cvat, frames, tmp_path_factory):
    """A project of two tasks ("batch 1", "batch 2") whose frames share names; batch 2's
    last frame nobody annotated yet."""
    _, client = cvat
    folder = tmp_path_factory.mktemp("project")
    number = make_project(client, "two batches", LABELS)
    first = new_task(client, frames[:3], folder, name="batch 1", labels=None,
                     project_id=number)
    second = new_task(client, frames[3:], folder / "b", name="batch 2", labels=None,
                      project_id=number)
    add_shapes(client, first, people_shapes(frames[:3]))
    add_shapes(client, second, [dict(s, frame=s["frame"] - 3)
                                for s in people_shapes(frames, only={3, 4})])
    return number, first, second


def test_a_project_of_two_tasks_is_read_as_one(cvat, env, project, tmp_path, capsys):
    _, client = cvat
    project, first, second = project
    assert any(p.id == project and p.labels == MODEL_LABELS for p in list_projects(client))
    source = open_source(f"cvat://project/{project}", client=client, jobs="all")
    names = [f.name for f in source.frames()]
    assert len(names) == len(set(names)) == 6
    ds = prepare(source, tmp_path / "ds", val_fraction=0.0)
    assert ds.report.frames == 6
    lines = folded(ds.report.format())
    assert f"task {first} 'batch 1': 3 frames" in lines
    assert f"task {second} 'batch 2': 3 frames" in lines
    assert main(["tasks"]) == 0
    listed = capsys.readouterr().out
    assert f"cvat://project/{project}" in listed and f"cvat://{first}" in listed
    assert re.search(rf"cvat://project/{project} +2 tasks ", listed)


@pytest.mark.slow
def test_a_project_trains_end_to_end(cvat, env, project, tmp_path):
    from cvatkit import pipeline

    number, _, _ = project
    run = pipeline.train(source=f"cvat://project/{number}", model=MODEL,
                         hparams=f"num-steps=4;val-split=0.2;{TINY}".replace(";", "\n"),
                         weights="none",
                         workdir=tmp_path / "work", run_name="project", jobs="all")
    assert run.status().state == "completed"
    data = json.loads((tmp_path / "work" / "datasets").glob("project-*/dataset.json")
                      .__next__().read_text())
    assert data["source"].startswith(f"cvat://project/{number} on ")
    assert data["train_frames"] + data["val_frames"] == 6


def test_annotate_a_project_writes_only_where_nobody_did(cvat, env, project, model, capsys):
    _, client = cvat
    number, first, second = project
    before = {t: len(client.tasks.retrieve(t).get_annotations().shapes)
              for t in (first, second)}
    assert main(["annotate", str(model), "--project", str(number)]) == 0
    out = folded(capsys.readouterr().out)
    assert f"project {number}: wrote" in out
    assert "3 frames already annotated were left as they are" in out
    assert "2 frames already annotated were left as they are" in out
    assert len(client.tasks.retrieve(first).get_annotations().shapes) == before[first]
    added = [s for s in client.tasks.retrieve(second).get_annotations().shapes
             if s.frame == 2]
    assert added and len(client.tasks.retrieve(second).get_annotations().shapes) == (
        before[second] + len(added))


def test_annotate_writes_only_on_frames_nobody_annotated(cvat, env, frames, model, tmp_path):
    _, client = cvat
    task = new_task(client, frames[:4], tmp_path, name="partly done")
    add_shapes(client, task, people_shapes(frames, only={0, 2}))
    before = client.tasks.retrieve(task).get_annotations().shapes
    detector = load_detector(model)
    result = annotate_task(client, task, detector)
    assert result.skipped_frames == {"already annotated": 2}
    shapes = client.tasks.retrieve(task).get_annotations().shapes
    auto = [s for s in shapes if str(s.source.value if hasattr(s.source, "value") else s.source)
            != "manual"]
    assert {s.frame for s in auto} == {1, 3}
    assert len(shapes) == len(before) + len(auto)
    assert all(0 < s.score < 1 for s in auto)  # CVAT keeps each shape's score
    assert "2 frames already annotated were left as they are" in folded(result.format())
    again = annotate_task(client, task, detector)
    assert again.total == 0
    assert len(client.tasks.retrieve(task).get_annotations().shapes) == len(shapes)
    everywhere = annotate_task(client, task, detector, frames="all")
    assert everywhere.skipped_frames == {} and everywhere.total == len(
        [s for s in auto if s.frame in (0, 2)]) or everywhere.total > 0


def test_offline_annotations_go_back_through_cvats_importer(cvat, env, frames, model,
                                                             tmp_path):
    _, client = cvat
    labels = [(n, "any") for n in MODEL_LABELS]
    task = new_task(client, frames[:3], tmp_path, name="offline", labels=labels,
                    score_attribute=True)
    add_shapes(client, task, people_shapes(frames, only={1}))
    export = tmp_path / "export.zip"
    client.tasks.retrieve(task).export_dataset("CVAT for images 1.1", str(export),
                                              include_images=True)
    out = tmp_path / "pre.xml"
    result = annotate_export(load_detector(model), open_source(export), out)
    assert result.skipped_frames == {"already annotated": 1}
    before = client.tasks.retrieve(task).get_annotations().shapes
    client.tasks.retrieve(task).import_annotations("CVAT 1.1", str(out))
    shapes = client.tasks.retrieve(task).get_annotations().shapes
    new = [s for s in shapes if s.frame != 1]
    assert {s.frame for s in new} == {0, 2}
    # the people's shapes of frame 1 are as they were (CVAT's import replaces them with
    # the file's, which holds them unchanged)
    assert sorted(tuple(s.points) for s in shapes if s.frame == 1) == sorted(
        tuple(s.points) for s in before)
    # each new shape's score came back as its "score" attribute
    scores = [float(a.value) for s in new for a in s.attributes]
    assert len(scores) == len(new) and all(0.5 <= v <= 1 for v in scores)


def test_no_credential_reaches_output_or_files(cvat, env, frames, model, tmp_path, capsys,
                                              monkeypatch):
    """The password travels in the server's address (as some users give it) and in the
    environment; whatever the kit prints or writes holds neither it nor the user."""
    server, client = cvat
    task = new_task(client, frames[:3], tmp_path, name="secrets")
    add_shapes(client, task, people_shapes(frames, only={0, 1}))
    host = server.url.replace("http://", f"http://{server.user}:{server.password}@")
    monkeypatch.setenv("CVAT_HOST", host)
    monkeypatch.delenv("CVAT_USER")
    out = tmp_path / "out"
    commands = [
        ["tasks"],
        ["check", f"cvat://{task}"],
        ["prepare", f"cvat://{task}", str(out / "ds"), "--val-split", "0"],
        ["evaluate", str(model), f"cvat://{task}", "--json", str(out / "eval.json"),
         "--plots", str(out / "plots"), "--mistakes", str(out / "mistakes.csv")],
        ["rank", str(model), f"cvat://{task}", "--out", str(out / "rank.csv")],
        ["annotate", str(model), "--task", str(task), "--dry-run", "2"],
        ["annotate", str(model), "--task", str(task)],
        ["check", "cvat://999999"],  # an error message too
    ]
    printed = ""
    for command in commands:
        main(command)
        said = capsys.readouterr()
        printed += said.out + said.err
    assert "cannot" in printed or "does not exist" in printed  # the error was printed
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "dataset.json" for p in written)
    for secret in (server.password, f"{server.user}:"):
        assert secret not in printed
        for path in written:
            assert secret.encode() not in path.read_bytes(), path
    assert json.loads((out / "ds" / "dataset.json").read_text())["source"].startswith(
        f"cvat://{task} on {server.url}")
    with pytest.raises(UsageError):
        open_source("cvat://project/x")


def test_review_and_rank_tags_land_on_the_frames_once(cvat, env, frames, model, tmp_path,
                                                     capsys):
    _, client = cvat
    labels = [*LABELS, ("needs-review", "tag"), ("next", "tag")]
    annotated = new_task(client, frames[:3], tmp_path, name="tagged", labels=labels)
    # frame 0 as the people drew it; frames 1 and 2 hold nothing where the model is sure
    add_shapes(client, annotated, people_shapes(frames, only={0}))
    args = ["evaluate", str(model), f"cvat://{annotated}", "--review-tag", "needs-review",
            "--confident", "0.8", "--jobs", "all"]
    assert main(args) == 0
    out = folded(capsys.readouterr().out)
    tagged = {t.frame for t in client.tasks.retrieve(annotated).get_annotations().tags}
    assert {1, 2} <= tagged
    assert f"task {annotated}: tagged {len(tagged)} frames 'needs-review'" in out
    assert main(args) == 0
    assert f"tagged 0 frames 'needs-review'; {len(tagged)} had the tag already" in folded(
        capsys.readouterr().out)
    assert len(client.tasks.retrieve(annotated).get_annotations().tags) == len(tagged)

    fresh = new_task(client, frames[3:], tmp_path / "next", name="to rank", labels=labels)
    rank = ["rank", str(model), f"cvat://{fresh}", "--top", "2", "--tag", "next"]
    assert main(rank) == 0
    tags = client.tasks.retrieve(fresh).get_annotations().tags
    assert len(tags) == 2 and len({t.frame for t in tags}) == 2
    assert main(rank) == 0
    assert "tagged 0 frames 'next'; 2 had the tag already" in folded(capsys.readouterr().out)
    assert main([*rank[:-1], "no-such-tag"]) == 2
    assert "it has no tag label 'no-such-tag'" in folded(capsys.readouterr().err)


def test_rank_tags_the_frames_of_a_project_in_their_own_tasks(cvat, env, frames, model,
                                                              tmp_path, capsys):
    _, client = cvat
    project = make_project(client, "to tag", [*LABELS, ("next", "tag")])
    tasks = [new_task(client, frames[i:i + 2], tmp_path / str(i), name=f"part {i}",
                      labels=None, project_id=project) for i in (0, 2)]
    assert main(["rank", str(model), f"cvat://project/{project}", "--top", "4", "--tag",
                 "next"]) == 0
    out = folded(capsys.readouterr().out)
    for task in tasks:
        assert {t.frame for t in client.tasks.retrieve(task).get_annotations().tags} == {0, 1}
        assert f"task {task}: tagged 2 frames 'next'" in out


def test_the_apps_data_step_offers_projects_and_tasks(cvat, env, project):
    from cvatkit.widgets.data import DataPanel, DataState

    server, _ = cvat
    number, first, _second = project
    panel = DataPanel(DataState(host=server.url, user=server.user), background=False)
    state = panel.state
    panel.password.value = server.password
    panel.connect_button.click()
    assert state.error == "" and state.connected_to
    rows = dict((value, label) for label, value in panel.tasks.options)
    assert rows[f"cvat://project/{number}"].startswith(f"project #{number}  two batches")
    assert "2 tasks" in rows[f"cvat://project/{number}"]
    assert f"cvat://{first}" in rows
    panel.tasks.value = f"cvat://project/{number}"
    assert (state.project_id, state.task_id) == (number, None)
    assert state.source_uri == f"cvat://project/{number}"
    panel.jobs.value = "all"
    panel.check_button.click()
    assert state.error == "" and "frames: 6" in folded(state.report)
    assert f"task {first} 'batch 1': 3 frames" in folded(state.report)
    panel.jobs.value = "done"
    panel.check_button.click()
    assert "'done' is not a job stage or state" in state.error
    panel.tasks.value = f"cvat://{first}"
    assert (state.project_id, state.task_id) == (None, first)
    panel.close()
