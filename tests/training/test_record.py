"""The run's record (``run.json``): written and read back whole, a run folder written by
an earlier cvatkit (commit 0d988e3, format 1) read as it is, a record of a newer format
refused with what to do, a damaged one refused naming the file and the field."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import DATA, folded, run_record, write_run

from cvatkit.cli import main
from cvatkit.errors import RunError
from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent
from cvatkit.training import (FORMAT, FitReport, InitCheckpoint, PhaseCosts, RunRecord,
                              Strategy, describe_costs, read_record, update_record, write_record)

OLD_RUN = DATA / "runs" / "0d988e3"
"""A run folder as the code of commit 0d988e3 left it (its small files): 4 steps of the
tests' model on a 12-frame sample, completed, its best checkpoint exported."""


def _full_record() -> RunRecord:
    """A record with every part set (evaluation data, weights loaded, costs)."""
    record = run_record(labels=("cat", "dog"), num_steps=30)
    return replace(
        record, hparams_text="num-steps=30", notes=("a note",),
        eval_data=replace(record.data, path=Path("/nowhere/test"), source="test.zip"),
        weights="coco", init=InitCheckpoint(path="/cache/ckpt-1", kind="coco",
                                            num_classes=91, labels=("person",)),
        init_loaded=FitReport(restored=10, total=12, fresh=("head/scores/bias",)),
        strategy=Strategy(num_clones=1, planned_workers=1, kind="MirroredStrategy",
                          workers=1, replicas=1, global_batch=8, per_replica_batch=8),
        versions={"cvatkit-train": "0.1.0"},
        costs=PhaseCosts(cpu_s={"steps": 1.5}, wall_s={"steps": 2.0}, steps=30))


def test_a_record_reads_back_as_written(tmp_path):
    for record in (run_record(), _full_record()):
        write_record(tmp_path, record)
        assert read_record(tmp_path) == record
        written = json.loads((tmp_path / "run.json").read_text())
        assert written["format"] == FORMAT
        assert written["hparams"]["num-steps"] == record.hparams.num_steps
    assert update_record(tmp_path, weights="none") == replace(_full_record(), weights="none")
    assert read_record(tmp_path).weights == "none"


def test_the_run_folder_of_commit_0d988e3_reads(tmp_path, capsys):
    old = tmp_path / "run"
    shutil.copytree(OLD_RUN, old)
    assert json.loads((old / "run.json").read_text())["format"] == 1
    record = read_record(old)
    assert record.model.key == "ssd-mobilenet-v2-small" and record.model.family == "retinanet"
    assert (record.hparams.num_steps, record.hparams.batch_size,
            record.hparams.image_size) == (4, 2, 128)
    assert record.labels == ("square", "triangle", "circle")
    assert record.data.path == Path("/tmp/cvatkit-0d988e3/data") and record.data.train_frames == 11
    assert record.data.source == "/tmp/cvatkit-0d988e3/sample/task.zip"
    assert record.eval_data is None and record.init is None and record.weights == "none"
    assert record.strategy.planned_workers == 1 and record.strategy.replicas == 1
    assert record.costs is not None and record.costs.steps == 4
    assert describe_costs(record.costs).startswith("CPU-seconds: start-up 6, tracing 5,")

    run = Run(old)
    st = run.status()
    assert (st.state, st.step, st.total_steps) == ("completed", 4, 4)
    events = run.events()
    assert [e.step for e in events if isinstance(e, StepEvent)] == [1, 2, 3, 4]
    assert [e.step for e in events if isinstance(e, EvalEvent)] == [2, 4]
    assert isinstance(events[-1], StatusEvent) and events[-1].state == "completed"
    assert run.best_checkpoint().step == 2 and run.exported_evaluation().step == 2

    assert main(["status", str(old)]) == 0
    said = folded(capsys.readouterr().out)
    assert said.startswith(f"{old}: completed · step 4 / 4 (100%) · AP 0.000")
    assert "exported the best checkpoint (step 2, AP 0.000)" in said

    # written again (a resumed run's costs, say), it is of this format and the same record
    write_record(old, record)
    assert json.loads((old / "run.json").read_text())["format"] == FORMAT
    assert read_record(old) == record


def test_a_record_reads_when_its_data_is_gone(tmp_path):
    obj = json.loads((OLD_RUN / "run.json").read_text())
    gone = tmp_path / "gone"
    record = RunRecord.from_json(_with(obj, "data.path", str(gone)))
    assert record.data.path == gone and not gone.exists()


def test_a_format_1_record_kept_the_load_report_in_init():
    obj = json.loads((OLD_RUN / "run.json").read_text())
    obj["init"] = {"path": "/cache/ckpt-1", "kind": "coco", "modules": "all", "labels": [],
                   "source": "the COCO detector", "num_classes": 91,
                   "restored": 10, "total": 12, "fresh": ["head/scores/bias"]}
    record = RunRecord.from_json(obj)
    assert record.init == InitCheckpoint(path="/cache/ckpt-1", kind="coco",
                                         source="the COCO detector", num_classes=91)
    assert record.init_loaded == FitReport(restored=10, total=12, fresh=("head/scores/bias",))
    written = record.to_json()
    assert "restored" not in written["init"] and written["init_loaded"]["restored"] == 10


def test_a_record_of_a_newer_format_says_to_upgrade(tmp_path):
    run = write_run(tmp_path)
    obj = json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps({**obj, "format": FORMAT + 1}))
    with pytest.raises(RunError) as e:
        read_record(run)
    assert str(e.value) == (
        f"{tmp_path / 'run.json'} is a run record of format {FORMAT + 1}, written by a newer "
        f"cvatkit; this one reads formats up to {FORMAT}: upgrade cvatkit (pip install "
        "--upgrade cvatkit-train) to read the run")


def _with(obj: dict, path: str, value) -> dict:
    """``obj`` with the field at the dotted ``path`` set to ``value`` (removed for
    ``...``)."""
    out = json.loads(json.dumps(obj))
    *parents, last = path.split(".")
    inner = out
    for key in parents:
        inner = inner[key]
    if value is ...:
        del inner[last]
    else:
        inner[last] = value
    return out


@pytest.mark.parametrize("path, value, said", [
    ("labels", ..., "labels is missing"),
    ("data", None, "data is missing"),
    ("model", ..., "model is missing"),
    ("hparams", ..., "hparams is missing"),
    ("model.family", ..., "model.family is missing"),
    ("data.labels", ..., "data.labels is missing"),
    ("hparams.num-steps", ..., "hparams.num-steps is missing"),
    ("labels", "cat", 'labels is "cat", not a list of strings'),
    ("labels", ["cat", 2], 'labels is ["cat", 2], not a list of strings'),
    ("hparams.num-steps", "five", 'hparams.num-steps is "five", not a whole number'),
    ("hparams.num-steps", 4.5, "hparams.num-steps is 4.5, not a whole number"),
    ("hparams.aug-hflip", "yes", 'hparams.aug-hflip is "yes", not true or false'),
    ("model.image_size", True, "model.image_size is true, not a whole number"),
    ("model.overrides", [], "model.overrides is [], not a JSON object"),
    ("data.train_frames", "11", 'data.train_frames is "11", not a whole number'),
    ("eval_data", "test", 'eval_data is "test", not a JSON object'),
    ("init", {"path": "/cache/ckpt-1"}, "init.kind is missing"),
    ("strategy", 2, "strategy is 2, not a JSON object"),
    ("costs.cpu_s", {"steps": "a lot"}, 'costs.cpu_s is {"steps": "a lot"}, not seconds by phase'),
    ("format", "1", 'format is "1", not a format number'),
    ("versions", [], "versions is [], not a JSON object"),
])
def test_a_damaged_record_names_the_file_and_the_field(tmp_path, path, value, said):
    obj = json.loads((OLD_RUN / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps(_with(obj, path, value)))
    with pytest.raises(RunError) as e:
        read_record(tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'run.json'} is damaged ({said}), so the run cannot be read; restore "
        "the file from a copy, or delete the run folder if the run is not needed")


@pytest.mark.parametrize("text, why", [
    ("[1, 2]", "it is not a JSON object"),
    ('{"hparams": {"num-st', "Unterminated string"),
])
def test_a_run_json_that_is_no_record_is_damaged(tmp_path, text, why):
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(RunError, match=f"run.json is damaged \\({why}"):
        read_record(tmp_path)


def test_a_folder_without_run_json_is_no_run(tmp_path):
    with pytest.raises(RunError, match=r"is not a cvatkit run \(no run.json\)"):
        read_record(tmp_path)
