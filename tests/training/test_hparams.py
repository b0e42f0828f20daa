"""Hyperparameters as users type them, and their resolution against a model and data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cvatkit.dataset import Dataset
from cvatkit.errors import HyperparameterError
from cvatkit.records import LabelMap
from cvatkit.training import (BY_KEY, PARAMS, default_value, format_hparams, get_model, line_values,
                              parse_hparams, recommended_steps, resolve, set_line)

DATA = Dataset(path=Path("/nowhere"), labels=LabelMap.from_names("abc"), train_frames=100,
                val_frames=10, include_masks=False, val_fraction=0.1)


def test_the_workflows_syntax_hyphens_underscores_comments():
    text = """
    # the example of CVAT's original training workflow
    num-steps=100
    batch_size = 8
    --initial_learning_rate=0.01   # pasted from a command line
    aug-hflip=no
    """
    assert parse_hparams(text) == {"num-steps": 100, "batch-size": 8,
                                   "initial-learning-rate": 0.01, "aug-hflip": False}
    assert parse_hparams("num_clones=4") == {"num-clones": 4}
    assert parse_hparams(format_hparams({"num-steps": 5, "aug-hflip": True})) == {
        "num-steps": 5, "aug-hflip": True}


@pytest.mark.parametrize("text, message", [
    ("num-step=10", "line 1: unknown hyperparameter 'num-step'; did you mean 'num-steps'?"),
    ("\nbatchsize=3", "line 2: unknown hyperparameter 'batchsize'; did you mean 'batch-size'?"),
    ("num-steps=abc", "line 1: num-steps='abc' is not a whole number"),
    ("num-steps=1.5", "line 1: num-steps='1.5' is not a whole number"),
    ("initial_learning_rate=0", "line 1: initial-learning-rate=0 must be > 0"),
    ("batch-size=-2", "line 1: batch-size=-2 must be >= 1"),
    ("aug-hflip=maybe", "line 1: aug-hflip='maybe' is not true or false"),
    ("aug-type=mixup", "aug-type='mixup' is not one of none, autoaugment, randaugment"),
    ("num-steps=5\nnum_steps=6", "line 2: num-steps is already set on line 1"),
    ("num-classes=3", "the number of classes comes from the dataset"),
    ("just words", "line 1: 'just words' is not key=value"),
    ("initial-learning-rate=nan", "is not a number"),
    ("early-stopping-patience=-1", "line 1: early-stopping-patience=-1 must be >= 0"),
    ("early-stopping-patience=2.5", "line 1: early-stopping-patience='2.5' is not a whole "
                                    "number"),
    ("export-checkpoint=first", "line 1: export-checkpoint='first' is not one of best, last"),
])
def test_mistakes_name_the_line(text, message):
    with pytest.raises(HyperparameterError) as e:
        parse_hparams(text, origin="hparams.txt")
    assert message in str(e.value)
    assert "hparams.txt" in str(e.value)


def test_defaults_come_from_the_model_and_user_values_win():
    spec = get_model("ssd-mobilenet-v2")
    hp, notes = resolve(spec, {}, DATA, gpus=0)
    assert (hp.batch_size, hp.initial_learning_rate, hp.num_steps, hp.image_size) == (
        24, 0.004, 10000, 320)
    assert any("recommended num-steps" in n and "using 10000" in n for n in notes)
    hp, notes = resolve(spec, {"num-steps": 100, "batch-size": 8}, DATA, gpus=0)
    assert (hp.num_steps, hp.batch_size) == (100, 8)
    assert any("13000" in n for n in notes)  # 100 frames / 8 x 1000, rounded


def test_recommended_steps_follow_the_workflows_rule():
    assert recommended_steps(100, 24) == 4000


def test_batch_scales_with_clones_unless_set():
    spec = get_model("frcnn-res50")
    hp, _ = resolve(spec, {"num-clones": 2}, DATA, gpus=2)
    assert hp.batch_size == 2 and hp.num_clones == 2


@pytest.mark.parametrize("model, values, gpus, message", [
    ("ssd-mobilenet-v2", {"num-clones": 2, "batch-size": 5}, 2,
     "batch-size=5 does not divide over num-clones=2"),
    ("ssd-mobilenet-v2", {"num-clones": 4}, 1, "asks for 4 GPUs but this machine has 1"),
    ("ssd-mobilenet-v2", {"num-clones": 2}, 0, "this machine has none"),
    ("retinanet-spinenet-mobile-coco", {"image-size": 320}, 0,
     "image-size=320 must be a multiple of 128 for retinanet-spinenet-mobile-coco (its "
     "coarsest feature level); try 384"),
    ("ssd-mobilenet-v2", {"stage-1-epochs": 1}, 0, "apply to maskrcnn only"),
    ("maskrcnn", {}, 0, "the dataset has boxes only"),
    ("ssd-mobilenet-v2", {"image-size": 100}, 0,
     "image-size=100 must be a multiple of 64 for ssd-mobilenet-v2 (its coarsest "
     "feature level); try 128"),
    ("ssd-mobilenet-v2", {"image-size": 160}, 0,
     "image-size=160 must be a multiple of 64 for ssd-mobilenet-v2 (its coarsest "
     "feature level); try 192"),
    ("ssd-mobilenet-v2-small", {"image-size": 100}, 0,
     "image-size=100 must be a multiple of 32 for ssd-mobilenet-v2-small (its coarsest "
     "feature level); try 96"),
    ("ssd-mobilenet-v2", {"val-split": 0.2}, 0,
     "the dataset was split with 0.1; prepare it again with --val-split 0.2"),
    ("ssd-mobilenet-v2", {"schedule-step-2": 5}, 0, "needs schedule-step-1"),
    ("ssd-mobilenet-v2", {"schedule-step-1": 50, "schedule-step-2": 50}, 0,
     "schedule-step-2 must come after schedule-step-1"),
    ("ssd-mobilenet-v2", {"num-steps": 100, "schedule-step-1": 100}, 0,
     "schedule-step-1=100 is not before the run's end (num-steps=100)"),
    ("ssd-mobilenet-v2", {"num-steps": 100, "warmup-steps": 200}, 0,
     "warmup-steps=200 is not before the run's end"),
    ("ssd-mobilenet-v2", {"aug-scale-min": 1.5, "aug-scale-max": 1.2}, 0,
     "aug-scale-min=1.5 is above aug-scale-max=1.2"),
    ("ssd-mobilenet-v2", {"batch-size": 5000}, 0, "batch-size=5000 must be <= 4096"),
    ("ssd-mobilenet-v2", {"num-steps": 500, "early-stopping-patience": 2}, 0,
     "early-stopping-patience=2 counts the evaluations during training, but with "
     "eval-interval=0 and num-steps=500 the run evaluates only at its end; set eval-interval "
     "below num-steps (for example eval-interval=50) or remove early-stopping-patience"),
])
def test_context_checks(model, values, gpus, message):
    with pytest.raises(HyperparameterError) as e:
        resolve(get_model(model), values, DATA, gpus=gpus)
    assert message in str(e.value)


def test_maskrcnn_stage_epochs_become_steps():
    data = replace(DATA, include_masks=True)
    hp, _ = resolve(get_model("maskrcnn"), {"stage-1-epochs": 2, "stage-2-epochs": 1,
                                            "stage-3-epochs": 1, "batch-size": 10},
                    data, gpus=0)
    assert hp.num_steps == 4 * 10  # 100 frames at batch 10: 10 steps per epoch
    with pytest.raises(HyperparameterError, match="either num-steps or stage"):
        resolve(get_model("maskrcnn"), {"stage-1-epochs": 1, "num-steps": 5}, data, gpus=0)


def test_maskrcnn_without_stages_trains_the_workflows_three_stages_with_advice():
    data = replace(DATA, include_masks=True)
    hp, notes = resolve(get_model("maskrcnn"), {"batch-size": 10}, data, gpus=0)
    assert (hp.stage_1_epochs, hp.stage_2_epochs, hp.stage_3_epochs) == (1, 1, 1)
    assert hp.num_steps == 3 * 10
    assert any("three stages, by default stage-1-epochs=1" in n and "most of them to stage 1"
               in n for n in notes)
    hp, notes = resolve(get_model("maskrcnn"), {"num-steps": 7}, data, gpus=0)
    assert hp.num_steps == 7 and hp.stage_1_epochs == 0  # one stage when asked for
    assert not any("three stages" in n for n in notes)


def test_a_model_made_for_more_gpus_is_advice_not_a_refusal():
    from cvatkit.training import ModelSpec

    spec = replace(get_model("frcnn-res50"), key="big", min_gpus=2)
    hp, notes = resolve(spec, {}, DATA, gpus=0)
    assert hp.num_clones == 1
    assert any("big was made for 2 or more GPUs; on 1 it may run out of memory" in n
               for n in notes)
    _, notes = resolve(get_model("frcnn-nas"), {}, DATA, gpus=0)  # no longer a refusal
    assert not any("GPUs" in n for n in notes)
    assert isinstance(spec, ModelSpec)


def test_jpeg_augmentation_is_said_to_do_nothing_where_model_garden_has_none():
    _, notes = resolve(get_model("frcnn-res50"), {"aug-jpeg-quality": True}, DATA, gpus=0)
    assert any("aug-jpeg-quality has no effect on frcnn-res50" in n for n in notes)
    _, notes = resolve(get_model("ssd-mobilenet-v2"), {"aug-jpeg-quality": True}, DATA,
                       gpus=0)
    assert not any("aug-jpeg-quality" in n for n in notes)


def test_one_table_gives_the_defaults_the_ranges_and_the_help():
    spec = get_model("ssd-mobilenet-v2")
    hp, _ = resolve(spec, {}, DATA, gpus=0)
    resolved = hp.to_dict()
    for param in PARAMS:
        # what resolve fills in is what the form shows as the default
        assert resolved[param.key] == default_value(spec, param.key, {}, DATA) or \
            param.key == "log-interval"  # capped at num-steps by resolve
        text = param.describe()
        assert text.startswith(param.help) and "default:" in text
        assert param.type is str or param.type is bool or param.max is not None, (
            f"{param.key} has no upper bound")
        if param.max is not None:
            assert f"<= {param.bound(param.max)}" in text
            with pytest.raises(HyperparameterError,
                               match=f"line 1: {param.key}=.* must be <= {param.bound(param.max)}"):
                parse_hparams(f"{param.key}={param.bound(param.max * 2)}")
    size = BY_KEY["image-size"]
    assert "a multiple of 32" in size.describe()  # the help says what the check wants
    with pytest.raises(HyperparameterError, match="line 1: image-size=100 must be a "
                                                  "multiple of 32 .*; try 96"):
        parse_hparams("image-size=100")
    assert BY_KEY["warmup-steps"].describe() == (
        "steps of linear learning-rate warm-up (default: num-steps / 10, at most 500; >= 0, "
        "<= 10000000)")


def test_help_hparams_prints_the_table(capsys):
    from cvatkit.cli import main

    assert main(["train", "--help-hparams"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PARAMS)
    assert all(line.split(None, 1)[1] == p.describe() for line, p in zip(lines, PARAMS))


def test_the_text_is_edited_line_by_line_keeping_the_users_spelling():
    text = "num_steps=300  # long\nlr=0.01\nbad line\n"
    assert line_values(text) == {"num-steps": "300", "initial-learning-rate": "0.01"}
    text = set_line(text, "num-steps", "500")
    assert text == "num_steps=500  # long\nlr=0.01\nbad line\n"
    text = set_line(text, "initial-learning-rate", "")
    assert text == "num_steps=500  # long\nbad line\n"
    assert set_line(text, "batch-size", "8").endswith("batch-size=8\n")
