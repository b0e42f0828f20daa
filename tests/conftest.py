"""Shared fixtures: the sample task in both export formats, its prepared dataset, a short
trained run, a real S3 server (SeaweedFS) and the fake CVAT server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Downloads and pulled models go to a cache of the test session's own, not the user's.
os.environ["CVATKIT_CACHE"] = tempfile.mkdtemp(prefix="cvatkit-test-cache-")

from helpers import MODEL, PLANTED, SAMPLE_FRAMES, SAMPLE_TEST_FRAMES, TRAINED  # noqa: E402

from cvatkit import open_export, prepare, write_sample  # noqa: E402
from cvatkit.cli import main  # noqa: E402
from cvatkit.runs import Run  # noqa: E402


SLOW_FIXTURES = ("trained", "seaweed", "real_cvat")
"""Fixtures that train the shared run or start the S3 server: a test that needs one is
slow. Tests that train, or start a kernel, a browser or a process of their own, say so
with ``@pytest.mark.slow``."""


def pytest_collection_modifyitems(items):
    for item in items:
        if set(SLOW_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sample_cvat(tmp_path_factory) -> Path:
    """The sample task as a 'CVAT for images 1.1' zip."""
    out = tmp_path_factory.mktemp("sample-cvat")
    return write_sample(out, frames=SAMPLE_FRAMES, test_frames=SAMPLE_TEST_FRAMES,
                        fmt="cvat").task


@pytest.fixture(scope="session")
def sample_coco(tmp_path_factory) -> Path:
    """The same sample task as a 'COCO 1.0' zip."""
    out = tmp_path_factory.mktemp("sample-coco")
    return write_sample(out, frames=SAMPLE_FRAMES, test_frames=SAMPLE_TEST_FRAMES,
                        fmt="coco").task


@pytest.fixture(scope="session")
def prepared(sample_cvat, tmp_path_factory):
    """The sample task prepared as TFRecords (read-only: tests must not change it)."""
    out = tmp_path_factory.mktemp("prepared") / "dataset"
    source = open_export(sample_cvat)
    try:
        return prepare(source, out)
    finally:
        source.close()


@pytest.fixture(scope="session")
def trained(prepared, tmp_path_factory):
    """The shared run: the tests' model (``helpers.MODEL``) trained on the sample dataset
    with ``helpers.TRAINED`` until it finds the shapes surely, with secrets in the
    environment (``helpers.PLANTED``): none may land anywhere."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    with pytest.MonkeyPatch.context() as env:
        for key, value in PLANTED.items():
            env.setenv(key, value)
        code = main(["train", "--model", MODEL, "--data", str(prepared.path), "--run-dir",
                     str(run_dir), "--hparams", TRAINED])
    assert code == 0, (run_dir / "trainer.log").read_text()[-3000:]
    return Run(run_dir)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real S3 server (SeaweedFS) on 127.0.0.1 with real credentials."""
    from cvatkit.store.s3_server import serve

    server = serve(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(seaweed, monkeypatch):
    """The standard AWS environment pointing at the test server."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    return seaweed


@pytest.fixture(scope="session")
def real_cvat(tmp_path_factory):
    """A real CVAT server (``real_cvat.py`` says which), with the Nuclio stand-in its
    lambda manager calls; the tests are skipped, saying why, where none can be had."""
    import real_cvat as real

    why = real.why_unavailable()
    if why:
        pytest.skip(why)
    server = real.start(tmp_path_factory.mktemp("real-cvat-logs"))
    real.STARTED.append(server)
    try:
        yield server
    finally:
        real.stop(server)


def pytest_terminal_summary(terminalreporter):
    """How the real CVAT of the session was had, and how long its start took."""
    import real_cvat as real

    for server in real.STARTED:
        how = (f"started from source in {server.start_seconds:.0f} s" if server.started
               else "given by CVATKIT_TEST_CVAT_URL")
        terminalreporter.write_line(f"real CVAT at {server.url}: {how}")


@pytest.fixture(scope="module")
def fake_cvat():
    """The fake CVAT server (``fakes/cvat_server.py``) of one test module, started with no
    task: the module adds those it needs. Its user logs in with ``fakes.cvat_server``'s
    ``USER`` and ``PASSWORD``, or its ``TOKEN``."""
    from fakes.cvat_server import FakeCvatServer

    with FakeCvatServer() as server:
        yield server


@pytest.fixture
def cvat_env(fake_cvat, monkeypatch, tmp_path):
    """The environment of a user of the fake CVAT server: its address and token, no user
    or password, cvat-sdk's cache in the test's folder."""
    from fakes.cvat_server import TOKEN

    monkeypatch.setenv("CVAT_HOST", fake_cvat.url)
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", TOKEN)
    monkeypatch.delenv("CVAT_USER", raising=False)
    monkeypatch.delenv("CVAT_PASSWORD", raising=False)
    monkeypatch.setenv("CVATKIT_CVAT_CACHE", str(tmp_path / "cvat-cache"))
    return fake_cvat


@pytest.fixture
def widget_callbacks_raise(monkeypatch):
    """ipywidgets logs and swallows what a click handler raises; with this fixture it
    fails the test instead."""
    import ipywidgets

    def call(self, *args, **kwargs):
        value = None
        for callback in self.callbacks:
            out = callback(*args, **kwargs)
            value = out if out is not None else value
        return value

    monkeypatch.setattr(ipywidgets.widgets.widget.CallbackDispatcher, "__call__", call)
