"""The recipe fitted to the task when the user sets nothing: the input size from the frames
and their smallest objects, the steps from the frame count, on datasets made for the rules
(tiny objects, huge frames, small frames, one label, many labels, mixed frame sizes)."""

from __future__ import annotations

from helpers import box, export, frames_of

from cvatkit import open_export, prepare
from cvatkit.cli import main
from cvatkit.dataset.statistics import STATISTICS_JSON, measure
from cvatkit.training import get_model, plan_run
from cvatkit.training.recipe import (MAX_STEPS, MIN_OBJECT_PX, MIN_STEPS, fitted_image_size,
                                     fitted_steps)

SMALL = get_model("ssd-mobilenet-v2-small")  # 320 px, coarsest stride 32
SSD = get_model("ssd-mobilenet-v2")  # 320 px, coarsest stride 64


def stats_of(frames, labels):
    return measure(frames, labels)


def test_tiny_objects_in_huge_frames_grow_the_input_up_to_twice_the_models():
    dots = frames_of(4000, 3000, [box("dot", 100 * i, 50, 20, 20) for i in range(1, 9)])
    size, why = fitted_image_size(SMALL, stats_of(dots, ["dot"]))
    assert size == 2 * SMALL.image_size  # 16 px would take 3200 px: bounded
    assert "16 px would take 3200, over 2x the model's 320" in why
    assert "(dot, 10% of them under 0.5% of the frame) are 3 px across at 640" in why


def test_small_objects_ask_for_just_enough_pixels():
    # 24 px cells in 1280 px frames: 16 px would need 853
    cells = frames_of(1280, 960, [box("cell", 100 * i, 50, 24, 24) for i in range(1, 9)])
    assert fitted_image_size(SMALL, stats_of(cells, ["cell"]))[0] == 640  # twice the model's
    ok = frames_of(1280, 960, [box("cell", 100 * i, 50, 48, 48) for i in range(1, 9)])
    size, why = fitted_image_size(SMALL, stats_of(ok, ["cell"]))
    assert size == 416 and 48 * 416 / 1280 >= MIN_OBJECT_PX - 0.5  # 16/(48/1280) = 427
    assert why.startswith("image-size=416 (the model's is 320)")


def test_big_objects_in_huge_frames_keep_the_models_size():
    cars = frames_of(1920, 1080, [box("car", 0, 0, 400, 300)] * 6)
    assert fitted_image_size(SMALL, stats_of(cars, ["car"])) == (
        320, "image-size=320, the model's: the frames' median longer side is 1920 px; the "
             "smallest objects (car, 10% of them under 18.0% of the frame) are 58 px across "
             "at 320")


def test_small_frames_train_at_their_own_size_to_the_models_multiple():
    shapes = frames_of(160, 128, [box("square", 10, 10, 30, 30)] * 6)
    size, why = fitted_image_size(SMALL, stats_of(shapes, ["square"]))
    assert size == 160 and "the frames are smaller than the model's 320" in why
    assert fitted_image_size(SSD, stats_of(shapes, ["square"]))[0] == 192  # a multiple of 64


def test_the_smallest_label_with_enough_boxes_decides():
    frames = frames_of(1280, 960, [box("rbc", 10, 10, 160, 160)] * 5
                       + [box("platelet", 300, 300, 48, 48)] * 5
                       + [box("stray", 600, 600, 8, 8)])  # 4 boxes in all: too few to weigh
    stats = stats_of(frames, ["rbc", "platelet", "stray", "none"])
    size, why = fitted_image_size(SMALL, stats)
    assert size == 416 and "(platelet," in why
    one = stats_of(frames_of(1280, 960, [box("rbc", 10, 10, 160, 160)] * 5), ["rbc"])
    assert fitted_image_size(SMALL, one)[0] == 320


def test_mixed_frame_sizes_take_the_median_longer_side():
    frames = (frames_of(200, 150, [box("a", 0, 0, 60, 60)], count=5)
              + frames_of(4000, 3000, [box("a", 0, 0, 1200, 1200)], count=2))
    size, why = fitted_image_size(SMALL, stats_of(frames, ["a"]))
    assert size == 192 and "median longer side is 200 px" in why
    assert fitted_image_size(SMALL, stats_of([], ["a"])) is None


def test_steps_from_random_weights_follow_the_frame_count():
    assert fitted_steps(263, 16)[0] == 1000  # BCCD's training frames
    steps, why = fitted_steps(263, 16)
    assert why == ("num-steps=1000: 60 passes over 263 training frames at batch 16, for a "
                   "run from random weights")
    assert fitted_steps(20, 16)[0] == MIN_STEPS and "at least" in fitted_steps(20, 16)[1]
    assert fitted_steps(100_000, 16)[0] == MAX_STEPS
    assert "set num-steps for more" in fitted_steps(100_000, 16)[1]


def test_the_plan_takes_the_fitted_recipe_and_what_the_user_sets_wins(tmp_path, capsys):
    frames = frames_of(1280, 960, [box("cell", 100 * i, 50, 48, 48) for i in range(1, 9)],
                       count=20)
    data = prepare(open_export(export(tmp_path, frames, ["cell"])), tmp_path / "d",
                   val_fraction=0.0)
    plan = plan_run(data.path, SMALL.key, "", weights="none")
    assert (plan.hparams.image_size, plan.hparams.num_steps) == (416, MIN_STEPS)
    assert plan.notes[0].startswith("no hyperparameters given: training with the recipe "
                                    "fitted to the dataset for ssd-mobilenet-v2-small")
    assert any(n.startswith("image-size=416 (the model's is 320)") for n in plan.notes)
    assert any(n.startswith("num-steps=300: 60 passes over 20 training frames")
               for n in plan.notes)
    assert any(n.startswith("learning rate: 30 steps of warm-up") for n in plan.notes)
    assert any(n.startswith("augmentation: random horizontal flips") for n in plan.notes)
    assert not any("recommended num-steps" in n for n in plan.notes)

    plan = plan_run(data.path, SMALL.key, "image-size=320\nnum-steps=50", weights="none")
    assert (plan.hparams.image_size, plan.hparams.num_steps) == (320, 50)
    assert "image-size=320 as given, in place of the fitted image-size=416" in plan.notes[0]
    assert "num-steps=50 as given, in place of the fitted num-steps=300" in plan.notes[1]

    # from trained weights the steps are the model's, with the workflow's rule of thumb
    plan = plan_run(data.path, "ssd-mobilenet-v2", "", weights="imagenet", fetch=False)
    assert (plan.hparams.image_size, plan.hparams.num_steps) == (448, 10000)
    assert any("recommended num-steps for 20 training frames at batch 24 from trained "
               "weights" in n for n in plan.notes)
    assert main(["train", "--plan", "--data", str(data.path), "--model", SMALL.key]) == 0
    out = capsys.readouterr().out
    assert "image-size=416\n" in out and "note: image-size=416 (the model's is 320)" in out

    (data.path / STATISTICS_JSON).unlink()  # prepared before the statistics: as before
    plan = plan_run(data.path, SMALL.key, "", weights="none")
    assert (plan.hparams.image_size, plan.hparams.num_steps) == (320, SMALL.num_steps)
    assert any("recommended num-steps for 20 training frames at batch 16:" in n
               for n in plan.notes)  # from random weights: not said to be trained ones
