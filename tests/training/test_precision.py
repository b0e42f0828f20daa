"""mixed-precision and jit-compile: parsed, checked for the machine at planning time, set
in Model Garden's config and the Keras policy the model is built under, and a short real
run in bfloat16 with XLA on the CPU whose float32 export still finds the shapes."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import MODEL, hyperparameters, folded

from cvatkit.cli import main
from cvatkit.dataset import Dataset
from cvatkit.errors import HyperparameterError
from cvatkit.records import LabelMap
from cvatkit.runs import Run, StatusEvent, StepEvent
from cvatkit.training import devices, get_model, parse_hparams, read_record, resolve

DATA = Dataset(path=Path("/nowhere"), labels=LabelMap.from_names("abc"), train_frames=100,
               val_frames=10, include_masks=False, val_fraction=0.1)


def _err(capsys) -> str:
    return folded(capsys.readouterr().err)


@pytest.fixture
def cpu_flags(tmp_path, monkeypatch):
    """Stand in for /proc/cpuinfo: ``cpu_flags("avx2 avx512f")`` is a CPU with those."""
    def write(flags: str) -> None:
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\n"
                        f"processor\t: 1\nflags\t\t: fpu sse2 {flags}\n")
        monkeypatch.setattr(devices, "CPUINFO", info)
    return write


@pytest.fixture
def float32_after():
    """Building a mixed-precision experiment sets Keras's global policy, as a trainer
    process needs: put float32 back for the tests that follow."""
    yield
    import tf_keras

    tf_keras.mixed_precision.set_global_policy("float32")


def test_parsed_with_their_defaults_and_help():
    assert parse_hparams("mixed_precision=bfloat16\njit-compile=yes") == {
        "mixed-precision": "bfloat16", "jit-compile": True}
    hp, _ = resolve(get_model(MODEL), {}, DATA, gpus=0)
    assert (hp.mixed_precision, hp.jit_compile) == ("float32", False)
    from cvatkit.training import BY_KEY

    assert BY_KEY["mixed-precision"].describe().endswith(
        "(default: float32; one of float32, float16, bfloat16)")
    assert BY_KEY["jit-compile"].describe().endswith("(default: false)")


def test_a_run_written_before_they_existed_trained_in_float32_without_xla():
    from cvatkit.training import Hyperparameters

    old = {k: v for k, v in hyperparameters().to_dict().items()
           if k not in ("mixed-precision", "jit-compile")}
    hp = Hyperparameters.from_dict(old)
    assert (hp.mixed_precision, hp.jit_compile) == ("float32", False)


@pytest.mark.parametrize("text, message", [
    ("mixed-precision=half", "line 1: mixed-precision='half' is not one of float32, float16, "
                             "bfloat16"),
    ("\nmixed_precision=fp16", "line 2: mixed-precision='fp16' is not one of float32, "
                               "float16, bfloat16"),
    ("jit-compile=xla", "line 1: jit-compile='xla' is not true or false"),
])
def test_bad_values_name_the_key_and_what_is_allowed(text, message):
    with pytest.raises(HyperparameterError) as e:
        parse_hparams(text, origin="hparams.txt")
    assert f"hparams.txt {message}" in str(e.value)


FLOAT16_ON_CPU = (
    "mixed-precision=float16 needs a GPU of compute capability 7.0 or more (Volta or "
    "later), and this machine has none; bfloat16 runs on CPUs too, but slower than float32 "
    "on those without AMX: remove the mixed-precision line (or set mixed-precision=float32) "
    "to train on this machine")


def test_float16_needs_a_gpu():
    with pytest.raises(HyperparameterError) as e:
        resolve(get_model(MODEL), {"mixed-precision": "float16"}, DATA, gpus=0)
    assert str(e.value) == FLOAT16_ON_CPU
    hp, notes = resolve(get_model(MODEL), {"mixed-precision": "float16"}, DATA, gpus=1)
    assert hp.mixed_precision == "float16"
    assert not any("mixed-precision" in n for n in notes)


def test_float16_on_a_machine_without_gpus_is_refused_before_anything_is_written(
        prepared, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CVATKIT_CPU_REPLICAS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                 str(tmp_path / "r"), "--hparams", "mixed-precision=float16"]) == 2
    err = _err(capsys)
    assert FLOAT16_ON_CPU in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_float16_is_refused_for_mask_rcnns_stages_which_have_no_loss_scale():
    data = replace(DATA, include_masks=True)
    with pytest.raises(HyperparameterError, match="mixed-precision=float16 is not available "
                       "for maskrcnn's stages .*no loss scale.* use "
                       "mixed-precision=bfloat16"):
        resolve(get_model("maskrcnn"), {"mixed-precision": "float16"}, data, gpus=1)
    hp, _ = resolve(get_model("maskrcnn"), {"mixed-precision": "float16", "num-steps": 50},
                    data, gpus=1)  # one stage: Model Garden's optimizer, with its loss scale
    assert hp.mixed_precision == "float16"


def test_bfloat16_on_a_cpu_without_amx_is_a_note(cpu_flags):
    """Measured here: on a CPU with AVX512-BF16 and no AMX, bfloat16 took more CPU time
    than float32; a note says so unless the CPU has AMX."""
    bf16 = {"mixed-precision": "bfloat16"}
    for flags, has in (("avx2 avx512f avx512bw", ""),
                       ("avx512f avx512_bf16", "; it has avx512_bf16")):
        cpu_flags(flags)
        _, notes = resolve(get_model(MODEL), bf16, DATA, gpus=0)
        assert (f"mixed-precision=bfloat16 on a CPU without AMX (amx_bf16{has}) is usually "
                "slower than float32 (as measured in the docs, docs/gpus.md)") in " ".join(notes), \
            flags
    cpu_flags("avx512_bf16 amx_tile amx_bf16")
    _, notes = resolve(get_model(MODEL), bf16, DATA, gpus=0)
    assert not any("bfloat16" in n for n in notes)
    cpu_flags("avx2")
    _, notes = resolve(get_model(MODEL), bf16, DATA, gpus=1)  # trains on the GPU
    assert not any("bfloat16" in n for n in notes)
    _, notes = resolve(get_model(MODEL), {}, DATA, gpus=0)
    assert not any("bfloat16" in n for n in notes)


def test_cpu_flags_are_read_from_cpuinfo(cpu_flags, monkeypatch, tmp_path):
    cpu_flags("avx2 amx_bf16 avx512_bf16")
    assert devices.cpu_bfloat16_flags() == ("avx512_bf16", "amx_bf16")
    cpu_flags("avx2 avx512_bf16x")  # a flag is a whole word
    assert devices.cpu_bfloat16_flags() == ()
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "absent")  # not Linux
    assert devices.cpu_bfloat16_flags() == ()


def test_the_plan_carries_the_notes(prepared, monkeypatch, cpu_flags):
    from cvatkit.training import plan_run
    from cvatkit.training.resolution import JIT_CPU_NOTE

    monkeypatch.delenv("CVATKIT_CPU_REPLICAS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    cpu_flags("avx2")
    plan = plan_run(prepared.path, MODEL, "mixed-precision=bfloat16\njit-compile=true")
    assert (plan.hparams.mixed_precision, plan.hparams.jit_compile) == ("bfloat16", True)
    notes = " ".join(plan.notes)
    assert "mixed-precision=bfloat16 on a CPU without AMX (amx_bf16) is usually slower" in \
        notes
    assert JIT_CPU_NOTE in notes


def test_jit_compile_on_the_cpu_is_a_note():
    from cvatkit.training.resolution import JIT_CPU_NOTE

    hp, notes = resolve(get_model(MODEL), {"jit-compile": True}, DATA, gpus=0)
    assert hp.jit_compile and JIT_CPU_NOTE in notes
    _, notes = resolve(get_model(MODEL), {"jit-compile": True}, DATA, gpus=1)
    assert JIT_CPU_NOTE not in notes


@pytest.mark.parametrize("precision, loss_scale", [
    ("float32", None), ("bfloat16", None), ("float16", "dynamic")])
def test_model_gardens_runtime_config(precision, loss_scale, float32_after):
    from cvatkit.training.model_garden import build_experiment

    hp = replace(hyperparameters(jit_compile=precision == "bfloat16"),  # as if on a GPU
                 mixed_precision=precision)
    c = build_experiment(get_model(MODEL), hp, DATA)
    assert c.runtime.mixed_precision_dtype == precision
    assert c.runtime.loss_scale == loss_scale
    assert c.runtime.enable_xla is (precision == "bfloat16")
    # base_trainer jit-compiles the task's train step when enable_xla and num_gpus > 0
    assert c.runtime.num_gpus >= 1


@pytest.mark.slow  # builds the trainer
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_the_trainer_builds_its_model_in_the_runs_precision(precision, prepared, tmp_path,
                                                            float32_after):
    """cvatkit's trainer (``ModelGardenLoop``) as the worker builds it: the layers compute
    in the run's precision, weights in float32; float16 gets Model Garden's loss scale."""
    import tf_keras

    from cvatkit.training.model_garden.loop import ModelGardenLoop

    hp = replace(hyperparameters(batch_size=2, image_size=128), mixed_precision=precision)
    mg = ModelGardenLoop(Run(tmp_path), get_model(MODEL), hp, prepared, None, None)
    convs = [m for m in mg.trainer.model.submodules if isinstance(m, tf_keras.layers.Conv2D)]
    assert len(convs) > 10
    assert {layer.dtype_policy.name for layer in convs} == {f"mixed_{precision}"}
    assert {v.dtype.name for v in mg.trainer.model.trainable_variables} == {"float32"}
    scaled = isinstance(mg.trainer.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert scaled is (precision == "float16")


def test_a_bfloat16_run_on_the_cpu_trains_and_exports_in_float32(
        trained, prepared, sample_cvat, tmp_path, float32_after):
    """A few steps on from the shared run (which finds the shapes) in bfloat16 (without
    XLA, which costs a minute of compiling on this CPU: its setting is checked in
    ``test_model_gardens_runtime_config``): finite losses, and the export, made in the
    same process right after, computes in float32 and still finds the shapes; exported
    again (``cvatkit export``, which builds the run's bfloat16 experiment), the same, and
    the policy of the process that exported is still float32."""
    import tensorflow as tf
    import tf_keras

    from cvatkit import open_export
    from cvatkit.inference import load_detector, predict

    run_dir = tmp_path / "bf16"
    assert main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                 str(run_dir), "--weights", str(trained.path), "--hparams",
                 "num-steps=6;batch-size=4;image-size=128;anchor-size=2;log-interval=3;"
                 "initial-learning-rate=0.004;warmup-steps=0;mixed-precision=bfloat16"]
                ) == 0, (run_dir / "trainer.log").read_text()[-3000:]
    run = Run(run_dir)
    steps = [e for e in run.events() if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [3, 6]
    assert all(math.isfinite(e.total_loss) and e.total_loss > 0 for e in steps)
    assert read_record(run).hparams.mixed_precision == "bfloat16"
    assert [e for e in run.events() if isinstance(e, StatusEvent)][-1].state == "completed"

    test = open_export(sample_cvat.parent / "test.zip")
    shapes = {f.name: f.shapes for f in test.frames()}
    for export in (run_dir / "export", tmp_path / "again"):
        if export.name == "again":
            assert main(["export", str(run_dir), "--out", str(export)]) == 0
            assert tf_keras.mixed_precision.global_policy().name == "float32"
        saved = tf.saved_model.load(str(export / "saved_model"))
        assert not _bfloat16_ops(saved.signatures["serving_default"])
        detector = load_detector(export)
        out = detector.call(np.zeros((1, 128, 160, 3), np.uint8))
        assert out["detection_scores"].dtype == np.float32
        found = [_matches(p.frame.shapes, shapes[p.frame.name])
                 for p in predict(detector, test, threshold=0.5)]
        # the shared run finds every shape; six small steps in bfloat16 keep it so
        assert sum(found) >= 0.75 * sum(len(v) for v in shapes.values()), (export, found)
    assert json.loads((run_dir / "export" / "model.json").read_text())["step"] == 6


def _bfloat16_ops(fn) -> list[str]:
    """The nodes of a concrete function's graph (nested functions included) that compute
    or hold bfloat16."""
    import tensorflow as tf

    bf16 = tf.bfloat16.as_datatype_enum
    graph = fn.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return [n.name for n in nodes
            if any(a.type == bf16 or bf16 in a.list.type for a in n.attr.values())]


def _matches(predicted, annotated) -> int:
    """Predicted shapes with an annotated shape of their label at IoU >= 0.5."""
    def box(shape):
        xs, ys = shape.points[0::2], shape.points[1::2]
        return min(xs), min(ys), max(xs), max(ys)

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0

    return sum(any(t.label == s.label and iou(box(s), box(t)) >= 0.5 for t in annotated)
               for s in predicted)
