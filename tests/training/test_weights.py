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

from cvatkit.errors import WeightsError
from cvatkit.training import Weights, fetch_weights, get_model


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
    seen = []
    path = fetch_weights(weights, cache=tmp_path / "cache",
                         progress=lambda name, done, total: seen.append((name, done, total)))
    assert path.name == "ckpt-7"
    np.testing.assert_array_equal(tf.train.load_checkpoint(str(path)).get_tensor(
        "v/.ATTRIBUTES/VARIABLE_VALUE"), [1.0, 2.0])
    assert seen[-1][1] == seen[-1][2] == (root / "w.tar.gz").stat().st_size
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


def test_pretrained_backbone_reaches_the_model(http, tmp_path, prepared, monkeypatch):
    """--pretrained: the catalog's weights are fetched and Model Garden loads them into
    the backbone."""
    import tensorflow as tf
    from official.core import task_factory

    from cvatkit.training import plan_run
    from cvatkit.training.model_garden import build_experiment

    root, url, _ = http
    spec = get_model("ssd-mobilenet-v2-coco")
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
    assert plan.init.kind == "pretrained" and plan.init.modules == "backbone"
    exp = build_experiment(plan.spec, plan.hparams, plan.data,
                           init_checkpoint=plan.init.path, init_modules=plan.init.modules)
    task = task_factory.get_task(exp.task)
    model = task.build_model()
    task.initialize(model)
    kernel = next(v for v in model.backbone.weights if "kernel" in v.name)
    np.testing.assert_allclose(kernel.numpy(), 0.5)


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
