"""The work folder: one layout for the app, the notebooks and the command line."""

from __future__ import annotations

import re
import time

import cvatkit
from cvatkit.runs import new_run_path
from cvatkit.work_folder import WorkFolder


def test_the_folder_given_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CVATKIT_WORKDIR", str(tmp_path / "from-env"))
    assert WorkFolder.at(tmp_path / "given").path == tmp_path / "given"
    assert WorkFolder.at().path == tmp_path / "from-env"
    assert WorkFolder.at("").path == tmp_path / "from-env"
    monkeypatch.delenv("CVATKIT_WORKDIR")
    assert str(WorkFolder.at().path) == "cvatkit-work"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert WorkFolder.at("~/w").path == tmp_path / "w"


def test_the_layout(tmp_path):
    work = cvatkit.WorkFolder.at(tmp_path)
    assert (work.sample, work.uploads, work.datasets, work.runs) == (
        tmp_path / "sample", tmp_path / "uploads", tmp_path / "datasets", tmp_path / "runs")
    assert work.dataset("task-1") == tmp_path / "datasets" / "task-1"
    assert work.run("nb") == tmp_path / "runs" / "nb"
    assert not tmp_path.joinpath("runs").exists()  # naming a folder creates nothing


def test_new_run_folders_are_named_by_time_then_model_and_never_taken(tmp_path):
    work = WorkFolder.at(tmp_path)
    assert re.fullmatch(r"\d{8}-\d{6}-ssd-mobilenet-v2-small",
                        work.new_run("ssd-mobilenet-v2-small").name)


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda _format: "20261207-120000")
    work = WorkFolder.at(tmp_path)
    taken = []
    for _ in range(3):
        path = work.new_run("frcnn-res50")
        path.mkdir(parents=True)
        taken.append(path.name)
    assert taken == ["20261207-120000-frcnn-res50", "20261207-120000-frcnn-res50-2",
                     "20261207-120000-frcnn-res50-3"]
    assert new_run_path(work.runs, "frcnn-res50").name == "20261207-120000-frcnn-res50-4"


def test_the_notebooks_calls_use_the_work_folder_of_the_environment(tmp_path, monkeypatch):
    from cvatkit import pipeline

    monkeypatch.setenv("CVATKIT_WORKDIR", str(tmp_path / "work"))
    monkeypatch.chdir(tmp_path)
    data = pipeline.prepare_data("sample", say=lambda _line: None, sample_frames=6,
                                 sample_test_frames=2)
    work = WorkFolder.at()
    assert (data.train, data.eval) == (work.dataset("sample"), work.dataset("sample-test"))
    assert (work.sample / "task.zip").is_file() and data.train.is_dir()
    assert not (tmp_path / "cvatkit-work").exists()


def test_each_source_has_its_dataset_folder_and_the_sample_its_own_name(tmp_path):
    from cvatkit.dataset import dataset_folder_name, training_dataset_name

    assert training_dataset_name("sample") == "sample"
    task = training_dataset_name("cvat://3", host="https://cvat.example.com")
    assert task.startswith("task-3-")
    assert task != training_dataset_name("cvat://3", host="https://other.example.com")
    export = tmp_path / "sample.zip"  # an export that happens to be called sample
    assert training_dataset_name(str(export)) == dataset_folder_name(str(export)) != "sample"
