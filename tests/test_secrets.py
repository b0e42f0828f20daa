"""No secret lands anywhere: with known CVAT and AWS secrets in the environment, the job's
steps (the sample task prepared, a model trained, published, pulled, used to predict and
to pre-annotate) are grepped for them in every file they wrote, every log, every object
of the store and everything they printed."""

from __future__ import annotations

import configparser

from helpers import PLANTED

from cvatkit import pipeline
from cvatkit.cli import main
from cvatkit.files import cache_root

MAX_BYTES = 50_000_000


def _files(*roots):
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < MAX_BYTES:
                yield path


def test_no_secret_lands_anywhere(trained, seaweed, s3_env, tmp_path, monkeypatch, capfd):
    for key, value in PLANTED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # the store's own key comes from its profile
    credentials = configparser.ConfigParser()
    credentials.read(seaweed.folder / "credentials")
    store_secret = credentials["cvatkit-local"]["aws_secret_access_key"]
    secrets = [*PLANTED.values(), store_secret]

    work = tmp_path / "work"
    data = pipeline.prepare_data("sample", work, sample_frames=12, sample_test_frames=4)
    version = pipeline.publish(trained, "s3://secrets-test/team", "team", create_bucket=True)
    assert main(["list", "--store", "s3://secrets-test/team", "--namespace", "team"]) == 0
    assert main(["predict", version.uri, data.test_source, "--out", str(work / "predicted"),
                 "--draw", "2"]) == 0
    assert main(["annotate", str(trained.path), "--source", data.test_source, "--out",
                 str(work / "pre-annotations.zip")]) == 0
    assert main(["status", str(trained.path)]) == 0
    printed = capfd.readouterr()

    own = {seaweed.folder / "credentials", seaweed.folder / "s3.json"}  # the server's keys
    looked = 0
    for path in _files(work, trained.path, cache_root(), seaweed.folder):
        if path in own:
            continue
        data_bytes = path.read_bytes()
        looked += 1
        for secret in secrets:
            assert secret.encode() not in data_bytes, f"{secret[:8]}... in {path}"
    assert looked > 50  # the run, the dataset, the store's volumes, the pulled version
    for secret in secrets:
        assert secret not in printed.out + printed.err
