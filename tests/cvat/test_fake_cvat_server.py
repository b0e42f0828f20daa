"""Proves that tests/fakes/cvat_server.py speaks CVAT's API the way the recordings show.

The recordings (cvat-sdk 2.80.0 against a real CVAT 2.73.0) are replayed against the
fake, and the real cvat-sdk is driven against it.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cvat_sdk
import cvat_sdk.auto_annotation as cvataa
import PIL.Image
import pytest
from cvat_sdk.api_client.exceptions import ApiException, NotFoundException, UnauthorizedException
from cvat_sdk.core.client import Client, Config
from cvat_sdk.datasets import MediaDownloadPolicy, TaskDataset, UnsupportedDatasetError
from fakes.cvat_server import PASSWORD, TOKEN, USER, FakeCvatServer
from helpers import DATA

# Every exchange cvat-sdk 2.80.0 had with a real CVAT 2.73.0 server (see tests/data/README.md).
RECORDINGS = DATA / "cvat-2.73.0-sdk-2.80.0.jsonl"
# The annotation loop on a real CVAT 2.73.0: shapes with scores, frame tags (task 4).
LOOP_RECORDINGS = DATA / "cvat-2.73.0-sdk-2.80.0-loop.jsonl"
RECORDED_HOST = r"http://127\.0\.0\.1:\d+"  # the recording servers' address


# ------------------------------------------------------------------ recordings
@functools.cache
def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RECORDINGS.read_text().splitlines() if line.strip()]


def _find(phase: str, method: str, path: str) -> dict[str, Any]:
    return next(r for r in _records()
                if (r["phase"], r["method"], r["path"]) == (phase, method, path))


def _recorded_json(record: dict[str, Any], server: FakeCvatServer | None = None) -> Any:
    text = record["response_body"]["text"]
    return json.loads(re.sub(RECORDED_HOST, server.url, text) if server else text)


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def _recorded_frames(phase: str, task_id: int, chunks: int) -> list[tuple[str, bytes]]:
    meta = _recorded_json(_find(phase, "GET", f"/api/tasks/{task_id}/data/meta"))
    images = []
    for number in range(chunks):
        record = _find(phase, "GET",
                       f"/api/tasks/{task_id}/data/?number={number}&quality=original&type=chunk")
        images += [data for _, data in
                   _zip_members(base64.b64decode(record["response_body"]["base64"]))]
    return [(frame["name"], data) for frame, data in zip(meta["frames"], images, strict=True)]


def _recorded_labels(task_id: int) -> list[dict[str, Any]]:
    record = _find("tasks_list_with_labels", "GET", f"/api/labels?task_id={task_id}&org=&page=1")
    return [{k: label[k] for k in ("id", "name", "type", "color", "attributes")}
            for label in _recorded_json(record)["results"]]


def _recorded_shapes() -> list[dict[str, Any]]:
    """Task 7's 11 shapes, with label names instead of ids (as add_task takes them)."""
    names = {label["id"]: label["name"] for label in _recorded_labels(7)}
    record = _find("taskdataset_first_read", "GET", "/api/tasks/7/annotations/")
    return [{**{k: v for k, v in s.items() if k not in ("id", "label_id")},
             "label": names[s["label_id"]]} for s in _recorded_json(record)["shapes"]]


@pytest.fixture
def recorded(fake_cvat) -> FakeCvatServer:
    """The fake CVAT server holding the recorded tasks 7 and 8, and nothing else."""
    fake_cvat.clear()
    fake_cvat.add_task("recorded-shapes", _recorded_labels(7),
                       _recorded_frames("taskdataset_first_read", 7, 2),
                       shapes=_recorded_shapes(), chunk_size=4, task_id=7)
    fake_cvat.add_task("recorded-empty", _recorded_labels(8),
                       _recorded_frames("taskdataset_task_without_annotations", 8, 1),
                       chunk_size=72, task_id=8)
    return fake_cvat


# --------------------------------------------------------------------- helpers
def _http(server: FakeCvatServer, method: str, path: str, body: bytes | str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _session(server: FakeCvatServer) -> dict[str, str]:
    """Log in over plain HTTP; returns the headers cvat-sdk then sends."""
    status, headers, _ = _http(server, "POST", "/api/auth/login",
                               json.dumps({"username": USER, "password": PASSWORD}),
                               {"Content-Type": "application/json"})
    assert status == 200
    cookies = SimpleCookie()
    for header in headers.get_all("Set-Cookie"):
        cookies.load(header)
    return {"Cookie": f"sessionid={cookies['sessionid'].value}; "
                      f"csrftoken={cookies['csrftoken'].value}",
            "X-CSRFToken": cookies["csrftoken"].value}


def _connect(server: FakeCvatServer, cache_dir: Path, **auth: Any) -> Client:
    client = cvat_sdk.make_client(host=server.url, **auth)
    client.config = Config(cache_dir=cache_dir)  # make_client takes no config
    return client


def _assert_same_structure(ours: Any, recorded: Any, where: str = "$") -> None:
    """Same dict keys, same JSON types; list items are compared with the first recorded one."""
    assert type(ours) is type(recorded), f"{where}: {type(ours)} != {type(recorded)}"
    if isinstance(recorded, dict):
        assert ours.keys() == recorded.keys(), f"{where}: {sorted(ours)} != {sorted(recorded)}"
        for key in recorded:
            _assert_same_structure(ours[key], recorded[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert bool(ours) == bool(recorded), f"{where}: emptiness differs"
        for index, item in enumerate(ours):
            _assert_same_structure(item, recorded[0], f"{where}[{index}]")


def _scrub(value: Any, ignored: set[str]) -> Any:
    """Drop ``ignored`` keys everywhere and put shape lists in a stable order."""
    if isinstance(value, dict):
        value = {k: _scrub(v, ignored) for k, v in value.items() if k not in ignored}
        if "shapes" in value:
            value["shapes"] = sorted(value["shapes"], key=lambda s: json.dumps(s, sort_keys=True))
        return value
    if isinstance(value, list):
        return [_scrub(v, ignored) for v in value]
    return value


_VOLATILE = {"created_date", "updated_date", "chunks_updated_date", "image_quality"}


def _assert_same_values(path: str, ours: Any, recorded: Any) -> None:
    """Compare values too, apart from ids, dates and the image quality CVAT was given."""
    if path.startswith("/api/tasks?"):
        by_id = {task["id"]: task for task in ours["results"]}
        assert sorted(by_id) == [7, 8]
        for task in recorded["results"]:
            if task["id"] in by_id:
                assert _scrub(by_id[task["id"]], _VOLATILE) == _scrub(task, _VOLATILE)
        return
    ignored = _VOLATILE | ({"id", "url"} if "/jobs" in path or "/annotations" in path else set())
    assert _scrub(ours, ignored) == _scrub(recorded, ignored)


# ---------------------------------------------------------------------- replay
def _replay(server: FakeCvatServer, records: list[dict[str, Any]], replayed: Counter[str],
            tasks: tuple[str, ...] = ("7", "8")) -> list[str]:
    """Send every recorded request in order and compare the answers; the paths skipped
    (label lists of tasks other than ``tasks``)."""
    skipped = []
    auth: dict[str, str] = {}
    for record in records:
        method, path = record["method"], record["path"]
        if method == "GET" and path.startswith("/api/labels?task_id=") and \
                path.split("=")[1].split("&")[0] not in tasks:
            skipped.append(path)  # the recorded server's other tasks are not reproduced
            continue
        if path == "/api/server/about":
            auth = {}  # every phase starts with a fresh client
        body = record["request_body"]["text"].replace(
            "<password>", "wrong-pw" if record["phase"] == "login_wrong_password" else PASSWORD)
        headers = {k: auth.get(k, v) for k, v in record["request_headers"].items()}
        status, response_headers, data = _http(server, method, path, body or None, headers)

        where = f"{record['phase']}: {method} {path}"
        assert status == record["status"], where
        assert response_headers["Content-Type"] == record["response_headers"]["content-type"]
        if path == "/api/auth/login" and status == 200:
            cookies = SimpleCookie()
            for header in response_headers.get_all("Set-Cookie"):
                cookies.load(header)
            assert {"sessionid", "csrftoken"} <= cookies.keys()
            auth = {"Cookie": f"sessionid={cookies['sessionid'].value}; "
                              f"csrftoken={cookies['csrftoken'].value}",
                    "X-CSRFToken": cookies["csrftoken"].value}
        if "base64" in record["response_body"]:
            recorded_zip = _zip_members(base64.b64decode(record["response_body"]["base64"]))
            our_zip = _zip_members(data)
            assert [i.filename for i, _ in our_zip] == [i.filename for i, _ in recorded_zip]
            for (info, ours), (_, theirs) in zip(our_zip, recorded_zip):
                assert info.compress_type == zipfile.ZIP_STORED and ours == theirs
                a, b = PIL.Image.open(io.BytesIO(ours)), PIL.Image.open(io.BytesIO(theirs))
                assert (a.format, a.size) == (b.format, b.size) == ("JPEG", (96, 64))
        else:
            ours, recorded = json.loads(data), _recorded_json(record, server)
            _assert_same_structure(ours, recorded, where)
            if path != "/api/auth/login" or status != 200:  # the key is random
                _assert_same_values(path, ours, recorded)
        replayed[f"{method} {path.split('?')[0]}"] += 1
    return skipped


def test_replay_recorded_exchanges(recorded: FakeCvatServer) -> None:
    """Replay every recorded request in order on one server and compare the answers."""
    replayed: Counter[str] = Counter()
    skipped = _replay(recorded, _records(), replayed)

    assert skipped == [f"/api/labels?task_id={i}&org=&page=1" for i in range(6, 0, -1)]
    for endpoint in ["GET /api/server/about", "POST /api/auth/login", "GET /api/tasks",
                     "GET /api/tasks/7", "GET /api/tasks/8", "GET /api/tasks/999999",
                     "GET /api/labels", "GET /api/tasks/7/data/meta", "GET /api/jobs",
                     "GET /api/tasks/7/data/", "GET /api/tasks/8/data/",
                     "GET /api/tasks/7/annotations/", "PATCH /api/tasks/7/annotations/",
                     "PUT /api/tasks/7/annotations/"]:
        assert replayed[endpoint], endpoint
    assert sum(replayed.values()) == len(_records()) - 6


def test_replay_recorded_scores_and_frame_tags(fake_cvat: FakeCvatServer) -> None:
    """The annotation loop's exchanges: shapes with scores, frame tags added and removed."""
    records = [json.loads(line) for line in LOOP_RECORDINGS.read_text().splitlines()
               if line.strip()]
    labels = next(json.loads(r["response_body"]["text"])["results"] for r in records
                  if r["path"].startswith("/api/labels?task_id=4"))
    fake_cvat.clear()
    replayed: Counter[str] = Counter()
    meta = next(json.loads(r["response_body"]["text"]) for r in records
                if r["path"] == "/api/tasks/4/data/meta")
    chunk = next(r for r in records if r["path"].startswith("/api/tasks/4/data/?"))
    images = [data for _, data in
              _zip_members(base64.b64decode(chunk["response_body"]["base64"]))]
    frames = [(f["name"], data) for f, data in zip(meta["frames"], images, strict=True)]
    fake_cvat.add_task("recorded-loop", [{k: label[k] for k in (
        "id", "name", "type", "color", "attributes")} for label in labels], frames,
        chunk_size=4, task_id=4)
    assert _replay(fake_cvat, records, replayed, tasks=("4",)) == []
    # the last PUT replaced all, tags included, as on the real server
    assert fake_cvat.tags(4) == []
    assert [s["score"] for s in fake_cvat.shapes(4)] == [0.25]
    assert replayed["PATCH /api/tasks/4/annotations/"] == 2  # tags added, then one deleted
    assert replayed["PUT /api/tasks/4/annotations/"] == 2
    assert sum(replayed.values()) == len(records)


# ------------------------------------------------------------- with cvat-sdk
def test_sdk_password_login_lists_tasks_labels_jobs(recorded: FakeCvatServer,
                                                    tmp_path: Path) -> None:
    client = _connect(recorded, tmp_path, credentials=(USER, PASSWORD))
    assert [(t.id, t.name) for t in client.tasks.list()] == [
        (8, "recorded-empty"), (7, "recorded-shapes")]
    task = client.tasks.retrieve(7)
    assert [(l.id, l.name, l.type) for l in task.get_labels()] == [
        (14, "square", "rectangle"), (15, "triangle", "polygon"), (16, "blob", "mask")]
    assert [(j.start_frame, j.stop_frame) for j in task.get_jobs()] == [(0, 5)]
    assert [f.name for f in task.get_meta().frames] == [f"frame_{i:02d}.jpg" for i in range(6)]

    # pagination (cvat-sdk asks for the next page while "next" is set) and filters
    assert [t.id for t in client.tasks.list(page_size=1)] == [8, 7]
    assert any(p.startswith("/api/tasks?") and "page=2" in p for _, p in recorded.requests)
    by_name = cvat_sdk.core.filters.F.name == "recorded-empty"
    assert [t.id for t in client.tasks.list(filter=by_name)] == [8]
    assert [t.id for t in client.tasks.list(id__lt=8)] == [7]
    client.logout()


def test_sdk_access_token(recorded: FakeCvatServer, tmp_path: Path) -> None:
    client = _connect(recorded, tmp_path, access_token=TOKEN)
    assert [t.id for t in client.tasks.list()] == [8, 7]
    assert ("POST", "/api/auth/login") not in recorded.requests


def test_sdk_auth_and_lookup_errors(recorded: FakeCvatServer, tmp_path: Path) -> None:
    with pytest.raises(ApiException) as wrong_password:
        _connect(recorded, tmp_path, credentials=("admin", "wrong-pw"))
    assert wrong_password.value.status == 400

    client = _connect(recorded, tmp_path, access_token="not-a-token")
    with pytest.raises(UnauthorizedException) as bad_token:
        client.tasks.list()
    assert bad_token.value.status == 401
    assert json.loads(bad_token.value.body) == {"detail": "Invalid token."}

    client = _connect(recorded, tmp_path, credentials=(USER, PASSWORD))
    with pytest.raises(NotFoundException) as missing:
        client.tasks.retrieve(999999)
    assert missing.value.status == 404


def test_sdk_task_dataset_reads_then_uses_its_cache(recorded: FakeCvatServer,
                                                    tmp_path: Path) -> None:
    shapes = _recorded_shapes()
    frames = dict(_recorded_frames("taskdataset_first_read", 7, 2))
    client = _connect(recorded, tmp_path, credentials=(USER, PASSWORD))

    dataset = TaskDataset(client, 7)
    assert [s.frame_name for s in dataset.samples] == list(frames)
    labels = {label.id: label.name for label in dataset.labels}
    for sample in dataset.samples:
        got = sorted((labels[s.label_id], s.type.value, s.points, s.occluded)
                     for s in sample.annotations.shapes)
        want = sorted((s["label"], s["type"], s["points"], s["occluded"])
                      for s in shapes if s["frame"] == sample.frame_index)
        assert got == want
        image = sample.media.load_image()
        assert image.size == (96, 64)
        assert image.tobytes() == PIL.Image.open(io.BytesIO(frames[sample.frame_name])).tobytes()
    assert [len(s.annotations.shapes) for s in dataset.samples] == [3, 2, 2, 2, 2, 0]

    def paths_fetched_by_another_read() -> list[str]:
        mark = len(recorded.requests)
        again = TaskDataset(_connect(recorded, tmp_path, credentials=(USER, PASSWORD)), 7)
        assert len(again.samples) == 6
        return [path for _, path in recorded.requests[mark:]]

    cached = paths_fetched_by_another_read()
    assert "/api/tasks/7" in cached
    assert not [p for p in cached if "/data" in p or "/annotations" in p]

    recorded.set_task_updated(7)
    stale = paths_fetched_by_another_read()
    assert sum("type=chunk" in p for p in stale) == 2 and "/api/tasks/7/annotations/" in stale

    empty = TaskDataset(client, 8)
    assert [(s.frame_name, s.annotations.shapes) for s in empty.samples] == [
        ("frame_00.jpg", []), ("frame_01.jpg", [])]


class _SquareAndTriangle:
    """A detection function that finds the same square and triangle on every image."""

    spec = cvataa.DetectionFunctionSpec(labels=[
        cvataa.label_spec("square", 0, type="rectangle"),
        cvataa.label_spec("triangle", 1, type="polygon"),
    ])

    def detect(self, context: cvataa.DetectionFunctionContext,
               image: PIL.Image.Image) -> Sequence[Any]:
        assert image.size == (96, 64)
        return [cvataa.rectangle(0, [1, 2, 20.5, 22]),
                cvataa.polygon(1, [50, 5, 70, 5, 60, 25])]


def test_sdk_annotate_task_appends_then_replaces(recorded: FakeCvatServer, tmp_path: Path) -> None:
    client = _connect(recorded, tmp_path, credentials=(USER, PASSWORD))
    cvataa.annotate_task(client, 7, _SquareAndTriangle())
    assert ("PATCH", "/api/tasks/7/annotations/?action=create") in recorded.requests
    shapes = recorded.shapes(7)
    assert len(shapes) == 11 + 12
    auto = [s for s in shapes if s["source"] == "auto"]
    assert sorted((s["frame"], s["label"], s["points"]) for s in auto) == sorted(
        [(f, "square", [1.0, 2.0, 20.5, 22.0]) for f in range(6)]
        + [(f, "triangle", [50.0, 5.0, 70.0, 5.0, 60.0, 25.0]) for f in range(6)])

    cvataa.annotate_task(client, 7, _SquareAndTriangle(), clear_existing=True)
    assert ("PUT", "/api/tasks/7/annotations/") in recorded.requests
    replaced = recorded.shapes(7)
    assert len(replaced) == 12 and {s["source"] for s in replaced} == {"auto"}
    assert not {s["id"] for s in replaced} & {s["id"] for s in shapes}


def test_sdk_video_task(recorded: FakeCvatServer, tmp_path: Path) -> None:
    frames = _recorded_frames("taskdataset_first_read", 7, 2)
    video = recorded.add_task("clip", [{"name": "square", "type": "rectangle"}], frames,
                            media_type="video", chunk_size=4)
    client = _connect(recorded, tmp_path, credentials=(USER, PASSWORD))
    task = client.tasks.retrieve(video)
    assert (task.data_original_chunk_type, task.mode, task.size) == ("video", "interpolation", 6)
    with pytest.raises(UnsupportedDatasetError):
        TaskDataset(client, video)
    dataset = TaskDataset(client, video,
                          media_download_policy=MediaDownloadPolicy.FETCH_FRAMES_ON_DEMAND)
    assert [s.frame_name for s in dataset.samples] == ["frame_00.jpg"] * 6
    assert dataset.samples[5].media.load_image().size == (96, 64)


# ------------------------------------------------------------- plain HTTP checks
def test_authentication_rules(recorded: FakeCvatServer) -> None:
    assert _http(recorded, "GET", "/api/tasks")[0] == 401
    status, _, body = _http(recorded, "GET", "/api/tasks", headers={"Authorization": "Bearer x"})
    assert (status, json.loads(body)) == (401, {"detail": "Invalid token."})
    status, headers, body = _http(recorded, "GET", "/api/tasks",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert (status, headers["Content-Type"]) == (200, "application/vnd.cvat+json")

    session = _session(recorded)
    assert _http(recorded, "GET", "/api/tasks/7", headers=session)[0] == 200
    no_csrf = {"Cookie": session["Cookie"], "Content-Type": "application/json"}
    create, patch = "/api/tasks/7/annotations/?action=create", json.dumps({"shapes": []})
    assert _http(recorded, "PATCH", create, patch, no_csrf)[0] == 403
    assert _http(recorded, "PATCH", create, patch, {**no_csrf, "X-CSRFToken": "nope"})[0] == 403
    assert _http(recorded, "PATCH", create, patch, {**no_csrf, **session})[0] == 200
    assert _http(recorded, "POST", "/api/auth/logout", headers=session)[0] == 200
    assert _http(recorded, "GET", "/api/tasks/7", headers=session)[0] == 401


def test_pagination_links(recorded: FakeCvatServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = json.loads(_http(recorded, "GET", "/api/tasks?page=1&page_size=1", headers=auth)[2])
    assert (first["count"], first["next"], first["previous"]) == (
        2, f"{recorded.url}/api/tasks?page=2&page_size=1", None)
    second = json.loads(_http(recorded, "GET", "/api/tasks?page=2&page_size=1", headers=auth)[2])
    assert (second["next"], second["previous"]) == (None, f"{recorded.url}/api/tasks?page_size=1")
    assert [t["id"] for t in first["results"] + second["results"]] == [8, 7]
    assert _http(recorded, "GET", "/api/tasks?page=3&page_size=1", headers=auth)[0] == 404


def test_data_and_annotation_errors(recorded: FakeCvatServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    chunk_2 = "/api/tasks/7/data/?number=2&quality=original&type=chunk"
    status, _, body = _http(recorded, "GET", chunk_2, headers=auth)
    assert (status, json.loads(body)) == (
        400, "Invalid chunk number '2'. The chunk number should be in the [0, 1] range")
    assert _http(recorded, "GET", "/api/tasks/9/data/?number=0&type=chunk", headers=auth)[0] == 404

    before = recorded.shapes(7)
    for bad in ({"label_id": 17, "frame": 0}, {"label_id": 14, "frame": 6}):
        shape = {"type": "rectangle", "points": [0, 0, 1, 1], **bad}
        status, _, body = _http(recorded, "PATCH", "/api/tasks/7/annotations/?action=create",
                                json.dumps({"shapes": [shape]}), auth)
        assert status == 400, body
    assert recorded.shapes(7) == before


def test_update_delete_and_clear(recorded: FakeCvatServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = "/api/tasks/7/annotations/"
    target = next(s for s in recorded.shapes(7) if s["type"] == "rectangle")
    moved = {"id": target["id"], "type": "rectangle", "label_id": 14, "frame": target["frame"],
             "points": [0, 0, 9, 9]}
    update = json.dumps({"shapes": [moved]})
    assert _http(recorded, "PATCH", url + "?action=update", update, auth)[0] == 200
    updated = next(s for s in recorded.shapes(7) if s["id"] == target["id"])
    assert updated["points"] == [0.0, 0.0, 9.0, 9.0] and updated["label"] == "square"

    gone = {"shapes": [{"id": target["id"], "type": "rectangle", "label_id": 14,
                        "frame": target["frame"], "points": [0, 0, 9, 9]}]}
    assert _http(recorded, "PATCH", url + "?action=delete", json.dumps(gone), auth)[0] == 200
    assert target["id"] not in {s["id"] for s in recorded.shapes(7)}
    assert len(recorded.shapes(7)) == 10

    assert _http(recorded, "DELETE", url, headers=auth)[0] == 204
    assert recorded.shapes(7) == []
