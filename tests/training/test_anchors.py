"""The dataset's sizes recorded at prepare time, and the anchors fitted to its boxes:
datasets made for the rules (tiny objects, huge frames, one label, many labels, mixed
frame sizes)."""

from __future__ import annotations

import json

import pytest
from helpers import box, export, folded, frames_of

from cvatkit import open_export, prepare
from cvatkit.cli import main
from cvatkit.dataset.statistics import STATISTICS_JSON, measure, read_statistics
from cvatkit.training import get_model, plan_run
from cvatkit.training.anchors import (AnchorGrid, anchor_fit, anchor_grid, best_anchor_size,
                                      label_fits)

SMALL = get_model("ssd-mobilenet-v2-small")  # RetinaNet levels 3..5, anchor-size 3


def test_the_statistics_of_mixed_frames_and_labels():
    frames = (frames_of(640, 480, [box("cell", 10, 10, 20, 40), box("cell", 100, 100, 40, 20)])
              + frames_of(1920, 1080, [box("car", 0, 0, 192, 96)], count=2)
              + frames_of(100, 100, []))
    stats = measure(frames, ["cell", "car", "bird"])
    assert stats.frame_sizes == {"640x480": 4, "100x100": 4, "1920x1080": 2}
    assert stats.objects_per_frame == (1.0, 2.0)  # 0, 0, 0, 0, 1, 1, 2, 2, 2, 2
    assert set(stats.labels) == {"cell", "car"}  # a label with no box has no sizes
    assert stats.labels["cell"].boxes == 8 and stats.labels["cell"].short_side[1] == 20
    assert stats.labels["car"].relative_side[1] == pytest.approx((192 * 96) ** 0.5 / 1920)
    assert stats.labels["cell"].aspect == (0.5, pytest.approx(1.25), 2.0)
    # each box over its own frame's longer side, whatever the frame's size
    assert sorted(set(stats.boxes_of("car"))) == [(0.1, 0.05)]
    assert len(stats.boxes_of()) == 10
    text = folded("\n".join(stats.format()))
    assert "640x480 (4), 100x100 (4), 1920x1080 (2)" in text
    assert "cell 20 / 20 / 20 px" in text


def test_anchor_shapes_and_fit():
    grid = AnchorGrid(3, 3, anchor_size=2, num_scales=1, aspect_ratios=(1.0,))
    assert grid.shapes() == [(16.0, 16.0)]
    # at 160 px a box of a tenth of the frame is 16 px: a perfect fit; a 5 px one is not
    assert anchor_fit([(0.1, 0.1)], grid, 160) == 1.0
    assert anchor_fit([(0.1, 0.1), (5 / 160, 5 / 160)], grid, 160) == 0.5
    assert anchor_fit([], grid, 160) == 1.0
    own = anchor_grid(SMALL)
    assert (own.min_level, own.max_level, own.anchor_size) == (3, 5, 3.0)
    assert len(own.shapes()) == 3 * 3 * 3


def test_tiny_objects_get_smaller_anchors_and_big_ones_keep_the_models():
    tiny = {"dot": [(12 / 640, 12 / 640)] * 20}  # 6 px at 320
    size, fit = best_anchor_size(tiny, SMALL, 320)
    assert size < SMALL.anchor_size and fit == 1.0
    big = {"car": [(0.3, 0.2)] * 20}
    assert best_anchor_size(big, SMALL, 320) == (SMALL.anchor_size, 1.0)
    # a label the anchors miss decides, however many boxes the others have
    mixed = {"cell": [(0.15, 0.15)] * 300, "dot": [(0.04, 0.04)] * 20}
    fits = label_fits(mixed, anchor_grid(SMALL), 320)
    assert fits["cell"] == 1.0 and fits["dot"] < 0.9
    size, _ = best_anchor_size(mixed, SMALL, 320)
    assert min(label_fits(mixed, anchor_grid(SMALL, size), 320).values()) >= 0.9
    # too few boxes of a label to weigh in
    assert "rare" not in label_fits({"rare": [(0.01, 0.01)] * 4}, anchor_grid(SMALL), 320)


def test_prepare_records_the_sizes_and_the_plan_fits_the_anchors(tmp_path, capsys):
    # one label of small objects on huge frames: 24 px in 1920 px frames are 4 px at 320
    frames = frames_of(1920, 1080, [box("dot", 100 * i, 50, 24, 24) for i in range(1, 9)])
    data = prepare(open_export(export(tmp_path, frames, ["dot"])), tmp_path / "d",
                   val_fraction=0.0)
    assert "1920x1080 (4)" in folded("\n".join(data.report.sizes))
    stats = read_statistics(data.path)
    assert stats is not None and len(stats.boxes_of("dot")) == 32
    json.loads((data.path / STATISTICS_JSON).read_text())  # plain JSON

    plan = plan_run(data.path, SMALL.key, "image-size=640")
    note = next(n for n in plan.notes if "anchor" in n)
    assert plan.hparams.anchor_size < SMALL.anchor_size
    assert note.startswith(f"anchor-size={plan.hparams.anchor_size:g}: at 640 px the "
                           "model's own anchors (anchor-size=3) fit 0% of the training boxes")
    # what the user sets wins; the note still says how well it fits
    plan = plan_run(data.path, SMALL.key, "image-size=640\nanchor-size=3")
    assert plan.hparams.anchor_size == 3
    assert any("the anchors (anchor-size=3) fit 0% of the training boxes at 640 px (dot 0%)"
               in n for n in plan.notes)

    assert main(["train", "--plan", "--data", str(data.path), "--model", SMALL.key,
                 "--hparams", "image-size=640"]) == 0
    out = capsys.readouterr().out
    assert f"{SMALL.key} on {data.path}" in out and "image-size=640" in out
    assert "note: anchor-size=" in out
    assert not (tmp_path / "r").exists()


def test_a_dataset_prepared_before_the_sizes_were_recorded_plans_as_before(tmp_path):
    frames = frames_of(320, 320, [box("cat", 10, 10, 100, 100)])
    data = prepare(open_export(export(tmp_path, frames, ["cat"])), tmp_path / "d",
                   val_fraction=0.0)
    (data.path / STATISTICS_JSON).unlink()
    plan = plan_run(data.path, SMALL.key, "")
    assert plan.hparams.anchor_size is None and not any("anchor" in n for n in plan.notes)
    (data.path / STATISTICS_JSON).write_text("{damaged")
    assert read_statistics(data.path) is None
