"""The model catalog: the models of CVAT's training workflow, user entries, Model Garden
configs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cvatkit.cli import main
from cvatkit.dataset import Dataset
from cvatkit.errors import CatalogError, CvatkitError
from cvatkit.records import LabelMap
from cvatkit.training import BUILT_IN, get_model, load_catalog, resolve
from cvatkit.training.model_garden import build_experiment

WORKFLOW_MODELS = ["ssd-mobilenet-v2-coco", "ssd-mobilenet-v1-coco", "ssdlite-mobilenet-v2",
               "frcnn-res50-coco", "frcnn-res101-coco", "frcnn-res101-lowp",
               "frcnn-inc-resv2-atr-coco", "frcnn-nas-coco", "maskrcnn"]
DATA = Dataset(path=Path("/data"), labels=LabelMap.from_names("ab"), train_frames=20, val_frames=4,
                include_masks=True, val_fraction=0.1)


def test_every_seed_model_is_there_with_its_defaults_and_advice(monkeypatch, capsys):
    monkeypatch.delenv("CVATKIT_CATALOG", raising=False)
    keys = [s.key for s in BUILT_IN]
    assert keys == WORKFLOW_MODELS
    for spec in BUILT_IN:
        assert spec.advice and spec.title and spec.weights_note
        if spec.key.startswith("ssd"):
            assert (spec.batch_size, spec.learning_rate) == (24, 0.004)
        else:
            assert (spec.batch_size, spec.learning_rate) == (1, 0.0003)
        assert spec.num_steps == 10000
    assert get_model("frcnn-nas-coco").min_gpus == 2
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for key in WORKFLOW_MODELS:
        assert f"{key}" in out
    assert "needs >= 2 GPUs" in out and "ssd-mobilenet-v2-coco (default)" in out


def test_unknown_model_suggests_the_closest():
    with pytest.raises(CatalogError, match="did you mean 'ssd-mobilenet-v2-coco'"):
        get_model("ssd-mobilenet-v2-cocoo")


@pytest.mark.parametrize("key", WORKFLOW_MODELS)
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


@pytest.mark.parametrize("key, levels", [("frcnn-inc-resv2-atr-coco", {"3", "4", "5"}),
                                         ("frcnn-nas-coco", {"3", "4", "5", "6", "7"})])
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
    base: ssd-mobilenet-v2-coco
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
    assert "SSD for my cameras" in capsys.readouterr().out


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
