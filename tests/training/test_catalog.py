"""The model catalog: the models of CVAT's training workflow, user entries, Model Garden
configs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers import MODEL, folded

from cvatkit.cli import main
from cvatkit.dataset import Dataset
from cvatkit.errors import CatalogError, CvatkitError
from cvatkit.records import LabelMap
from cvatkit.training import BUILT_IN, DEFAULT_MODEL, get_model, load_catalog, resolve
from cvatkit.training.model_garden import build_experiment

COCO_MODELS = ["retinanet-spinenet-mobile-coco", "retinanet-resnet50-coco"]
SMALL_MODELS = ["ssd-mobilenet-v2-small"]
WORKFLOW_MODELS = ["ssd-mobilenet-v2", "ssd-mobilenet-v1", "ssdlite-mobilenet-v2",
               "frcnn-res50", "frcnn-res101", "frcnn-res101-lowp",
               "frcnn-inc-resv2-atr", "frcnn-nas", "maskrcnn"]
DATA = Dataset(path=Path("/data"), labels=LabelMap.from_names("ab"), train_frames=20, val_frames=4,
                include_masks=True, val_fraction=0.1)


def test_every_seed_model_is_there_with_its_defaults_and_advice(monkeypatch, capsys):
    monkeypatch.delenv("CVATKIT_CATALOG", raising=False)
    keys = [s.key for s in BUILT_IN]
    assert keys == COCO_MODELS + SMALL_MODELS + WORKFLOW_MODELS
    for spec in BUILT_IN[len(COCO_MODELS + SMALL_MODELS):]:
        assert spec.advice and spec.title and spec.weights_note
        if spec.key.startswith("ssd"):
            assert (spec.batch_size, spec.learning_rate) == (24, 0.004)
        else:
            assert (spec.batch_size, spec.learning_rate) == (1, 0.0003)
        assert spec.num_steps == 10000
    assert get_model("frcnn-nas").min_gpus == 0  # SpineNet-49: ResNet-50's memory
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for key in COCO_MODELS + SMALL_MODELS + WORKFLOW_MODELS:
        assert f"{key}" in out
    assert "retinanet-spinenet-mobile-coco (default)" in out and "(default)" not in out[200:]
    # what a run starts from by default, and what else it could
    entry = out[out.index("retinanet-spinenet-mobile-coco"):out.index("retinanet-resnet50")]
    assert "starts from: coco: Mobile SpineNet-49 RetinaNet trained on COCO" in entry
    assert "(or --weights none)" in entry and "Recommended when COCO's weights can be" in entry
    entry = out[out.index("retinanet-resnet50-coco"):out.index("ssd-mobilenet-v2")]
    assert "starts from: coco: RetinaNet ResNet-50 FPN" in entry
    assert "(or --weights imagenet / none)" in entry
    entry = out[out.index("ssd-mobilenet-v2"):out.index("ssd-mobilenet-v1")]
    assert "starts from: none: random initialisation (or --weights imagenet)" in entry
    assert "also known as: ssd-mobilenet-v2-coco, ssd-mobilenetv2" in entry


def test_every_entrys_name_weights_and_advice_agree():
    """A name says COCO only when the entry starts from COCO's weights; one entry is
    recommended where COCO's weights can be had, one where they cannot, and no other
    entry calls itself the default or recommended."""
    recommended = {}
    for spec in BUILT_IN:
        if "coco" in spec.key:
            assert spec.default_weights == "coco" and spec.weights_for("coco"), spec.key
        else:
            assert not spec.weights_for("coco"), spec.key
        assert "Recommended default" not in spec.advice and "use this one" not in spec.advice
        if spec.advice.startswith("Recommended"):
            recommended[spec.key] = spec.advice
        if spec.default_weights == "none":
            assert "random" in spec.advice, spec.key
    assert set(recommended) == {DEFAULT_MODEL, "ssd-mobilenet-v2-small"}
    assert recommended[DEFAULT_MODEL].startswith("Recommended when COCO's weights can be "
                                                 "downloaded")
    assert recommended["ssd-mobilenet-v2-small"].startswith("Recommended without internet")
    assert "The default model" in recommended[DEFAULT_MODEL]


def test_a_user_entry_can_build_on_a_workflow_name(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  mine:\n    base: ssd-mobilenet-v2-coco\n    image_size: 256\n")
    mine = load_catalog(path)["mine"]
    assert (mine.backbone, mine.image_size) == ("mobilenet_v2", 256)


@pytest.mark.parametrize("alias, key", [("ssd-mobilenet-v2-coco", "ssd-mobilenet-v2"),
                                        ("ssd-mobilenetv2", "ssd-mobilenet-v2"),
                                        ("ssd-mobilenet-v1-coco", "ssd-mobilenet-v1"),
                                        ("frcnn-res101-coco", "frcnn-res101"),
                                        ("frcnn-nas-coco", "frcnn-nas"),
                                        ("ssd-mobilenetlite", "ssdlite-mobilenet-v2"),
                                        ("maskrcnn-training", "maskrcnn")])
def test_the_workflows_model_names_are_aliases(alias, key):
    assert get_model(alias).key == key


@pytest.mark.parametrize("key", COCO_MODELS)
def test_coco_entries_build_model_gardens_published_architecture(key):
    """The published checkpoints' configs: retinanet_mobile_coco (SpineNet-Mobile-49,
    identity decoder, 4 separable 48-filter convs, swish, anchor size 3) and
    retinanet_resnetfpn_coco (ResNet-50, FPN of 256, 4 convs of 256); levels 3-7."""
    spec = get_model(key)
    hp, _ = resolve(spec, {"num-steps": 10}, DATA, gpus=0)
    m = build_experiment(spec, hp, DATA).task.model
    assert (m.min_level, m.max_level, m.head.num_convs) == (3, 7, 4)
    assert m.anchor.num_scales == 3 and list(m.anchor.aspect_ratios) == [0.5, 1.0, 2.0]
    if key == "retinanet-spinenet-mobile-coco":
        assert m.backbone.type == "spinenet_mobile" and m.backbone.spinenet_mobile.model_id == "49"
        assert (m.backbone.spinenet_mobile.se_ratio, m.backbone.spinenet_mobile.expand_ratio) \
            == (0.2, 6)
        assert m.decoder.type == "identity" and m.norm_activation.activation == "swish"
        assert (m.head.num_filters, m.head.use_separable_conv, m.anchor.anchor_size) == \
            (48, True, 3.0)
        assert m.input_size == [384, 384, 3]
    else:
        assert m.backbone.type == "resnet" and m.backbone.resnet.model_id == 50
        assert m.decoder.type == "fpn" and m.decoder.fpn.num_filters == 256
        assert (m.head.num_filters, m.head.use_separable_conv, m.anchor.anchor_size) == \
            (256, False, 4.0)
        assert m.norm_activation.activation == "relu" and m.input_size == [640, 640, 3]


def test_unknown_model_suggests_the_closest():
    with pytest.raises(CatalogError, match="did you mean 'ssd-mobilenet-v2'"):
        get_model("ssd-mobilenet-v2-cocoo")


@pytest.mark.parametrize("key", COCO_MODELS + SMALL_MODELS + WORKFLOW_MODELS)
def test_every_entry_makes_a_valid_model_garden_config(key):
    spec = get_model(key)
    data = replace(DATA, include_masks=spec.family == "maskrcnn")
    clones = {"num-clones": spec.min_gpus} if spec.min_gpus else {}
    hp, _ = resolve(spec, {"image-size": 256, "num-steps": 10, **clones},
                    data, gpus=spec.min_gpus)
    exp = build_experiment(spec, hp, data)
    assert exp.task.model.num_classes == 3
    assert exp.task.model.input_size == [256, 256, 3]
    assert exp.task.train_data.input_path == "/data/train-*.tfrecord"
    assert exp.task.annotation_file == "/data/val_coco.json"
    assert exp.trainer.train_steps == 10
    assert exp.task.model.detection_generator.nms_version == "batched"
    hp, _ = resolve(spec, {"image-size": 256, "num-steps": 10, "nms": "v2", **clones},
                    data, gpus=spec.min_gpus)
    assert build_experiment(spec, hp, data).task.model.detection_generator.nms_version == "v2"


def test_the_small_task_model_is_a_half_width_mobilenet_on_three_levels():
    """ssd-mobilenet-v2-small: MobileNetV2 with half the filters, levels 3 to 5 (so any
    multiple of 32 is a size it takes), starting from random weights."""
    import tf_keras
    from official.vision.modeling import factory

    spec = get_model("ssd-mobilenet-v2-small")
    assert spec.weight_kinds == ("none",) and spec.default_weights == "none"
    hp, _ = resolve(spec, {"image-size": 160, "num-steps": 10}, DATA, gpus=0)
    m = build_experiment(spec, hp, DATA).task.model
    assert m.backbone.mobilenet.filter_size_scale == 0.5 and (m.min_level, m.max_level) == (3, 5)
    losses = build_experiment(spec, hp, DATA).task.losses  # boxes pulled until nearly exact
    assert (losses.box_loss_weight, losses.huber_loss_delta) == (100.0, 0.03)
    full = get_model("ssd-mobilenet-v2")
    hp, _ = resolve(full, {"image-size": 192, "num-steps": 10}, DATA, gpus=0)
    other = build_experiment(full, hp, DATA).task.losses
    assert (other.box_loss_weight, other.huber_loss_delta) == (50.0, 0.1)  # Model Garden's
    sizes = {}
    for s in (spec, full):
        hp, _ = resolve(s, {"image-size": 192, "num-steps": 10}, DATA, gpus=0)
        config = build_experiment(s, hp, DATA).task.model
        model = factory.build_retinanet(tf_keras.layers.InputSpec(shape=[None, 192, 192, 3]),
                                        config)
        sizes[s.key] = model.backbone.count_params()
        assert set(model.backbone.output_specs) >= {"3", "4", "5"}
    assert sizes[spec.key] < 0.4 * sizes[full.key]


@pytest.mark.parametrize("key, levels", [("frcnn-inc-resv2-atr", {"3", "4", "5"}),
                                         ("frcnn-nas", {"3", "4", "5", "6", "7"})])
def test_unusual_backbones_build(key, levels):
    """The backbones Model Garden's own configs do not name build through its factory
    from the config cvatkit makes, with the feature levels the decoder takes."""
    import tf_keras
    from official.vision.modeling.backbones import factory

    import cvatkit.training.model_garden.backbones  # noqa: F401

    spec = get_model(key)
    clones = {"num-clones": spec.min_gpus} if spec.min_gpus else {}
    hp, _ = resolve(spec, {"image-size": 128, "num-steps": 1, **clones}, DATA,
                    gpus=spec.min_gpus)
    m = build_experiment(spec, hp, DATA).task.model
    backbone = factory.build_backbone(
        input_specs=tf_keras.layers.InputSpec(shape=[None, 128, 128, 3]),
        backbone_config=m.backbone, norm_activation_config=m.norm_activation)
    assert backbone.count_params() > 1_000_000
    assert set(backbone.output_specs) == levels
    assert {k: v[1] for k, v in backbone.output_specs.items()} == {
        k: 128 // 2 ** int(k) for k in levels}


def test_user_catalog_adds_models(tmp_path, monkeypatch, capsys):
    f = tmp_path / "models.yaml"
    f.write_text("""
models:
  my-ssd:
    base: ssd-mobilenet-v2
    title: SSD for my cameras
    image_size: 512
    overrides:
      task.model.head.num_filters: 96
  tiny-rcnn:
    title: a tiny Faster R-CNN
    family: fasterrcnn
    backbone: mobilenet_v2
    image_size: 256
    batch_size: 2
    learning_rate: 0.01
    num_steps: 50
    advice: for tests
""")
    monkeypatch.setenv("CVATKIT_CATALOG", str(f))
    catalog = load_catalog()
    assert catalog["my-ssd"].image_size == 512 and catalog["my-ssd"].batch_size == 24
    assert catalog["my-ssd"].source == str(f)
    hp, _ = resolve(catalog["my-ssd"], {}, DATA, gpus=0)
    assert build_experiment(catalog["my-ssd"], hp, DATA).task.model.head.num_filters == 96
    assert catalog["tiny-rcnn"].family == "fasterrcnn"
    assert main(["models"]) == 0
    assert "SSD for my cameras" in folded(capsys.readouterr().out)


@pytest.mark.parametrize("text, message", [
    ("models:\n  x:\n    base: nope\n", "base 'nope' is not a model key"),
    ("models:\n  x:\n    base: maskrcnn\n    colour: red\n", "unknown field(s) colour"),
    ("models:\n  x:\n    title: t\n", "needs advice, backbone"),
    ("models:\n  x:\n    base: maskrcnn\n    family: yolo\n", "family 'yolo' is not one of"),
    ("models: [1, 2\n", "line 2: not valid YAML"),
    ("hello: 1\n", "expected a 'models:' mapping"),
    ("models:\n  x:\n    base: maskrcnn\n    overrides:\n      task.model.nothing: 1\n",
     "its overrides do not fit"),
])
def test_bad_user_catalogs_are_named(tmp_path, text, message):
    f = tmp_path / "models.yaml"
    f.write_text(text)
    with pytest.raises(CvatkitError) as e:
        catalog = load_catalog(f)
        spec = catalog["x"]
        data = DATA
        hp, _ = resolve(spec, {}, data, gpus=0)
        build_experiment(spec, hp, data)
    assert message in str(e.value)
    if "overrides" in message:  # a mistake Model Garden finds in the config it is given
        assert "model 'x'" in str(e.value)
    else:
        assert isinstance(e.value, CatalogError) and str(f) in str(e.value)


def _config(key: str, values: dict):
    spec = get_model(key)
    data = replace(DATA, include_masks=spec.family == "maskrcnn")
    hp, _ = resolve(spec, {"num-steps": 1000, **values}, data, gpus=0)
    return build_experiment(spec, hp, data)


def test_schedule_steps_make_a_stepwise_decay():
    opt = _config("ssd-mobilenet-v2", {"schedule-step-1": 400, "schedule-step-2": 800,
                                           "initial-learning-rate": 0.1}).trainer.optimizer_config
    assert opt.learning_rate.type == "stepwise"
    assert list(opt.learning_rate.stepwise.boundaries) == [400, 800]
    assert list(opt.learning_rate.stepwise.values) == pytest.approx([0.1, 0.01, 0.001])
    opt = _config("ssd-mobilenet-v2", {}).trainer.optimizer_config
    assert opt.learning_rate.type == "cosine" and opt.learning_rate.cosine.decay_steps == 1000


def test_warmup_steps_make_a_linear_warmup_from_a_tenth():
    opt = _config("frcnn-res50", {"warmup-steps": 30, "initial-learning-rate": 0.02}) \
        .trainer.optimizer_config
    assert opt.warmup.type == "linear" and opt.warmup.linear.warmup_steps == 30
    assert opt.warmup.linear.warmup_learning_rate == pytest.approx(0.002)
    assert _config("frcnn-res50", {"warmup-steps": 0}).trainer.optimizer_config \
        .warmup.type is None


@pytest.mark.parametrize("key", ["ssd-mobilenet-v2", "frcnn-res50", "maskrcnn"])
def test_augmentation_keys_reach_the_training_parser_only(key):
    exp = _config(key, {"aug-hflip": False, "aug-scale-min": 0.5, "aug-scale-max": 2.0,
                        "aug-type": "randaugment", "aug-jpeg-quality": True})
    train, val = exp.task.train_data.parser, exp.task.validation_data.parser
    assert (train.aug_rand_hflip, train.aug_scale_min, train.aug_scale_max) == (False, 0.5, 2.0)
    assert train.aug_type.type == "randaug" and train.aug_type.randaug.num_layers >= 1
    assert (val.aug_scale_min, val.aug_scale_max) == (1.0, 1.0) and not val.aug_rand_hflip
    if key.startswith("ssd"):  # RetinaNet's parser re-compresses JPEGs; the others have none
        assert train.aug_rand_jpeg.min_quality == 30 and val.aug_rand_jpeg is None
    else:
        assert not hasattr(train, "aug_rand_jpeg")


@pytest.mark.parametrize("key", ["ssd-mobilenet-v2", "frcnn-res50"])
def test_anchor_size_and_weight_decay_reach_the_config(key):
    exp = _config(key, {"anchor-size": 2.5, "l2-weight-decay": 0.001})
    assert exp.task.model.anchor.anchor_size == 2.5
    assert exp.task.losses.l2_weight_decay == 0.001
    from official.core import exp_factory

    default = _config(key, {})
    model_garden = exp_factory.get_exp_config("fasterrcnn_resnetfpn_coco").task.model
    assert default.task.model.anchor.anchor_size == (
        get_model(key).anchor_size if key.startswith("ssd") else model_garden.anchor.anchor_size)
    assert default.task.losses.l2_weight_decay == get_model(key).l2_weight_decay


@pytest.mark.parametrize("folder", ["cars, vans", "set [v2]", "what?", "plain folder"])
def test_the_input_path_model_garden_reads_is_the_dataset_wherever_it_lies(folder, tmp_path):
    """Model Garden splits an input path at commas and globs each part: the experiment's
    path still names the dataset's files, and only them, whatever its folder is called."""
    from official.core.input_reader import match_files

    data = replace(DATA, path=tmp_path / folder / "dataset")
    data.path.mkdir(parents=True)
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
                 "val-00000-of-00001.tfrecord"):
        (data.path / name).write_bytes(b"")
    hp, _ = resolve(get_model(MODEL), {"num-steps": 10}, data, gpus=0)
    exp = build_experiment(get_model(MODEL), hp, data)
    for config, want in ((exp.task.train_data, ["train-00000-of-00002.tfrecord",
                                                "train-00001-of-00002.tfrecord"]),
                         (exp.task.validation_data, ["val-00000-of-00001.tfrecord"])):
        found = sorted(match_files(config.input_path))
        assert [Path(f).name for f in found] == want
        assert all(Path(f).resolve().parent == data.path.resolve() for f in found)


def test_the_input_path_is_plain_when_the_temporary_folder_is_not(tmp_path, monkeypatch):
    import tempfile

    from official.core.input_reader import match_files

    from cvatkit.training.model_garden.input_paths import input_pattern

    odd = tmp_path / "runs, old"
    (odd / "tmp, too").mkdir(parents=True)
    (odd / "train-00000-of-00001.tfrecord").write_bytes(b"")
    monkeypatch.setattr(tempfile, "tempdir", str(odd / "tmp, too"))
    pattern = input_pattern(odd, "train-*.tfrecord")
    assert "," not in pattern
    assert [Path(f).resolve() for f in match_files(pattern)] == [
        (odd / "train-00000-of-00001.tfrecord").resolve()]


@pytest.mark.parametrize("key", COCO_MODELS + SMALL_MODELS)
def test_both_nms_kinds_keep_the_same_boxes_settings(key):
    """The fast NMS (batched) and Model Garden's (v2) differ in how, not in what: the IoU
    above which a box is suppressed, the score floor and the box counts are the same."""
    spec = get_model(key)
    settings = {}
    for nms in ("batched", "v2"):
        hp, _ = resolve(spec, {"nms": nms, "num-steps": 10}, DATA, gpus=0)
        generator = build_experiment(spec, hp, DATA).task.model.detection_generator
        settings[nms] = {k: v for k, v in generator.as_dict().items() if k != "nms_version"}
    assert settings["batched"] == settings["v2"]
    assert settings["v2"]["nms_iou_threshold"] == 0.5  # Model Garden's, as published
