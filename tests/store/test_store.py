"""The model store on a real S3 server (SeaweedFS) and on a local folder."""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from fakes.progress import Recorder
from helpers import MODEL, folded, run_record

from cvatkit.cli import main
from cvatkit.errors import ChecksumError, StoreError, UsageError
from cvatkit.runs import EvalEvent, Run
from cvatkit.store import list_models, model_pages, open_store, publish, pull
from cvatkit.store.s3_server import serve
from cvatkit.training import InitCheckpoint, plan_run, read_record, write_record


def fake_run(path, *, big: int = 0, created="2026-11-20T10:00:00Z"):
    """A completed run directory as the trainer leaves it (no TensorFlow needed)."""
    run = Run(path)
    path.mkdir(parents=True)
    write_record(run, replace(run_record(labels=("cat", "dog"), model="ssd-mobilenet-v2",
                                         num_steps=5), created=created))
    run.append(EvalEvent(step=5, time=0, ap=0.5, ap50=0.9, per_class={"cat": 0.4, "dog": 0.6}))
    run.set_status("completed", step=5, total_steps=5)
    sm = path / "export" / "saved_model"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"graph" * 1000)
    (sm / "variables" / "variables.index").write_bytes(b"index")
    (sm / "variables" / "variables.data-00000-of-00001").write_bytes(
        bytes(range(256)) * (big // 256) if big else b"weights")
    for name, text in (("classes.csv", "labels\ncat\ndog\n"),
                       ("label_map.json", '{"label_map": {"1": "cat", "2": "dog"}}'),
                       ("label_map.pbtxt", "item {\n  id: 1\n  name: 'cat'\n}\n")):
        (path / "export" / name).write_text(text)
    ck = path / "checkpoints"
    ck.mkdir()
    (ck / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    (ck / "ckpt-5.index").write_bytes(b"i")
    (ck / "ckpt-5.data-00000-of-00001").write_bytes(b"d" * 100)
    return run


def _exported(run: Run) -> str:
    """Where, inside a run or a version of it, the checkpoint its export was made from
    lies: what a new run started from it loads (``checkpoints/best/ckpt-400``)."""
    return str(Path(run.exported_checkpoint()).relative_to(run.path))


def _bucket() -> str:
    """The shared test bucket, and a prefix of this test's own."""
    return f"models/t-{uuid.uuid4().hex[:8]}"


def _secret(server) -> str:
    cp = configparser.ConfigParser()
    cp.read(server.folder / "credentials")
    return cp["cvatkit-local"]["aws_secret_access_key"]


@pytest.fixture(params=[pytest.param("s3", marks=pytest.mark.slow), "folder"])
def store(request, tmp_path):
    if request.param == "folder":  # a name its file:// URI must encode
        return open_store(str(tmp_path / "a store, 100% [odd]"))
    request.getfixturevalue("s3_env")
    return open_store(f"s3://{_bucket()}/team", create_bucket=True)


def test_publish_list_pull(store, tmp_path):
    run = fake_run(tmp_path / "run")
    v = publish(run.path, store, "lab")
    assert v.model_key == "ssd-mobilenet-v2" and v.labels == ("cat", "dog")
    assert v.metrics["ap50"] == 0.9 and v.created == "2026-11-20T10:00:00Z"
    assert v.uri.endswith(f"/lab/models/ssd-mobilenet-v2/{v.version}")
    # The same run again is the same version.
    assert publish(run.path, store, "lab") == v
    fake_run(tmp_path / "newer", created="2026-11-21T10:00:00Z")
    newer = publish(tmp_path / "newer", store, "lab")
    assert [x.version for x in list_models(store, "lab")] == [newer.version, v.version]
    assert list_models(store, "other") == []
    dest = pull(v.uri, tmp_path / "pulled")
    for src, rel in ((run.path / "export" / "saved_model" / "saved_model.pb",
                      "saved_model/saved_model.pb"),
                     (run.path / "checkpoints" / "ckpt-5.index", "checkpoints/ckpt-5.index"),
                     (run.path / "export" / "classes.csv", "classes.csv")):
        assert (dest / rel).read_bytes() == src.read_bytes()
    manifest = json.loads((dest / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert hashlib.sha256((dest / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert json.loads((dest / "metrics.json").read_text())["per_class"] == {"cat": 0.4,
                                                                          "dog": 0.6}
    assert "path" not in json.loads((dest / "run.json").read_text())["data"]
    assert pull(v.uri, tmp_path / "pulled") == dest  # already there


def test_the_store_namespace_has_one_name_and_the_older_one_still_works(tmp_path, capsys):
    """``--store-namespace`` names the store's namespace; ``--namespace``, its older name
    in ``publish`` and ``list``, still works, and the help says what it is called now. In
    the cluster commands ``--namespace`` is Kubernetes'."""
    run = fake_run(tmp_path / "run")
    store = str(tmp_path / "store")
    assert main(["publish", str(run.path), "--store", store, "--store-namespace", "lab"]) == 0
    assert main(["publish", str(run.path), "--store", store, "--namespace", "old"]) == 0
    capsys.readouterr()
    for namespace, spelling in (("lab", "--namespace"), ("old", "--store-namespace")):
        assert main(["list", "--store", store, spelling, namespace]) == 0
        assert f"/{namespace}/models/ssd-mobilenet-v2/" in capsys.readouterr().out
    assert main(["list", "--store", store, "--store-namespace", "nobody"]) == 0
    assert "namespace 'nobody'" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["list", "--store", store])
    assert "--store-namespace" in capsys.readouterr().err
    for command in ("publish", "list"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = folded(capsys.readouterr().out)
        assert "--store-namespace NS the model store's namespace" in text
        assert "--namespace NS the older name of --store-namespace" in text
    with pytest.raises(SystemExit):
        main(["cluster", "render", "workflow", "--help"])
    text = folded(capsys.readouterr().out)
    assert "--store-namespace NS the model store's namespace" in text
    assert "--namespace NS the Kubernetes namespace (the model store's is --store-namespace)" \
        in text


def test_a_record_that_names_no_model_is_refused_by_name(tmp_path):
    run = fake_run(tmp_path / "run")
    damaged = json.loads((run.path / "run.json").read_text())
    del damaged["model"]["key"]
    (run.path / "run.json").write_text(json.dumps(damaged))
    store = open_store(str(tmp_path / "store"))
    with pytest.raises(UsageError, match=r"run.json names no model \(model.key\); give the "
                       r"version's model key \(--model-key\)"):
        publish(run.path, store, "team")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.json"))
    assert publish(run.path, store, "team", "ssd-mobilenet-v2").model_key == "ssd-mobilenet-v2"


def test_a_pulled_versions_record_reads_without_this_machines_paths(tmp_path):
    run = fake_run(tmp_path / "run")
    record = read_record(run)
    write_record(run, replace(record, weights=str(tmp_path / "earlier"), init=InitCheckpoint(
        path=str(tmp_path / "earlier" / "checkpoints" / "ckpt-9"), kind="run",
        labels=("cat", "dog"), source=str(tmp_path / "earlier"))))
    store = open_store(str(tmp_path / "store"))
    pulled = pull(publish(run.path, store, "team").uri, tmp_path / "pulled")
    published = read_record(pulled)  # the paths were the training machine's: left out
    assert published.data.path == Path("") and published.init.path == ""
    assert (published.labels, published.model.key, published.init.source) == (
        ("cat", "dog"), "ssd-mobilenet-v2", "earlier")
    assert published.hparams == record.hparams


def test_the_manifest_is_written_last(store, tmp_path):
    """A publish that breaks off leaves a version without its manifest: not listed, not
    pulled; publishing the run again completes it."""
    run = fake_run(tmp_path / "run")
    sent = []

    def break_off(n):
        sent.append(n)
        if len(sent) == 2:
            raise OSError("the network went away")

    with pytest.raises((OSError, StoreError)):
        publish(run.path, store, "lab", progress=Recorder(break_off))
    keys = [o.key for o in store.list("lab/")]
    assert keys and not any(k.endswith("/manifest.json") for k in keys)  # some files, no manifest
    assert list_models(store, "lab") == []
    v = publish(run.path, store, "lab")
    assert [x.version for x in list_models(store, "lab")] == [v.version]
    assert any(o.key.endswith(f"{v.version}/manifest.json") for o in store.list("lab/"))


def test_many_versions_list_newest_first_in_pages(store, tmp_path):
    """Versions of two models, published over many days, and some left incomplete: the
    listing reads manifests only, newest first, a page at a time."""
    run = fake_run(tmp_path / "run")
    v = publish(run.path, store, "lab")
    manifest = json.loads(store.get_bytes(f"lab/models/{v.model_key}/{v.version}/manifest.json"))
    made = []
    for day in range(60):
        key = ("ssd-mobilenet-v2", "frcnn-resnet50-coco")[day % 2]
        created = f"2026-10-{day // 2 + 1:02d}T{day % 24:02d}:00:00Z"
        version = re.sub(r"[^0-9]", "", created)[:14] + f"-{day:010d}"
        prefix = f"lab/models/{key}/{version}/"
        store.put_bytes(prefix + "saved_model/saved_model.pb", b"graph")
        if day % 7 == 3:  # published halfway: no manifest
            continue
        store.put_bytes(prefix + "manifest.json", json.dumps(
            {**manifest, "model_key": key, "version": version, "created": created}).encode())
        made.append(version)
    want = [v.version] + sorted(made, reverse=True)  # the real run's is the newest (November)
    assert [x.version for x in list_models(store, "lab")] == want
    pages = list(model_pages(store, "lab", page=16))
    assert len(pages) == 4 and all(len(p) <= 16 for p in pages)  # 61 folders
    assert [x.version for p in pages for x in p] == want
    assert {x.model_key for x in list_models(store, "lab")} == {
        "ssd-mobilenet-v2", "frcnn-resnet50-coco"}
    assert list(model_pages(store, "nobody")) == []


def test_big_file_goes_multipart(s3_env, tmp_path):
    import boto3

    run = fake_run(tmp_path / "run", big=110 * 1024 * 1024)
    bucket, prefix = _bucket().split("/")
    store = open_store(f"s3://{bucket}/{prefix}", create_bucket=True)
    moved = Recorder()
    v = publish(run.path, store, "lab", progress=moved)
    assert moved.done == moved.starts[0][1] >= 110 * 1024 * 1024
    key = f"{prefix}/lab/models/ssd-mobilenet-v2/{v.version}/saved_model/variables/" \
          "variables.data-00000-of-00001"
    head = boto3.session.Session().client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == 110 * 1024 * 1024
    assert head["ETag"].strip('"').rsplit("-", 1)[-1].isdigit()  # multipart: "<md5>-<parts>"
    assert pull(v.uri, tmp_path / "p").joinpath(
        "saved_model/variables/variables.data-00000-of-00001").stat().st_size == 110 * 2 ** 20


def test_wrong_secret_and_missing_bucket(s3_env, monkeypatch, tmp_path, capsys):
    secret = _secret(s3_env)
    open_store(f"s3://{_bucket()}", create_bucket=True)
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cvatkit-wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StoreError, match="refused the credentials") as e:
        open_store("s3://anything-here")
    assert "not-the-secret" not in str(e.value) and secret not in str(e.value)
    monkeypatch.undo()
    for key, value in s3_env.env().items():
        monkeypatch.setenv(key, value)
    assert main(["list", "--store", "s3://no-such-bucket-here", "--namespace", "lab"]) == 2
    err = folded(capsys.readouterr().err)
    assert "the bucket does not exist" in err and "--create-bucket" in err


@pytest.mark.parametrize("code", ["BucketAlreadyOwnedByYou", "BucketAlreadyExists"])
def test_a_bucket_another_publish_created_just_now_is_used(code, s3_env, monkeypatch):
    """Two publishes with --create-bucket at once: both find the bucket missing, one
    creates it, and the other's CreateBucket is answered 409, as AWS answers it outside
    us-east-1 (SeaweedFS answers such a request 200, so the answer is given here, on the
    real client's event hook); that publish goes on with the bucket the other made. A 409
    for a bucket this account cannot open is said."""
    import types

    import boto3
    import botocore.session

    bucket = f"new-{uuid.uuid4().hex[:8]}"
    other = boto3.client("s3")  # the other publish's
    real = botocore.session.Session.create_client

    def client(self, *args, **kwargs):
        made = real(self, *args, **kwargs)

        def answer_409(**_):
            if code == "BucketAlreadyOwnedByYou":
                other.create_bucket(Bucket=bucket)  # it was quicker
            return (types.SimpleNamespace(status_code=409, headers={}),
                    {"ResponseMetadata": {"HTTPStatusCode": 409},
                     "Error": {"Code": code, "Message": "it exists"}})

        made.meta.events.register("before-call.s3.CreateBucket", answer_409)
        return made

    monkeypatch.setattr(botocore.session.Session, "create_client", client)
    if code == "BucketAlreadyOwnedByYou":  # the other publish made it: ours to use
        store = open_store(f"s3://{bucket}/team", create_bucket=True)
        store.put_bytes("a.txt", b"1")
        assert store.get_bytes("a.txt") == b"1"
    else:  # someone else's name: it cannot be opened
        with pytest.raises(StoreError, match=f"could not create bucket '{bucket}'"):
            open_store(f"s3://{bucket}/team", create_bucket=True)


@pytest.mark.slow  # starts S3 servers
def test_server_killed_during_publish_then_publish_again_completes(tmp_path, monkeypatch):
    server = serve(tmp_path / "s3")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    run = fake_run(tmp_path / "run", big=120 * 1024 * 1024)
    store = open_store("s3://models-crash", create_bucket=True)
    seen, lock, stopped = [], threading.Lock(), []

    def kill_midway(n):
        with lock:  # the first upload thread past 8 MB stops the server, the others wait
            seen.append(n)
            if sum(seen) > 8 * 1024 * 1024 and not stopped:
                server.stop()
                stopped.append(True)

    with pytest.raises(StoreError, match="cannot reach|could not upload"):
        publish(run.path, store, "lab", progress=Recorder(kill_midway))
    cp = configparser.ConfigParser()
    cp.read(server.folder / "credentials")
    again = serve(tmp_path / "s3", access_key=cp["cvatkit-local"]["aws_access_key_id"],
                  secret_key=cp["cvatkit-local"]["aws_secret_access_key"])
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", again.endpoint)
        store = open_store("s3://models-crash")
        assert list_models(store, "lab") == []          # incomplete: not listed
        v = publish(run.path, store, "lab")
        assert [x.version for x in list_models(store, "lab")] == [v.version]
        pull(v.uri, tmp_path / "p")
    finally:
        again.stop()


def test_corrupted_object_is_named_on_pull(s3_env, tmp_path):
    import boto3

    bucket, prefix = _bucket().split("/")
    store = open_store(f"s3://{bucket}/{prefix}", create_bucket=True)
    v = publish(fake_run(tmp_path / "run").path, store, "lab")
    boto3.session.Session().client("s3").put_object(
        Bucket=bucket, Key=f"{prefix}/lab/models/ssd-mobilenet-v2/{v.version}/classes.csv",
        Body=b"labels\nhorse\n")
    with pytest.raises(ChecksumError, match="classes.csv of .* has SHA-256"):
        pull(v.uri, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_bytes_flipped_on_the_servers_disk_are_named_on_pull(s3_env, tmp_path, monkeypatch):
    """Damage below S3: a byte of a stored object flipped in SeaweedFS's volume file. The
    server either refuses to read it back or sends it as it is; either way the pull names
    the file and leaves nothing."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the server itself tries for 17 s
    store = open_store(f"s3://{_bucket()}", create_bucket=True)
    run = fake_run(tmp_path / "run")
    content = os.urandom(8000)  # not compressible: stored as it is
    marker = content[1000:1064]
    weights = run.path / "export" / "saved_model" / "variables" / "variables.data-00000-of-00001"
    weights.write_bytes(content)
    v = publish(run.path, store, "lab")
    damaged = 0
    for volume in (s3_env.folder / "data").rglob("*.dat"):
        data = bytearray(volume.read_bytes())
        at = data.find(marker)
        if at >= 0:
            data[at + 100] ^= 0xFF
            volume.write_bytes(bytes(data))
            damaged += 1
    assert damaged == 1
    with pytest.raises(ChecksumError, match=r"variables\.data-00000-of-00001.*damaged"):
        pull(v.uri, tmp_path / "p")
    assert not (tmp_path / "p").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.")]


def test_incomplete_or_bad_requests(tmp_path):
    store = open_store(str(tmp_path / "store"))
    run = fake_run(tmp_path / "run")
    run.set_status("stopped", step=2)
    with pytest.raises(UsageError, match="has not completed"):
        publish(run.path, store, "lab")
    with pytest.raises(UsageError, match="namespace 'a b'"):
        publish(run.path, store, "a b")
    with pytest.raises(StoreError, match="is not a complete model version"):
        pull(f"{tmp_path / 'store'}/lab/models/x/y", tmp_path / "p")


def test_cli_and_no_secret_anywhere(s3_env, tmp_path, capsys, trained):
    secret = _secret(s3_env)
    uri = f"s3://{_bucket()}/team"
    assert main(["publish", str(trained.path), "--store", uri, "--namespace", "lab",
                 "--create-bucket"]) == 0
    out = capsys.readouterr()
    version_uri = out.out.split("published ", 1)[1].strip()
    assert main(["list", "--store", uri, "--namespace", "lab"]) == 0
    listing = capsys.readouterr().out
    assert version_uri in listing and "square, triangle, circle" in listing
    assert main(["pull", version_uri, str(tmp_path / "pulled")]) == 0
    texts = [out.out, out.err, listing, capsys.readouterr().out]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "pulled").rglob("*.json")]
    texts += [p.read_text(errors="replace") for p in trained.path.rglob("*")
              if p.is_file() and p.suffix in (".json", ".jsonl", ".log")]
    assert all(secret not in t for t in texts)
    # A store version starts a new run: its labels are checked like a run's.
    plan = plan_run(read_record(trained).data.path, MODEL,
                    "image-size=128\nnum-steps=1", init_checkpoint=version_uri)
    assert plan.init.kind == "run" and plan.init.path.endswith(_exported(trained))


def test_catalog_entry_starts_from_a_store_version(s3_env, tmp_path, trained, prepared):
    from cvatkit.training import load_catalog

    store = open_store(f"s3://{_bucket()}", create_bucket=True)
    version = publish(trained.path, store, "lab")
    (tmp_path / "models.yaml").write_text(
        f"models:\n  shapes-v2:\n    base: {MODEL}\n"
        f"    init_version: {version.uri}\n  other-arch:\n    base: ssdlite-mobilenet-v2\n"
        f"    backbone: mobilenet_v1\n    init_version: {version.uri}\n")
    catalog = load_catalog(tmp_path / "models.yaml")
    assert "model store version" in catalog["shapes-v2"].weights_note
    plan = plan_run(prepared.path, "shapes-v2", "image-size=128\nnum-steps=1", catalog=catalog)
    assert plan.init.kind == "run" and plan.init.labels == ("square", "triangle", "circle")
    assert plan.init.path.endswith(_exported(trained))
    with pytest.raises(UsageError, match="cannot start 'other-arch'"):
        plan_run(prepared.path, "other-arch", "image-size=128\nnum-steps=1", catalog=catalog)


def test_damaged_manifest_is_named(tmp_path):
    store = open_store(str(tmp_path / "store"))
    v = publish(fake_run(tmp_path / "run").path, store, "lab")
    manifest = tmp_path / "store" / "lab" / "models" / "ssd-mobilenet-v2" / v.version / \
        "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(StoreError, match=f"{v.version}/manifest.json in the store is damaged"):
        list_models(store, "lab")
    with pytest.raises(StoreError, match="is damaged"):
        pull(v.uri, tmp_path / "p")


def test_the_metrics_are_those_of_the_exported_checkpoint(tmp_path):
    store = open_store(str(tmp_path / "store"))
    run = fake_run(tmp_path / "run")  # evaluated at step 5: AP 0.5
    run.append(EvalEvent(step=3, time=0, ap=0.7, ap50=0.95, per_class={"cat": 0.7, "dog": 0.7},
                         best=True))
    (run.path / "export" / "model.json").write_text(json.dumps(
        {"model": "ssd-mobilenet-v2", "exported": "best", "step": 3, "ap": 0.7}))
    best = run.path / "checkpoints" / "best"
    best.mkdir()
    (best / "ckpt-3.index").write_bytes(b"b")
    (best / "ckpt-3.data-00000-of-00001").write_bytes(b"best" * 10)
    (best / "best.json").write_text('{"step": 3, "ap": 0.7, "checkpoint": "ckpt-3"}\n')
    v = publish(run.path, store, "lab")
    assert (v.metrics["step"], v.metrics["ap"], v.metrics["ap50"]) == (3, 0.7, 0.95)
    # the version holds the checkpoint its export was made from, and starts runs from it
    pulled = pull(v.uri, tmp_path / "pulled")
    assert (pulled / "checkpoints" / "best" / "ckpt-3.data-00000-of-00001").read_bytes() == \
        b"best" * 10
    assert Run(pulled).exported_checkpoint() == str(pulled / "checkpoints" / "best" / "ckpt-3")
    assert Run(run.path).exported_checkpoint() == str(best / "ckpt-3")
    (run.path / "export" / "model.json").unlink()  # an export that does not say: the last
    run.append(EvalEvent(step=5, time=0, ap=0.6, ap50=0.9, per_class={"cat": 0.6, "dog": 0.6}))
    assert publish(run.path, store, "lab").metrics["ap"] == 0.6


@pytest.mark.slow  # starts S3 servers
def test_the_local_server_keeps_its_address_and_cleans_up_after_itself(tmp_path, capsys):
    import signal
    import socket

    from cvatkit.errors import S3ServerError
    from cvatkit.store.s3_server import running

    folder = tmp_path / "s3"
    first = serve(folder)
    keys = (folder / "credentials").read_text()
    first.stop()
    assert running(folder) is None
    again = serve(folder)  # the same address and keys: an exported AWS_ENDPOINT_URL works
    try:
        assert again.endpoint == first.endpoint
        assert (folder / "credentials").read_text() == keys
        assert running(folder) == again
        os.killpg(again.pid, signal.SIGKILL)  # a crash: no word from the server
        deadline = time.monotonic() + 120  # only a server that outlives SIGKILL takes it
        while running(folder) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running(folder) is None
        assert main(["s3-serve", str(folder), "--stop"]) == 0
        assert "no server is running" in folded(capsys.readouterr().out)
    finally:
        again.stop()
    for port, message in ((99999, "is not a TCP port"), (None, "is taken")):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = port or busy.getsockname()[1]
            with pytest.raises((UsageError, S3ServerError), match=message):
                serve(tmp_path / "new" / "s3", port=port)
        assert not (tmp_path / "new").exists()  # no folder holding credentials left
