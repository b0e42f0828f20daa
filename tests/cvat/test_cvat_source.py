"""Tasks on a CVAT fake_cvat, read through the real cvat-sdk from the fake CVAT fake_cvat."""

from __future__ import annotations

import re

import pytest
from fakes.cvat_server import PASSWORD, TOKEN, USER
from helpers import folded

from cvatkit import connect, list_tasks, open_source
from cvatkit.cli import main
from cvatkit.cvat import SAMPLE_LABELS as LABELS
from cvatkit.cvat import sample_frame
from cvatkit.errors import ServerError, UsageError

FRAMES = 10


@pytest.fixture(scope="module", autouse=True)
def tasks(fake_cvat):
    """The module's tasks: the sample's shapes (with kinds cvatkit does not train on, and
    an occluded shape) and a video."""
    frames, shapes = [], []
    for i in range(FRAMES):
        frame, jpeg = sample_frame(0, i, index=i)
        frames.append((frame.name, jpeg))
        for s in frame.shapes:
            shapes.append({"type": s.kind, "label": s.label, "frame": i,
                           "points": list(s.points), "occluded": i == 1, "attributes": []})
    shapes.append({"type": "polyline", "label": "square", "frame": 0,
                   "points": [1, 1, 5, 5], "attributes": []})
    # CVAT keeps an ellipse as its centre and the top-right corner of its box.
    shapes.append({"type": "ellipse", "label": "circle", "frame": 9,
                   "points": [50, 40, 60, 35], "attributes": []})
    fake_cvat.sample_task = fake_cvat.add_task(
        "sample shapes", [{"name": n, "type": "any"} for n in LABELS.names], frames,
        shapes=shapes, chunk_size=4)
    fake_cvat.sample_frames = frames
    fake_cvat.video_task = fake_cvat.add_task("a video", [{"name": "square"}], frames[:2],
                                              media_type="video")


def test_list_tasks_with_labels(fake_cvat, cvat_env):
    client = connect()
    tasks = {t.id: t for t in list_tasks(client)}
    t = tasks[fake_cvat.sample_task]
    assert (t.name, t.frames, t.status, t.labels) == (
        "sample shapes", FRAMES, "annotation", LABELS.names)
    assert t.updated and t.source == f"cvat://{fake_cvat.sample_task}"
    assert [x.id for x in list_tasks(client, search="VIDEO")] == [fake_cvat.video_task]


def test_server_task_reads_like_an_export_and_second_read_downloads_nothing(fake_cvat,
                                                                           cvat_env):
    src = open_source(f"cvat://{fake_cvat.sample_task}")
    frames = list(src.frames())
    assert [f.name for f in frames] == [name for name, _ in fake_cvat.sample_frames]
    assert frames[1].shapes and all(s.occluded for s in frames[1].shapes)
    expected = sample_frame(0, 3, index=3)[0]
    assert [(s.kind, s.label, s.points) for s in frames[3].shapes] == [
        (s.kind, s.label, tuple(float(p) for p in s.points)) for s in expected.shapes]
    assert dict(src.skipped) == {"polyline": 1}
    ellipse = frames[9].shapes[-1]
    assert ellipse.kind == "polygon" and ellipse.bbox() == pytest.approx((40, 35, 60, 45))
    # The original-quality chunk's bytes, not a re-encoding.
    assert src.read_image(frames[5]) == fake_cvat.sample_frames[5][1]

    before = len(fake_cvat.requests)
    again = open_source(f"cvat://{fake_cvat.sample_task}")
    assert [f.shapes for f in again.frames()] == [f.shapes for f in frames]
    fetched = [path for _m, path in fake_cvat.requests[before:]]
    assert not [p for p in fetched if "type=chunk" in p or "/annotations" in p], fetched


@pytest.mark.parametrize("login", ["token", "password"])
def test_prepare_from_server_keeps_secrets_off_disk(fake_cvat, cvat_env, tmp_path, monkeypatch,
                                                    login):
    if login == "password":
        monkeypatch.delenv("CVAT_ACCESS_TOKEN")
        monkeypatch.setenv("CVAT_USER", USER)
        monkeypatch.setenv("CVAT_PASSWORD", PASSWORD)
    out = tmp_path / "ds"
    assert main(["prepare", f"cvat://{fake_cvat.sample_task}", str(out)]) == 0
    assert (out / "dataset.json").exists()
    for path in [*out.rglob("*"), *(tmp_path / "cvat-cache").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert TOKEN.encode() not in data and PASSWORD.encode() not in data, path


def test_password_login_from_env(fake_cvat, cvat_env, monkeypatch):
    monkeypatch.delenv("CVAT_ACCESS_TOKEN")
    monkeypatch.setenv("CVAT_USER", USER)
    monkeypatch.setenv("CVAT_PASSWORD", PASSWORD)
    src = open_source(f"cvat://{fake_cvat.sample_task}")
    assert src.summary().frames == FRAMES


def test_wrong_password(fake_cvat, cvat_env):
    with pytest.raises(ServerError, match="refused the user name or password"):
        connect(user="admin", password="wrong")


def test_bad_token_is_named_without_echoing_it(fake_cvat, cvat_env, capsys, monkeypatch):
    with pytest.raises(ServerError, match="refused the access token") as e:
        connect(access_token="not-the-token")
    assert "not-the-token" not in str(e.value)
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "not-the-token")
    assert main(["tasks"]) == 2
    err = folded(capsys.readouterr().err)
    assert "refused the access token" in err and "not-the-token" not in err


def test_tasks_command_lists_tasks(fake_cvat, cvat_env, capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "sample shapes [square, triangle, circle]" in out
    assert re.search(rf"cvat://{fake_cvat.sample_task} +{FRAMES} frames +annotation ", out)


def test_unknown_task(fake_cvat, cvat_env, capsys, tmp_path):
    assert main(["prepare", "cvat://999999", str(tmp_path / "x")]) == 2
    err = folded(capsys.readouterr().err)
    assert "999999" in err and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_no_server_configured(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("CVAT_HOST", raising=False)
    assert main(["prepare", "cvat://7", str(tmp_path / "x")]) == 2
    err = folded(capsys.readouterr().err)
    assert "no CVAT server is configured" in err and "--server-host" in err


def test_no_credentials(fake_cvat, monkeypatch):
    for var in ("CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError, match="CVAT_ACCESS_TOKEN"):
        connect(fake_cvat.url)


def test_unreachable_server(cvat_env):
    with pytest.raises(ServerError, match="cannot reach CVAT"):
        connect("http://127.0.0.1:9", access_token=TOKEN)


def test_video_task_is_refused_clearly(fake_cvat, cvat_env):
    with pytest.raises(ServerError, match="CVAT for images 1.1"):
        open_source(f"cvat://{fake_cvat.video_task}")


def test_a_user_and_password_in_the_address_log_in_and_are_never_shown(fake_cvat, cvat_env,
                                                                         monkeypatch, capsys):
    from cvatkit.addresses import redacted, split_credentials

    host = fake_cvat.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    monkeypatch.setenv("CVAT_HOST", host)
    monkeypatch.delenv("CVAT_ACCESS_TOKEN")
    client = connect()
    assert client.api_map.host == fake_cvat.url  # used, and kept, without them
    src = open_source(f"cvat://{fake_cvat.sample_task}", client=client)
    assert PASSWORD not in src.description and USER not in src.description
    client.close()
    monkeypatch.setenv("CVAT_HOST", host.replace(PASSWORD, "wrong-pw"))
    assert main(["tasks"]) == 2
    err = capsys.readouterr().err
    assert "refused the user name or password" in err and "wrong-pw" not in err
    assert split_credentials("https://a%40b:p%3Aw@cvat.example.com/x") == (
        "https://cvat.example.com/x", "a@b", "p:w")
    assert redacted("see http://u:p@h:8080/api and s3://k:s@bucket") == \
        "see http://***@h:8080/api and s3://***@bucket"
