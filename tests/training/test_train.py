"""Training for real (TF on the CPU, tiny settings): the run directory, events, stop and
resume, several replicas, export; and every planning mistake, which needs no training."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
import pacing
from helpers import MODEL, SECRET, folded, hyperparameters, write_run

from cvatkit.cli import main
from cvatkit.runs import EvalEvent, Run, StatusEvent, StepEvent
from cvatkit.training import read_record
from cvatkit.training.worker import run_loop


def _err(capsys) -> str:
    return folded(capsys.readouterr().err)


def _wait_for_step(run: Run, above: int = 0, timeout: float = pacing.PATIENCE) -> StepEvent:
    """The first step event past ``above``; a run that fails, or a limit that is hit,
    says how far the run got."""
    seen = None
    for event in run.follow(poll=0.2, timeout=timeout):
        if isinstance(event, StepEvent):
            seen = event
            if event.step > above:
                return event
        assert not (isinstance(event, StatusEvent) and event.state == "failed"), event
    raise AssertionError(f"no step past {above} within {timeout:.0f} s (last: "
                         f"{seen.step if seen else 'none'}, state {run.status().state})\n"
                         + (run.path / "trainer.log").read_text()[-3000:])


def test_run_directory_contract(trained):
    record = read_record(trained)
    assert record.model.key == MODEL
    assert record.labels == ("square", "triangle", "circle")
    assert record.hparams.num_steps == 800 and record.hparams.batch_size == 8
    assert record.hparams.nms == "batched"
    assert record.versions["tensorflow"] == "2.20.0"
    assert record.strategy.replicas == 1 and record.strategy.global_batch == 8
    st = trained.status()
    assert (st.state, st.step, st.total_steps) == ("completed", 800, 800)
    events = trained.events()
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(100, 801, 100))
    for e in steps:
        assert {"cls_loss", "box_loss"} <= set(e.losses)
        assert math.isfinite(e.total_loss) and e.examples_per_sec > 0
        assert e.learning_rate >= 0
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [e.step for e in evals] == [400, 800]
    assert set(evals[-1].per_class) == {"square", "triangle", "circle"}
    assert all(math.isfinite(v) for v in evals[-1].per_class.values())
    assert 0 <= evals[-1].ap <= 1 and 0 <= evals[-1].ap50 <= 1
    assert all(e.ap <= e.ap50 for e in evals)  # averaged over IoU 0.5:0.95, and at 0.5
    assert all(evals[-1].per_class[n] <= 1 for n in evals[-1].per_class)
    assert isinstance(events[-1], StatusEvent) and events[-1].state == "completed"
    best = max(evals, key=lambda e: e.ap)  # the first of equals: a tie is no improvement
    assert [e.best for e in evals] == [True, best is evals[1]]
    assert trained.best_checkpoint().step == best.step
    assert trained.best_checkpoint().ap == best.ap
    assert (trained.path / "checkpoints" / "best" / f"ckpt-{best.step}.index").exists()
    model = json.loads((trained.path / "export" / "model.json").read_text())
    assert (model["exported"], model["step"], model["checkpoint"]) == (
        "best", best.step, f"ckpt-{best.step}")
    assert events[-1].message == (f"exported the best checkpoint (step {best.step}, AP "
                                  f"{best.ap:.3f}) to {trained.path / 'export'}")
    assert list(trained.follow(timeout=5)) == events
    assert list((trained.path / "tensorboard" / "train").iterdir())
    assert (trained.path / "checkpoints" / "ckpt-800.index").exists()
    # where its CPU-seconds went: every phase measured, the 800 steps counted once
    costs = record.costs
    assert costs.steps == 800
    for phase in ("start-up", "tracing", "steps", "checkpoints", "evaluation", "export"):
        assert costs.cpu_s[phase] > 0 and costs.wall_s[phase] > 0, phase
    for path in trained.path.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path


def box_iou(yxyx, shape) -> float:
    xs, ys = shape.points[0::2], shape.points[1::2]
    a, b = (yxyx[1], yxyx[0], yxyx[3], yxyx[2]), (min(xs), min(ys), max(xs), max(ys))
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def test_export_is_a_savedmodel_with_label_files(trained, sample_cvat):
    import tensorflow as tf

    from cvatkit import open_export
    from cvatkit.images import decode_rgb

    export = trained.path / "export"
    assert (export / "classes.csv").read_text() == "labels\nsquare\ntriangle\ncircle\n"
    assert json.loads((export / "label_map.json").read_text())["label_map"]["2"] == "triangle"
    model = tf.saved_model.load(str(export / "saved_model"))
    fn = model.signatures["serving_default"]
    test = open_export(sample_cvat.parent / "test.zip")
    firsts = list(test.frames())[:2]
    frames = [decode_rgb(test.read_image(f), f.name) for f in firsts]
    out = {k: v.numpy() for k, v in fn(inputs=tf.constant(np.stack(frames))).items()}
    assert {"detection_classes", "detection_scores", "num_detections", "image_info"} <= set(out)
    assert json.loads((export / "model.json").read_text())["nms"] == "batched"
    size = read_record(trained).hparams.image_size
    scale = size / 160  # the frames are 160 px wide: resized to the run's image-size
    for i in range(2):
        n = int(out["num_detections"][i])
        assert 1 <= n <= 100
        # it finds shapes: its best box lies on an annotated shape of the same label
        top = out["detection_boxes"][i][0] / scale  # [ymin, xmin, ymax, xmax] of the frame
        label = read_record(trained).labels[int(out["detection_classes"][i][0]) - 1]
        assert max(box_iou(top, s) for s in firsts[i].shapes if s.label == label) >= 0.5
        assert out["image_info"][i][2].tolist() == pytest.approx([scale, scale], abs=0.01)
        assert set(out["detection_classes"][i][:n].astype(int)) <= {1, 2, 3}
        scores = out["detection_scores"][i][:n]
        assert ((scores >= 0) & (scores <= 1)).all() and (np.diff(scores) <= 0).all()
        boxes = out["detection_boxes"][i][:n]  # pixels of the frame resized to image-size
        assert ((boxes >= -1) & (boxes <= size + 1)).all()
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_stop_and_resume_a_fine_tuning_run_on_two_replicas(trained, prepared, tmp_path,
                                                            capsys, monkeypatch):
    monkeypatch.setenv("CVATKIT_CPU_REPLICAS", "2")
    run_dir = tmp_path / "long"
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir", str(run_dir),
                 "--detach", "--init-checkpoint", str(trained.path), "--hparams",
                 "num-clones=2;batch-size=4;num-steps=1000;image-size=128;log-interval=5;"
                 "checkpoint-interval=500"]) == 0
    run = Run(run_dir)
    first = _wait_for_step(run)
    assert math.isfinite(first.total_loss)
    init = read_record(run).init
    assert init is not None and (init.kind, init.modules) == ("run", "all")
    started = [e for e in run.events() if isinstance(e, StatusEvent)][0]
    assert "2 replicas" in started.message and "MirroredStrategy" in started.message
    assert read_record(run).strategy.num_clones == 2
    assert main(["stop", str(run_dir)]) == 0
    assert "stopped" in folded(capsys.readouterr().out)
    st = run.status()
    assert st.state == "stopped" and st.step >= first.step
    assert (run_dir / "checkpoints" / f"ckpt-{st.step}.index").exists()
    spent = read_record(run).costs  # a stopped run says where its CPU-seconds went too
    assert 0 < spent.steps <= st.step  # (after one call, all of it counts as tracing)
    assert spent.cpu_s["steps"] + spent.cpu_s["tracing"] > 0
    assert main(["train", "--resume", str(run_dir), "--detach"]) == 0
    again = _wait_for_step(run, above=st.step)
    assert again.step > st.step
    resumed = [e for e in run.events() if isinstance(e, StatusEvent) and e.state == "running"]
    assert resumed[-1].resumed_from == st.step
    assert resumed[-1].message == f"resumed from step {st.step} on 2 replicas " \
                                  "(MirroredStrategy)"
    assert main(["stop", str(run_dir)]) == 0


@pytest.mark.slow  # trains
def test_killed_at_three_random_steps_and_resumed_to_the_end(prepared, tmp_path, capsys):
    """SIGKILL, the way an out-of-memory killer or a lost machine ends a trainer: the run
    says its trainer is gone, loses at most one checkpoint interval, and resumed, trains
    every step once. The trainer is held still from its start and let go on a logged step
    at a time (``pacing``), so each kill lands where it is meant to on any machine."""
    import random
    import signal

    import tensorflow as tf

    from cvatkit.inference import load_detector
    from cvatkit.processes import pid_alive

    interval, total, log = 10, 60, 5
    run_dir = tmp_path / "killed"
    assert main(["train", "--model", MODEL,
                 "--data", str(prepared.path), "--run-dir", str(run_dir), "--detach",
                 "--hparams", f"num-steps={total};batch-size=4;image-size=128;"
                 f"log-interval={log};checkpoint-interval={interval}"]) == 0
    run = Run(run_dir)
    pacing.freeze([run.status().pid])
    rng = random.Random(16)  # a step in each third of the run, past the one killed before
    targets = [rng.randrange(6, 20), rng.randrange(26, 40), rng.randrange(46, 55)]
    for n, target in enumerate(targets):
        pid = run.status().pid
        reached = pacing.advance(run, [pid], past=target - 1)
        os.kill(pid, signal.SIGKILL)  # held still or not, it ends
        while pid_alive(pid):
            time.sleep(0.1)
        st = run.status()
        assert st.state == "failed" and st.gone and "the trainer is gone" in st.error
        assert main(["status", str(run_dir)]) == 0
        assert "resume the run with `cvatkit train --resume" in folded(capsys.readouterr().out)
        if n == 1:  # what a save killed half-way leaves
            (run_dir / "checkpoints" / "ckpt-999_temp").mkdir()
        assert main(["train", "--resume", str(run_dir), "--detach"]) == 0
        pacing.freeze([run.status().pid])
        pacing.advance(run, [run.status().pid], past=reached)
        resumed = [e for e in run.events() if isinstance(e, StatusEvent) and
                   e.resumed_from is not None][-1]
        assert reached - interval <= resumed.resumed_from <= reached  # one interval at most
    pacing.thaw([run.status().pid])
    events = list(run.follow(poll=0.5, timeout=pacing.PATIENCE))
    assert events[-1].state == "completed", (run_dir / "trainer.log").read_text()[-3000:]
    steps = [e.step for e in run.events() if isinstance(e, StepEvent)]
    assert steps == list(range(log, total + 1, log))  # each step trained once, in order
    raw = [e.step for e in run.read_events()[0] if isinstance(e, StepEvent)]
    assert len(raw) > len(steps)  # what was lost to the kills is in the log, superseded
    assert not list((run_dir / "checkpoints").glob("*_temp*"))
    reader = tf.train.load_checkpoint(run.latest_checkpoint())
    assert reader.get_variable_to_shape_map()
    assert load_detector(run_dir).labels.names == ("square", "triangle", "circle")


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

    def write(self, prefix):
        from pathlib import Path

        Path(prefix + ".index").write_text(str(self._step))


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
    run = write_run(tmp_path, num_steps=5)
    run.append(StepEvent(step=1, time=0, losses={}, total_loss=1, learning_rate=0,
                         examples_per_sec=1, steps_per_sec=1))
    status = {"state": "running", "step": 1, "pid": 2 ** 22 - 7, "error": "", "updated": 0,
              "total_steps": 5}
    (tmp_path / "status.json").write_text(json.dumps(status))
    (tmp_path / "trainer.log").write_text("Traceback ...\nMemoryError: out of memory\n\n")
    events = list(run.follow(timeout=5))
    assert isinstance(events[0], StepEvent)
    assert events[-1].state == "failed" and events[-1].message.startswith(
        "the trainer is gone (last words: MemoryError: out of memory); resume the run with "
        "`cvatkit train --resume")


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
    code = main(["train", "--model", MODEL,
                 "--data", str(prepared.path), "--run-dir", str(tmp_path / "r"),
                 *args])
    err = folded(capsys.readouterr().err)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_batch_that_does_not_divide_over_replicas(prepared, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CVATKIT_CPU_REPLICAS", "2")
    assert main(["train", "--model", MODEL,
                 "--data", str(prepared.path), "--run-dir", str(tmp_path / "r"),
                 "--hparams", "num-clones=2;batch-size=3"]) == 2
    assert "batch-size=3 does not divide over num-clones=2" in _err(capsys)


def test_data_dir_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["train", "--model", MODEL,
                 "--data", str(tmp_path / "d"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "is not a prepared dataset" in _err(capsys)


def test_dataset_without_its_records_or_labels(prepared, tmp_path, capsys):
    import shutil

    broken = tmp_path / "d"
    shutil.copytree(prepared.path, broken)
    (broken / prepared.train_files[0]).unlink()
    assert main(["train", "--model", MODEL,
                 "--data", str(broken), "--run-dir", str(tmp_path / "r")]) == 2
    assert "lacks train-00000-of-00001.tfrecord" in _err(capsys)
    shutil.rmtree(broken)
    shutil.copytree(prepared.path, broken)
    for name in ("label_map.json", "label_map.pbtxt", "classes.csv"):
        (broken / name).unlink()
    assert main(["train", "--model", MODEL,
                 "--data", str(broken), "--run-dir", str(tmp_path / "r")]) == 2
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
    assert main(["train", "--model", MODEL, "--data", str(data), "--run-dir", str(tmp_path / "r"),
                 "--init-checkpoint", str(trained.path)]) == 2
    err = folded(capsys.readouterr().err)
    assert "was trained on 3 classes (square, triangle, circle), the task has 2" in err
    assert "--reinit-heads" in err
    plan = plan_run(data, MODEL, init_checkpoint=str(trained.path),
                    reinit_heads=True)
    assert plan.init.modules == "backbone,decoder"
    assert plan.init.path == trained.exported_checkpoint()  # the one it exported


def test_run_dir_that_holds_a_run_and_resume_of_nothing(trained, prepared, tmp_path, capsys):
    assert main(["train", "--model", MODEL,
                 "--data", str(prepared.path), "--run-dir", str(trained.path)]) == 2
    err = folded(capsys.readouterr().err)
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

    plan = plan_run(prepared.path, MODEL, "image-size=128\nnum-steps=1",
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


def test_a_trainer_that_cannot_start_leaves_no_run_folder(prepared, tmp_path, monkeypatch,
                                                          capsys):
    import subprocess

    def no_python(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/usr/bin/python-gone")

    monkeypatch.setattr(subprocess, "Popen", no_python)
    run_dir = tmp_path / "never"
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir", str(run_dir),
                 "--hparams", "num-steps=2", "--detach"]) == 2
    assert "could not start the trainer" in _err(capsys) and not run_dir.exists()
    (tmp_path / "empty").mkdir()  # a folder given empty is left empty
    assert main(["train", "--model", MODEL,
                 "--data", str(prepared.path), "--run-dir", str(tmp_path / "empty"),
                 "--hparams", "num-steps=2", "--detach"]) == 2
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("error, said", [
    (PermissionError(13, "Permission denied", "/runs/r/checkpoints/ckpt-10_temp"),
     "cannot write /runs/r/checkpoints/ckpt-10_temp (permission denied)"),
    (OSError(30, "Read-only file system: '/runs/r/events.jsonl'"),
     "cannot write /runs/r/events.jsonl (read-only file system)"),
    (RuntimeError("Failed to create a directory: /runs/r/checkpoints/ckpt-10_temp; "
                  "Permission denied [Op:SaveV2]"),
     "cannot write /runs/r/checkpoints/ckpt-10_temp (permission denied)"),
    (MemoryError(), "ran out of memory; lower batch-size or image-size"),
])
def test_why_a_trainer_failed_is_said_in_the_kits_words(error, said):
    from pathlib import Path

    from cvatkit.training.worker import _failure_message

    message = _failure_message(error, Run(Path("/runs/r")))
    assert message.startswith(said) and "Op:SaveV2" not in message
    if "cannot write" in said:
        assert message.endswith("make the run folder writable and resume it with "
                                "`cvatkit train --resume /runs/r`")


def test_a_run_still_training_is_no_start_for_another(prepared, tmp_path):
    """What a run that is still training would give (its best, its last) changes as it
    goes: the run folder is refused, a checkpoint of it given by path is taken."""
    from cvatkit.errors import UsageError
    from cvatkit.training import get_model, resolve_init_checkpoint

    run = write_run(tmp_path / "live", labels=("a",))
    run.set_status("running", step=40, total_steps=100)
    run.record_pid(os.getpid())  # a live process stands in for its trainer
    for given in (run.path, run.path / "checkpoints", run.path / "checkpoints" / "best"):
        with pytest.raises(UsageError, match="is still training: what it would start "
                                             "from changes as it goes"):
            resolve_init_checkpoint(str(given), get_model(MODEL), prepared)
    with pytest.raises(UsageError, match="no such checkpoint"):  # by path: taken as given
        resolve_init_checkpoint(str(run.path / "checkpoints" / "ckpt-40"), get_model(MODEL),
                                prepared)
