"""Mask R-CNN's three stages: heads only, then the upper backbone, then everything."""

from __future__ import annotations

import numpy as np
import pytest

from cvatkit import open_export, prepare, write_sample
from cvatkit.cli import main
from cvatkit.runs import Run, StepEvent
from cvatkit.training.model_garden.stages import plan_stages

CATALOG = """
models:
  tiny-maskrcnn:
    base: maskrcnn
    title: Mask R-CNN on MobileNetV2, for tests
    backbone: mobilenet_v2
    num_proposals: 64
    overrides:
      task.model.min_level: 3
      task.model.roi_sampler.num_sampled_rois: 32
      task.model.mask_sampler.num_sampled_masks: 8
"""


def test_stage_plan():
    assert [(s.number, s.end_step) for s in plan_stages((2, 0, 1), 10, 4)] == [(1, 6), (3, 9)]
    assert [(s.number, s.end_step) for s in plan_stages((1, 1, 1), 4, 4)] == [(1, 1), (2, 2),
                                                                               (3, 3)]


def _kernels(path):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "kernel/" in k and "OPTIMIZER_SLOT" not in k and not k.startswith("optimizer")}


@pytest.mark.slow  # trains
def test_three_stages_freeze_then_thaw(tmp_path, capsys):
    sample = write_sample(tmp_path / "s", frames=4, test_frames=0)
    data = prepare(open_export(sample.task), tmp_path / "d", val_fraction=0.0).path
    (tmp_path / "models.yaml").write_text(CATALOG)
    run_dir = tmp_path / "run"
    code = main(["train", "--data", str(data), "--model", "tiny-maskrcnn", "--catalog",
                 str(tmp_path / "models.yaml"), "--run-dir", str(run_dir), "--hparams",
                 "stage-1-epochs=1;stage-2-epochs=1;stage-3-epochs=1;batch-size=4;"
                 "image-size=128;log-interval=1"])
    assert code == 0, (run_dir / "trainer.log").read_text()[-3000:]
    run = Run(run_dir)
    steps = [(e.step, e.stage) for e in run.events() if isinstance(e, StepEvent)]
    assert steps == [(1, 1), (2, 2), (3, 3)]
    ck = {n: _kernels(run_dir / "checkpoints" / f"ckpt-{n}") for n in (0, 1, 2, 3)}
    backbone = sorted(k for k in ck[0] if k.startswith("backbone/"))
    heads = sorted(k for k in ck[0] if not k.startswith("backbone/"))
    assert backbone and heads

    def changed(a, b, keys):
        return [k for k in keys if not np.array_equal(ck[a][k], ck[b][k])]

    assert changed(0, 1, backbone) == []                      # stage 1: backbone frozen
    assert len(changed(0, 1, heads)) > len(heads) // 2        # ... heads learn
    moved = changed(1, 2, backbone)                           # stage 2: upper half
    assert 0 < len(moved) < len(backbone)
    assert len(changed(2, 3, backbone)) > len(moved)          # stage 3: everything
    assert (run_dir / "export" / "saved_model" / "saved_model.pb").exists()
