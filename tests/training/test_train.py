"""Training for real (TF on the CPU, tiny settings): the run directory, events, stop and
resume, several replicas, export; and every planning mistake, which needs no training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import SECRET, hyperparameters

from cvatkit.cli import main
from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent
from cvatkit.training.worker import run_loop


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _wait_for_step(run: Run, above: int = 0, timeout: float = 240) -> StepEvent:
    for event in run.follow(poll=0.2, timeout=timeout):
        if isinstance(event, StepEvent) and event.step > above:
            return event
        assert not (isinstance(event, StatusEvent) and event.state == "failed"), event
    raise AssertionError((run.path / "trainer.log").read_text()[-3000:])


def test_run_directory_contract(trained):
    spec = trained.spec()
    assert spec["model"]["key"] == "ssd-mobilenet-v2-coco"
    assert spec["labels"] == ["square", "triangle", "circle"]
    assert spec["hparams"]["num-steps"] == 20 and spec["hparams"]["batch-size"] == 8
    assert spec["versions"]["tensorflow"] == "2.20.0"
    st = trained.status()
    assert (st.state, st.step, st.total_steps) == ("completed", 20, 20)
    events = trained.events()
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [10, 20]
    for e in steps:
        assert {"cls_loss", "box_loss"} <= set(e.losses)
        assert math.isfinite(e.total_loss) and e.examples_per_sec > 0
        assert e.learning_rate >= 0
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [e.step for e in evals] == [10, 20]
    assert set(evals[-1].per_class) == {"square", "triangle", "circle"}
    assert all(math.isfinite(v) for v in evals[-1].per_class.values())
    assert 0 <= evals[-1].ap <= 1 and 0 <= evals[-1].ap50 <= 1
    assert isinstance(events[-1], StatusEvent) and events[-1].state == "completed"
    assert list(trained.follow(timeout=5)) == events
    assert list((trained.path / "tensorboard" / "train").iterdir())
    assert (trained.path / "checkpoints" / "ckpt-20.index").exists()
    for path in trained.path.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path


def test_export_is_a_savedmodel_with_label_files(trained):
    import tensorflow as tf

    export = trained.path / "export"
    assert (export / "classes.csv").read_text() == "labels\nsquare\ntriangle\ncircle\n"
    assert json.loads((export / "label_map.json").read_text())["label_map"]["2"] == "triangle"
    model = tf.saved_model.load(str(export / "saved_model"))
    fn = model.signatures["serving_default"]
    out = fn(tf.zeros([1, 96, 160, 3], tf.uint8))
    assert out["detection_boxes"].shape[-1] == 4
    assert {"detection_classes", "detection_scores", "num_detections", "image_info"} <= set(out)


def test_stop_resume_and_fine_tune_from_a_run(trained, prepared, tmp_path, capsys):
    run_dir = tmp_path / "long"
    assert main(["train", "--data", str(prepared.path), "--run-dir", str(run_dir),
                 "--detach", "--init-checkpoint", str(trained.path), "--hparams",
                 "num-steps=1000;batch-size=4;image-size=128;log-interval=5;"
                 "checkpoint-interval=500"]) == 0
    run = Run(run_dir)
    first = _wait_for_step(run)
    assert run.spec()["init"]["kind"] == "run" and run.spec()["init"]["modules"] == "all"
    assert main(["stop", str(run_dir)]) == 0
    assert "stopped" in capsys.readouterr().out
    st = run.status()
    assert st.state == "stopped" and st.step >= first.step
    assert (run_dir / "checkpoints" / f"ckpt-{st.step}.index").exists()
    assert main(["train", "--resume", str(run_dir), "--detach"]) == 0
    again = _wait_for_step(run, above=st.step)
    assert again.step > st.step
    resumed = [e for e in run.events() if isinstance(e, StatusEvent) and e.state == "running"]
    assert resumed[-1].message == f"resumed at step {st.step}"
    assert main(["stop", str(run_dir)]) == 0


def test_two_replicas_on_the_cpu(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("CVATKIT_CPU_REPLICAS", "2")
    run_dir = tmp_path / "mirrored"
    assert main(["train", "--data", str(prepared.path), "--run-dir", str(run_dir), "--detach",
                 "--hparams", "num-clones=2;batch-size=4;num-steps=500;image-size=128;"
                 "log-interval=2"]) == 0
    run = Run(run_dir)
    event = _wait_for_step(run)
    assert math.isfinite(event.total_loss)
    started = [e for e in run.events() if isinstance(e, StatusEvent)][0]
    assert "2 replicas" in started.message and "MirroredStrategy" in started.message
    assert run.spec()["strategy"]["num_clones"] == 2
    assert main(["stop", str(run_dir)]) == 0


# -- without training --------------------------------------------------------------------


class FakeLoop:
    """A trainer that reports the losses it is given."""

    def __init__(self, losses):
        self.losses, self._step, self.saved = list(losses), 0, []

    def train(self, steps):
        self._step += steps
        return {"total_loss": self.losses.pop(0), "cls_loss": 0.5, "learning_rate": 0.1}

    def evaluate(self):
        return {"AP": 0.5, "AP50": 0.9, "Precision mAP ByCategory/a": 0.4}

    def step(self):
        return self._step

    def save(self, step, *, force):
        self.saved.append(step)


def test_a_loss_that_is_not_finite_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    run = Run(tmp_path)
    hp = hyperparameters(num_steps=30, batch_size=2, initial_learning_rate=0.5,
                         log_interval=10, eval_interval=10)
    loop = FakeLoop([1.0, float("nan"), 1.0])
    out = run_loop(loop, run, hp, labels=("a",), total_steps=30, can_evaluate=True,
                   stop=lambda: False)
    assert out.state == "failed" and out.step == 20
    assert "no longer finite at step 20" in out.message
    assert "lower initial-learning-rate (now 0.5)" in out.message
    assert loop.saved == [10]
    events = run.events()
    assert [type(e).__name__ for e in events] == ["StepEvent", "EvalEvent"]
    assert events[1].per_class == {"a": 0.4}


def test_stop_request_saves_and_stops(tmp_path):
    loop = FakeLoop([1.0] * 5)
    hp = hyperparameters(num_steps=50, batch_size=2, initial_learning_rate=0.1, log_interval=10)
    calls = iter([False, False, True])
    out = run_loop(loop, Run(tmp_path), hp, labels=("a",), total_steps=50,
                   can_evaluate=False, stop=lambda: next(calls))
    assert (out.state, out.step) == ("stopped", 20)
    assert loop.saved == [10, 20, 20]


def test_follow_notices_a_trainer_that_died(tmp_path):
    run = Run(tmp_path)
    run.write_spec({"hparams": {"num-steps": 5}})
    run.append(StepEvent(step=1, time=0, losses={}, total_loss=1, learning_rate=0,
                         examples_per_sec=1, steps_per_sec=1))
    status = {"state": "running", "step": 1, "pid": 2 ** 22 - 7, "error": "", "updated": 0,
              "total_steps": 5}
    (tmp_path / "status.json").write_text(json.dumps(status))
    events = list(run.follow(timeout=5))
    assert isinstance(events[0], StepEvent)
    assert events[-1].state == "failed" and "ended without a word" in events[-1].message


@pytest.mark.parametrize("args, message", [
    (["--model", "yolo-v9"], "unknown model 'yolo-v9'"),
    (["--hparams", "num-step=5"], "unknown hyperparameter 'num-step'; did you mean 'num-steps'"),
    (["--hparams", "batch-size=big"], "batch-size='big' is not a whole number"),
    (["--hparams", "initial-learning-rate=-1"], "initial-learning-rate=-1 must be > 0"),
    (["--hparams", "num-clones=2;batch-size=3"], "asks for 2 GPUs but this machine has none"),
    (["--hparams", "num-clones=3"], "asks for 3 GPUs"),
])
def test_planning_mistakes(prepared, tmp_path, capsys, args, message, monkeypatch):
    monkeypatch.delenv("CVATKIT_CPU_REPLICAS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    code = main(["train", "--data", str(prepared.path), "--run-dir", str(tmp_path / "r"),
                 *args])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_batch_that_does_not_divide_over_replicas(prepared, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CVATKIT_CPU_REPLICAS", "2")
    assert main(["train", "--data", str(prepared.path), "--run-dir", str(tmp_path / "r"),
                 "--hparams", "num-clones=2;batch-size=3"]) == 2
    assert "batch-size=3 does not divide over num-clones=2" in _err(capsys)


def test_data_dir_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["train", "--data", str(tmp_path / "d"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "is not a prepared dataset" in _err(capsys)


def test_dataset_without_its_records_or_labels(prepared, tmp_path, capsys):
    import shutil

    broken = tmp_path / "d"
    shutil.copytree(prepared.path, broken)
    (broken / prepared.train_files[0]).unlink()
    assert main(["train", "--data", str(broken), "--run-dir", str(tmp_path / "r")]) == 2
    assert "lacks train-00000-of-00001.tfrecord" in _err(capsys)
    shutil.rmtree(broken)
    shutil.copytree(prepared.path, broken)
    for name in ("label_map.json", "label_map.pbtxt", "classes.csv"):
        (broken / name).unlink()
    assert main(["train", "--data", str(broken), "--run-dir", str(tmp_path / "r")]) == 2
    assert "has no label file" in _err(capsys)


def test_checkpoint_with_another_class_count(trained, tmp_path, capsys):
    from cvatkit import Frame, LabelMap, Shape, open_export, prepare
    from cvatkit.cvat import write_cvat_xml
    from cvatkit.training import plan_run

    two = LabelMap.from_names(["cat", "dog"])
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="JPEG")
    frames = [Frame(index=i, name=f"{i}.jpg", width=64, height=64,
                    shapes=(Shape(kind="rectangle", label="cat", points=(1, 1, 30, 30)),))
              for i in range(4)]
    write_cvat_xml(tmp_path / "t.zip", frames, two, task_name="t",
                   images=lambda f: buf.getvalue())
    data = prepare(open_export(tmp_path / "t.zip"), tmp_path / "d").path
    assert main(["train", "--data", str(data), "--run-dir", str(tmp_path / "r"),
                 "--init-checkpoint", str(trained.path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "was trained on 3 classes (square, triangle, circle), the dataset has 2" in err
    assert "--reinit-heads" in err
    plan = plan_run(data, "ssd-mobilenet-v2-coco", init_checkpoint=str(trained.path),
                    reinit_heads=True)
    assert plan.init.modules == "backbone,decoder"
    assert plan.init.path.endswith("ckpt-20")


def test_run_dir_that_holds_a_run_and_resume_of_nothing(trained, prepared, tmp_path, capsys):
    assert main(["train", "--data", str(prepared.path), "--run-dir", str(trained.path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "already holds a run" in err and "--resume" in err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "is not a cvatkit run" in _err(capsys)
    assert main(["train", "--resume", str(trained.path)]) == 2
    assert "has completed" in _err(capsys)


def _fingerprint(values) -> np.ndarray:
    """Each tensor's sum of absolute values, sorted: equal only for the same weights."""
    return np.sort([float(np.abs(np.asarray(v, dtype=np.float64)).sum()) for v in values])


@pytest.mark.parametrize("reinit", [False, True])
def test_fine_tune_loads_the_earlier_runs_weights(trained, prepared, reinit):
    import tensorflow as tf
    from official.core import task_factory

    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment

    plan = plan_run(prepared.path, "ssd-mobilenet-v2-coco", "image-size=128\nnum-steps=1",
                    init_checkpoint=str(trained.path), reinit_heads=reinit)
    exp = build_experiment(plan.spec, plan.hparams, plan.data,
                           init_checkpoint=plan.init.path, init_modules=plan.init.modules)
    task = task_factory.get_task(exp.task)
    model = task.build_model()
    task.initialize(model)
    reader = tf.train.load_checkpoint(plan.init.path)

    def saved(prefix):
        return _fingerprint(reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                            if k.startswith(prefix) and k.endswith("VARIABLE_VALUE")
                            and "OPTIMIZER_SLOT" not in k)

    def same(a, b):
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-3)

    assert same(_fingerprint(model.backbone.weights), saved("backbone/"))
    assert same(_fingerprint(model.head.weights), saved("head/")) is (not reinit)
