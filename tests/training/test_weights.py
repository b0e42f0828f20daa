"""Initial weights: downloaded when asked for, cached, verified; from a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import tarfile
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fakes.progress import Recorder
from helpers import folded

from cvatkit.errors import WeightsError
from cvatkit.training import Weights, fetch_weights, get_model, read_record


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    _Handler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", _Handler.requests
    server.shutdown()


def _checkpoint(folder, values):
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    return tf.train.Checkpoint(v=tf.Variable(values)).write(str(folder / "ckpt-7"))


def test_archive_is_fetched_once_then_served_from_the_verified_cache(http, tmp_path):
    import tensorflow as tf

    root, url, requests = http
    prefix = _checkpoint(tmp_path / "made", [1.0, 2.0])
    with tarfile.open(root / "w.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "made", arcname="ckpt")
    weights = Weights(description="test weights", urls=(f"{url}/w.tar.gz",))
    seen = Recorder()
    path = fetch_weights(weights, cache=tmp_path / "cache", progress=seen)
    assert path.name == "ckpt-7"
    np.testing.assert_array_equal(tf.train.load_checkpoint(str(path)).get_tensor(
        "v/.ATTRIBUTES/VARIABLE_VALUE"), [1.0, 2.0])
    size = (root / "w.tar.gz").stat().st_size
    assert seen.starts == [("downloading w.tar.gz", size, "B")] and seen.done == size
    assert fetch_weights(weights, cache=tmp_path / "cache") == path
    assert requests == ["/w.tar.gz"]
    # A cached file that changed on disk is caught before it is used.
    archive = next((tmp_path / "cache").rglob("w.tar.gz"))
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="no longer matches its SHA-256"):
        fetch_weights(weights, cache=tmp_path / "cache")
    assert prefix == str(tmp_path / "made" / "ckpt-7")  # what went into the archive


def test_checkpoint_files_and_expected_digests(http, tmp_path):
    root, url, _ = http
    _checkpoint(root, [3.0])
    names = ("ckpt-7.index", "ckpt-7.data-00000-of-00001")
    good = {n: hashlib.sha256((root / n).read_bytes()).hexdigest() for n in names}
    weights = Weights(description="files", urls=tuple(f"{url}/{n}" for n in names),
                      checkpoint="ckpt-7", sha256=good)
    assert fetch_weights(weights, cache=tmp_path / "c1").name == "ckpt-7"
    bad = replace(weights, sha256={**good, names[0]: "0" * 64})
    with pytest.raises(WeightsError, match="the catalog expects 000"):
        fetch_weights(bad, cache=tmp_path / "c2")
    assert not list((tmp_path / "c2").rglob("*.index"))  # nothing half-kept


def test_download_errors_are_named(http, tmp_path):
    _root, url, _ = http
    with pytest.raises(WeightsError, match="the server answered 404"):
        fetch_weights(Weights(description="x", urls=(f"{url}/missing.tar.gz",)),
                      cache=tmp_path)
    with pytest.raises(WeightsError, match="could not download http://127.0.0.1:9/"):
        fetch_weights(Weights(description="x", urls=("http://127.0.0.1:9/w.tar.gz",)),
                      cache=tmp_path)
    (_root / "empty.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(WeightsError, match="is not a readable archive"):
        fetch_weights(Weights(description="x", urls=(f"{url}/empty.tar.gz",)), cache=tmp_path)


@pytest.mark.slow  # builds or trains detectors
def test_pretrained_backbone_reaches_the_model(http, tmp_path, prepared, monkeypatch):
    """--pretrained: the catalog's weights are fetched and Model Garden loads them into
    the backbone."""
    import tensorflow as tf
    from official.core import task_factory

    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment

    root, url, _ = http
    spec = get_model("ssd-mobilenet-v2")
    hp_text = "image-size=128;num-steps=1".replace(";", "\n")
    plan = plan_run(prepared.path, spec.key, hp_text)
    exp = build_experiment(plan.spec, plan.hparams, plan.data)
    donor = task_factory.get_task(exp.task).build_model()
    for v in donor.backbone.weights:
        v.assign(tf.fill(v.shape, 0.5) if v.dtype.is_floating else v)
    tf.train.Checkpoint(backbone=donor.backbone).write(str(root / "bb" / "ckpt-1"))
    with tarfile.open(root / "bb.tar.gz", "w:gz") as tar:
        tar.add(root / "bb", arcname="bb")
    local = replace(spec, weights=Weights(description="a backbone made in this test",
                                          urls=(f"{url}/bb.tar.gz",)))
    monkeypatch.setenv("CVATKIT_CACHE", str(tmp_path / "cache"))
    plan = plan_run(prepared.path, spec.key, hp_text, pretrained=True,
                    catalog={spec.key: local})
    assert plan.init.kind == "imagenet" and plan.init.modules == "backbone"
    assert plan.weights == "imagenet"
    exp = build_experiment(plan.spec, plan.hparams, plan.data,
                           init_checkpoint=plan.init.path, init_modules=plan.init.modules)
    task = task_factory.get_task(exp.task)
    model = task.build_model()
    task.initialize(model)
    kernel = next(v for v in model.backbone.weights if "kernel" in v.name)
    np.testing.assert_allclose(kernel.numpy(), 0.5)


@pytest.mark.slow  # builds or trains detectors
def test_keras_h5_weights_reach_the_inception_resnet_v2_backbone(http, tmp_path):
    import tensorflow as tf
    import tf_keras

    from cvatkit.training.model_garden.backbones import InceptionResNetV2Backbone

    root, url, _ = http
    donor = tf_keras.applications.InceptionResNetV2(include_top=False, weights=None,
                                                    input_shape=(96, 96, 3))
    for v in donor.weights:
        v.assign(tf.fill(v.shape, 0.25))
    donor.save_weights(str(root / "irv2_notop.h5"))
    weights = Weights(description="Inception-ResNet-v2 made in this test",
                      urls=(f"{url}/irv2_notop.h5",), checkpoint="irv2_notop.h5",
                      kind="keras_h5")
    path = fetch_weights(weights, cache=tmp_path / "cache")
    backbone = InceptionResNetV2Backbone(tf_keras.layers.InputSpec(shape=[None, 128, 128, 3]))
    backbone.load_keras_weights(str(path))
    assert all(np.allclose(v.numpy(), 0.25) for v in backbone.weights)
    assert {k: tuple(v) for k, v in backbone.output_specs.items()} == {
        "3": (None, 16, 16, 320), "4": (None, 8, 8, 1088), "5": (None, 4, 4, 1536)}


def _published_detector(spec, prepared, root, name: str, num_classes: int = 91):
    """A detector of ``spec``'s architecture trained on ``num_classes`` classes, saved the
    way Model Garden's trainer saves (a root with the model, its modules and the step),
    archived flat as Model Garden publishes its COCO checkpoints; its variables."""
    import copy

    import tensorflow as tf
    from official.core import task_factory

    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment
    from cvatkit.training.model_garden.fitting import _build

    plan = plan_run(prepared.path, spec.key, "image-size=128\nnum-steps=1", weights="none")
    task_config = copy.deepcopy(build_experiment(plan.spec, plan.hparams, plan.data).task)
    task_config.model.num_classes = num_classes
    donor = task_factory.get_task(task_config).build_model()
    _build(donor, task_config.model.input_size)
    rng = np.random.default_rng(3)
    for v in donor.weights:
        v.assign(rng.normal(size=v.shape).astype(v.dtype.as_numpy_dtype))
    made = root.parent / "made"
    ckpt = tf.train.Checkpoint(global_step=tf.Variable(277200, dtype=tf.int64), model=donor,
                               **donor.checkpoint_items)
    tf.train.CheckpointManager(ckpt, str(made), max_to_keep=1).save(checkpoint_number=277200)
    with tarfile.open(root / name, "w:gz") as tar:
        for f in sorted(made.iterdir()):
            tar.add(f, arcname=f.name)  # ckpt-277200.index, .data-..., checkpoint
    return {m: [v.numpy() for v in getattr(donor, m).weights] for m in donor.checkpoint_items}


@pytest.mark.slow  # builds or trains detectors
def test_a_coco_detector_loads_whole_but_its_class_predictor(http, tmp_path, prepared,
                                                             monkeypatch):
    """--weights coco: Model Garden's published COCO detector (91 classes) starts a model
    of the task's 4: every variable whose shape fits is the checkpoint's, the class
    predictor starts afresh."""
    from official.core import task_factory

    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment
    from cvatkit.training.model_garden.fitting import load_fitting

    root, url, requests = http
    spec = get_model("retinanet-spinenet-mobile-coco")
    assert spec.default_weights == "coco" and spec.weight_kinds == ("coco", "none")
    published = _published_detector(spec, prepared, root, "spinenet49mobile.tar.gz")
    local = replace(spec, coco=replace(spec.coco, urls=(f"{url}/spinenet49mobile.tar.gz",)))
    monkeypatch.setenv("CVATKIT_CACHE", str(tmp_path / "cache"))
    plan = plan_run(prepared.path, spec.key, "image-size=128\nnum-steps=1",
                    catalog={spec.key: local})  # coco is the entry's default
    assert plan.weights == "coco" and requests == ["/spinenet49mobile.tar.gz"]
    assert (plan.init.kind, plan.init.modules, plan.init.num_classes) == ("coco", "all", 91)
    assert plan.init.path.endswith("ckpt-277200")
    exp = build_experiment(plan.spec, plan.hparams, plan.data)
    model = task_factory.get_task(exp.task).build_model()
    report = load_fitting(model, exp.task, plan.init.path, plan.init.num_classes)
    assert report.total > 100

    fresh = set()
    for module, values in published.items():
        for ours, theirs in zip(getattr(model, module).weights, values):
            if ours.shape == theirs.shape:
                np.testing.assert_array_equal(ours.numpy(), theirs, err_msg=ours.name)
            else:
                fresh.add(ours.name)
    assert fresh and all("/scores/" in name for name in fresh)  # the class predictor
    assert report.total == sum(len(v) for v in published.values())
    assert report.restored == report.total - len(fresh) and len(report.fresh) == len(fresh)
    assert all(name.startswith("head/scores/") for name in report.fresh), report.fresh
    assert "restored" in report.summary("COCO") and "fresh: head/" in report.summary("COCO")


@pytest.mark.slow  # builds or trains detectors
def test_a_checkpoint_of_another_architecture_is_refused_by_name(http, tmp_path, prepared):
    from official.core import task_factory

    from cvatkit.errors import CvatkitError
    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment
    from cvatkit.training.model_garden.fitting import load_fitting

    root, _url, _ = http
    _published_detector(get_model("ssdlite-mobilenet-v2"), prepared, root, "other.tar.gz")
    with tarfile.open(root / "other.tar.gz") as tar:
        tar.extractall(tmp_path / "other", filter="data")
    plan = plan_run(prepared.path, "retinanet-spinenet-mobile-coco",
                    "image-size=128\nnum-steps=1", weights="none")
    exp = build_experiment(plan.spec, plan.hparams, plan.data)
    model = task_factory.get_task(exp.task).build_model()
    with pytest.raises(CvatkitError, match="does not fit this model's architecture"):
        load_fitting(model, exp.task, str(tmp_path / "other" / "ckpt-277200"), 91)


@pytest.mark.parametrize("fault", ["404", "refused", "truncated", "digest"])
def test_a_failed_download_says_what_to_do_and_keeps_nothing(http, tmp_path, fault):
    root, url, _ = http
    (root / "w.tar.gz").write_bytes(b"x" * 4096)
    urls = {"404": f"{url}/missing.tar.gz", "refused": "http://127.0.0.1:9/w.tar.gz",
            "truncated": f"{url}/w.tar.gz", "digest": f"{url}/w.tar.gz"}
    weights = Weights(description="COCO detector", urls=(urls[fault],),
                      sha256={"w.tar.gz": "0" * 64} if fault == "digest" else {})
    if fault == "truncated":  # the server says 8192 bytes and sends 4096
        _Handler.send_header_orig = _Handler.send_header
        _Handler.send_header = lambda self, k, v: _Handler.send_header_orig(
            self, k, "8192" if k == "Content-Length" else v)
    try:
        with pytest.raises(WeightsError) as e:
            fetch_weights(weights, cache=tmp_path / "cache")
    finally:
        if fault == "truncated":
            _Handler.send_header = _Handler.send_header_orig
    message = str(e.value)
    assert urls[fault] in message
    if fault != "digest":
        assert str(tmp_path / "cache" / "weights" / "downloads" / urls[fault].rsplit("/")[-1]) \
            in message and "--weights none" in message
    left = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert left == [], left  # no partial file, nothing that looks complete


def test_a_file_put_in_the_cache_by_hand_is_used_offline(tmp_path):
    from cvatkit.training.weights import dropped_files

    _checkpoint(tmp_path / "made", [5.0])
    weights = Weights(description="COCO detector", urls=("http://127.0.0.1:9/w.tar.gz",))
    for cache in (tmp_path / "cache", tmp_path / "cache2"):
        dropped_files(cache).mkdir(parents=True)
        with tarfile.open(dropped_files(cache) / "w.tar.gz", "w:gz") as tar:
            tar.add(tmp_path / "made", arcname="ckpt")
    assert fetch_weights(weights, cache=tmp_path / "cache").name == "ckpt-7"  # no network
    bad = replace(weights, sha256={"w.tar.gz": "0" * 64})  # verified like a download
    with pytest.raises(WeightsError, match="the catalog expects 000"):
        fetch_weights(bad, cache=tmp_path / "cache2")


@pytest.mark.slow  # builds or trains detectors
def test_cvatkit_train_from_coco_says_what_it_restored(http, tmp_path, prepared, monkeypatch,
                                                       capsys):
    """A user catalog entry on the COCO detector; `cvatkit train` downloads its weights,
    the trainer loads them and run.json, the events and trainer.log say how many
    variables came from them and which start afresh."""

    from cvatkit.cli import main
    from cvatkit.runs import Run, StatusEvent
    from cvatkit.training import stop_run

    root, url, _ = http
    _published_detector(get_model("retinanet-spinenet-mobile-coco"), prepared, root,
                        "coco.tar.gz")
    catalog = tmp_path / "models.yaml"
    catalog.write_text(f"""models:
  my-coco:
    base: retinanet-spinenet-mobile-coco
    coco:
      description: the COCO detector of this test
      urls: ["{url}/coco.tar.gz"]
      modules: all
      num_classes: 91
""")
    monkeypatch.setenv("CVATKIT_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    assert main(["models", "--catalog", str(catalog)]) == 0
    listing = capsys.readouterr().out
    entry = listing[listing.index("my-coco:"):]
    assert "starts from: coco: the COCO detector of this test (or --weights none)" in entry
    assert main(["train", "--data", str(prepared.path), "--model", "my-coco", "--catalog",
                 str(catalog), "--run-dir", str(run_dir), "--detach", "--hparams",
                 "image-size=128;num-steps=50;log-interval=1"]) == 0
    run = Run(run_dir)
    try:
        started = next(e for e in run.follow(timeout=600)
                       if isinstance(e, StatusEvent) and e.state != "starting")
    finally:
        stop_run(run_dir, wait=600)
    assert started.state == "running", (run_dir / "trainer.log").read_text()[-2000:]
    record = read_record(run_dir)
    loaded = record.init_loaded
    assert record.weights == "coco" and record.init is not None and record.init.kind == "coco"
    assert loaded is not None and loaded.restored == loaded.total - len(loaded.fresh)
    assert loaded.fresh == ("head/scores/pointwise_kernel", "head/scores/bias")
    said = f"restored {loaded.restored} of {loaded.total} variables from the COCO " \
           "detector of this test; fresh: head/scores/pointwise_kernel, head/scores/bias"
    assert said in started.message
    assert said in (run_dir / "trainer.log").read_text()


@pytest.mark.slow  # builds or trains detectors
def test_export_pretrained_pre_annotates_with_cocos_labels_before_any_training(
        http, tmp_path, prepared, sample_cvat, monkeypatch, capsys):
    """`cvatkit export-pretrained`: the COCO detector as a model with COCO's label map,
    which predicts at once and pre-annotates a task through a label mapping."""
    import json

    import tensorflow as tf

    from cvatkit.cli import main
    from cvatkit.training.coco_classes import COCO_CLASSES

    root, url, _ = http
    published = _published_detector(get_model("retinanet-spinenet-mobile-coco"), prepared,
                                    root, "coco.tar.gz")
    catalog = tmp_path / "models.yaml"
    catalog.write_text(f"""models:
  coco-128:
    base: retinanet-spinenet-mobile-coco
    image_size: 128
    coco: {{description: the COCO detector of this test, urls: ["{url}/coco.tar.gz"],
            modules: all, num_classes: 91}}
""")
    monkeypatch.setenv("CVATKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "coco-model"
    assert main(["export-pretrained", "ssd-mobilenet-v2", str(out), "--catalog",
                 str(catalog)]) == 2
    assert "has no COCO-trained detector to export; these have: " \
           "retinanet-spinenet-mobile-coco, retinanet-resnet50-coco, coco-128" in \
           folded(capsys.readouterr().err) and not out.exists()
    assert main(["export-pretrained", "coco-128", str(out), "--catalog", str(catalog)]) == 0
    about = json.loads((out / "model.json").read_text())
    assert about["labels"] == list(COCO_CLASSES) and about["labels"][0] == "person"
    assert about["weights"] == "the COCO detector of this test" and about["nms"] == "batched"
    assert (out / "classes.csv").read_text().splitlines()[:3] == ["labels", "person",
                                                                  "bicycle"]
    # the published detector whole, its class predictor too (COCO's 91 classes)
    reader = tf.train.load_checkpoint(str(out / "checkpoint"))
    exported = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                if k.startswith("model/_head/")]
    head = published["head"]
    assert len(exported) == len(head) > 10
    assert all(any(e.shape == h.shape and np.array_equal(e, h) for e in exported)
               for h in head)
    assert tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    capsys.readouterr()
    assert main(["predict", str(out), str(sample_cvat.parent / "test.zip"), "--out",
                 str(tmp_path / "preds"), "--threshold", "0", "--limit", "2"]) == 0
    assert main(["annotate", str(out), "--source", str(sample_cvat.parent / "test.zip"),
                 "--out", str(tmp_path / "pre.zip"), "--threshold", "0", "--map",
                 "person=square", "--drop-unmapped"]) == 0
    said = folded(capsys.readouterr().out)
    assert "person" in said and "-> square" in said and (tmp_path / "pre.zip").is_file()


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "retinanet-spinenet-mobile-coco", "weights": "imagenet"},
     "retinanet-spinenet-mobile-coco has no published imagenet weights; it can start from "
     "coco, none, an earlier run or a store version"),
    ({"weights": "random"}, "weights='random': use none (random initialisation), coco or "
                            "imagenet, a run folder or a store version"),
    ({"weights": "none", "init_checkpoint": "somewhere"},
     "give one of weights and a starting checkpoint, not both"),
    ({"weights": "none", "reinit_heads": True},
     "--reinit-heads applies to a run or store version to start from; the run starts from "
     "none"),
    ({"weights": "no-such-run"}, "no-such-run is not a cvatkit run or one of its checkpoints"),
])
def test_a_wrong_weights_choice_is_named_before_anything_is_fetched(prepared, kwargs, message):
    from cvatkit.errors import UsageError
    from cvatkit.training import plan_run

    kwargs = {"model": "ssd-mobilenet-v2", **kwargs}
    with pytest.raises(UsageError) as e:
        plan_run(prepared.path, hparams_text="image-size=128", **kwargs)
    assert message in str(e.value)


def test_the_app_shows_the_download_of_published_weights(http, tmp_path, prepared,
                                                         monkeypatch):
    from cvatkit.widgets import App, ModelState, TraitProgress

    root, url, _ = http
    _checkpoint(tmp_path / "made", [1.0])
    with tarfile.open(root / "w.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "made", arcname="ckpt")
    spec = get_model("ssd-mobilenet-v2")
    local = replace(spec, weights=Weights(description="a backbone of this test",
                                          urls=(f"{url}/w.tar.gz",)))
    monkeypatch.setenv("CVATKIT_CACHE", str(tmp_path / "cache"))
    state = ModelState(catalog={spec.key: local}, model=spec.key, gpus_detected=0,
                       text="image-size=128\nnum-steps=5")
    assert state.start_choices == ["imagenet", "none"]
    state.init_checkpoint = "imagenet"
    app = App(workdir=tmp_path / "work", background=False, autopoll=False, gpus_detected=0)
    shown = []
    app.state.monitor.observe(lambda c: shown.append(c.new), names="activity")
    with TraitProgress(app.state.monitor, "activity") as progress:  # as plan_training does
        plan = state.plan(str(prepared.path), progress=progress)
    assert state.message == "" and plan.weights == "imagenet" and plan.init.kind == "imagenet"
    size = (root / "w.tar.gz").stat().st_size
    assert shown[0] == f"downloading w.tar.gz: 0.0 of {size / 1e6:.1f} MB"
    assert shown[-1] == f"downloading w.tar.gz: {size / 1e6:.1f} of {size / 1e6:.1f} MB"
    app.close()
