"""What a run starts from is checked by one set of rules, for the command line, the
notebooks and the app (``check_start``, ``plan_run``)."""

from __future__ import annotations

import pytest
from helpers import MODEL, write_run

from cvatkit.errors import UsageError
from cvatkit.training import check_start, get_model, plan_run


def _earlier_run(path, labels, model=MODEL):
    """A finished run folder with one checkpoint, trained on ``labels``."""
    run = write_run(path, labels=tuple(labels), model=model, num_steps=5)
    run.set_status("completed", step=5, total_steps=5)
    ck = path / "checkpoints"
    ck.mkdir()
    (ck / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    (ck / "ckpt-5.index").write_bytes(b"i")
    return run


def test_published_weights_the_model_lacks_are_refused_by_name():
    spec = get_model(MODEL)
    assert check_start(spec, "none", ("a",)) == ""
    assert check_start(spec, "", None) == ""
    missing = next(k for k in ("coco", "imagenet") if k not in spec.weight_kinds)
    with pytest.raises(UsageError, match=f"{spec.key} has no published {missing} weights"):
        check_start(spec, missing, ("a",))


def test_an_earlier_run_is_checked_against_the_architecture_and_the_labels(tmp_path):
    spec = get_model(MODEL)
    run = _earlier_run(tmp_path / "run", ["square", "triangle", "circle"])
    assert check_start(spec, str(run.path), ("square", "triangle", "circle")) == ""
    assert check_start(spec, str(run.path), None) == ""  # the task's labels not known yet
    note = check_start(spec, str(run.path / "checkpoints" / "ckpt-5"),
                       ("circle", "triangle", "square"))
    assert "its classes are taken in that order" in note and "square -> circle" in note
    with pytest.raises(UsageError, match="trained on 3 classes .* the task has 2"):
        check_start(spec, str(run.path), ("a", "b"))
    with pytest.raises(UsageError, match="cannot start 'frcnn-res50'"):
        check_start(get_model("frcnn-res50"), str(run.path), ("a", "b", "c"))
    with pytest.raises(UsageError, match="not a cvatkit run or one of its checkpoints"):
        check_start(spec, str(tmp_path / "nowhere"), ("a",))
    # a store version's labels, as the caller listed them
    uri = "s3://bucket/team/models/ssd/20260101-000000-abc"
    assert check_start(spec, uri, ("a",)) == ""
    with pytest.raises(UsageError, match="trained on 2 classes"):
        check_start(spec, uri, ("a",), trained=("a", "b"))


def test_the_plan_of_a_run_notes_labels_taken_in_another_order(tmp_path, prepared):
    names = list(prepared.labels.names)
    run = _earlier_run(tmp_path / "run", names[::-1])
    plan = plan_run(prepared.path, MODEL, "num-steps=5", weights=str(run.path))
    assert plan.init.kind == "run" and plan.init.labels == tuple(names[::-1])
    assert any("its classes are taken in that order" in n for n in plan.notes)
    same = _earlier_run(tmp_path / "same", names)
    plan = plan_run(prepared.path, MODEL, "num-steps=5", weights=str(same.path))
    assert not any("taken in that order" in n for n in plan.notes)
