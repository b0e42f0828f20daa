"""A small in-process fake of the CVAT REST API, for tests.

It speaks the subset of CVAT 2.73.0's API that cvat-sdk 2.80.0 uses to log in
(password or Personal Access Token), list and retrieve tasks, read labels, data
meta, jobs and original-quality chunks, and read and write task annotations.
Paths, status codes, JSON field names and content types follow the exchanges
recorded in ``tests/data/cvat-2.73.0-sdk-2.80.0.jsonl`` and, for scores and frame tags,
``tests/data/cvat-2.73.0-sdk-2.80.0-loop.jsonl``.

Usage (tests take a started one from the ``fake_cvat`` fixture)::

    with FakeCvatServer() as server:
        task_id = server.add_task("t", [{"name": "cat", "type": "rectangle"}],
                                  [("a.jpg", jpeg_bytes)])
        client = cvat_sdk.make_client(server.url, credentials=(USER, PASSWORD))
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import secrets
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from PIL import Image

USER = "admin"
PASSWORD = "secret-pw"
TOKEN = "pat-token-123"
"""The one user's credentials, unless a test gives others: a password, and a Personal
Access Token."""
JSON_TYPE = "application/vnd.cvat+json"
ZIP_TYPE = "application/zip"
_DESCRIPTION = (
    "CVAT is completely re-designed and re-implemented version of Video Annotation Tool from"
    " Irvine, California tool. It is free, online, interactive video and image annotation tool"
    " for computer vision. It is being used by our team to annotate million of objects with"
    " different properties. Many UI and UX decisions are based on feedbacks from professional"
    " data annotation team."
)
# A shape as CVAT echoes it after a write (field order and defaults as recorded).
_SHAPE_DEFAULTS: dict[str, Any] = {
    "occluded": False, "outside": False, "z_order": 0, "rotation": 0, "group": 0,
    "source": "manual", "score": 1, "attributes": [], "elements": [],
}
_ECHO_ORDER = ("type", "occluded", "outside", "z_order", "rotation", "points", "id", "label_id",
               "group", "source", "frame", "score", "attributes", "elements")
# A shape as CVAT returns it from GET .../annotations/.
_STORED_ORDER = ("id", "label_id", "type", "frame", "group", "source", "score", "occluded",
                 "outside", "z_order", "rotation", "points", "attributes", "elements")
# A frame tag as CVAT echoes it after a write, and as GET .../annotations/ returns it.
_TAG_ECHO_ORDER = ("id", "label_id", "group", "source", "frame", "attributes")
_TAG_STORED_ORDER = ("id", "label_id", "frame", "group", "source", "attributes")
_NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}


class ApiError(Exception):
    """Raised by a handler to answer with ``status`` and the JSON ``body``."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status, self.body = status, body


def _timestamp(moment: datetime | None = None) -> str:
    """Format a UTC time the way CVAT does: ``2026-11-24T08:18:53.561281Z``."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _later_than(previous: str) -> str:
    """Now, or one microsecond after ``previous`` when the clock has not moved on."""
    before = datetime.strptime(previous, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return _timestamp(max(datetime.now(timezone.utc), before + timedelta(microseconds=1)))


@dataclass
class _Frame:
    name: str
    data: bytes
    width: int
    height: int


@dataclass
class _Task:
    id: int
    job_id: int
    name: str
    labels: list[dict[str, Any]]
    frames: list[_Frame]
    chunk_size: int
    media_type: str
    status: str
    created: str
    updated: str
    shapes: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)

    def label_ids(self) -> dict[int, str]:
        return {label["id"]: label["name"] for label in self.labels}


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise ApiError(400, {"detail": f"JSON parse error - {e}"}) from e


_Response = tuple[int, Any, str, list[tuple[str, str]]]


def _json_logic(expr: Any, obj: dict[str, Any]) -> Any:
    """Evaluate the JSON Logic subset that cvat-sdk's ``filter=`` produces."""
    if not isinstance(expr, dict):
        return expr
    (op, args), = expr.items()
    if op == "var":
        value = obj.get(args)
        return value["username"] if isinstance(value, dict) and "username" in value else value
    args = [_json_logic(a, obj) for a in (args if isinstance(args, list) else [args])]
    ops: dict[str, Callable[[], Any]] = {
        "and": lambda: all(args), "or": lambda: any(args), "!": lambda: not args[0],
        "==": lambda: args[0] == args[1], "!=": lambda: args[0] != args[1],
        "<": lambda: args[0] < args[1], ">": lambda: args[0] > args[1],
        "<=": lambda: all(a <= b for a, b in zip(args, args[1:])),
        ">=": lambda: args[0] >= args[1],
        "in": lambda: args[1] is not None and args[0] in args[1],
    }
    if op not in ops:
        raise ApiError(400, {"filter": [f"Unsupported operation: {op}"]})
    try:
        return ops[op]()
    except TypeError:
        return False


class FakeCvatServer:
    """An in-memory CVAT server on ``127.0.0.1`` (random port) served from a daemon thread.

    One user (``username``/``password``) exists; it may also authenticate with
    ``Authorization: Bearer <access_token>``. Every task has exactly one job.
    """

    server_version = "2.73.0"  # what CVAT reported in the recordings

    def __init__(self, *, username: str = USER, password: str = PASSWORD,
                 access_token: str = TOKEN) -> None:
        self.username, self.password, self.access_token = username, password, access_token
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._tasks: dict[int, _Task] = {}
        self._sessions: dict[str, str] = {}  # sessionid -> csrftoken
        self._next = {"task": 1, "job": 1, "label": 1, "shape": 1, "tag": 1}
        self._faults: list[tuple[str, int, bool]] = []  # (method, status, apply first)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., _Response]]] = [
            (m, re.compile(p + "/?$"), f) for m, p, f in [
                ("GET", r"/api/server/about", self._about),
                ("POST", r"/api/auth/login", self._login),
                ("POST", r"/api/auth/logout", self._logout),
                ("GET", r"/api/tasks", self._list_tasks),
                ("GET", r"/api/tasks/(\d+)", self._retrieve_task),
                ("GET", r"/api/tasks/(\d+)/data/meta", self._data_meta),
                ("GET", r"/api/tasks/(\d+)/data", self._data),
                ("GET", r"/api/tasks/(\d+)/annotations", self._get_annotations),
                ("PATCH", r"/api/tasks/(\d+)/annotations", self._patch_annotations),
                ("PUT", r"/api/tasks/(\d+)/annotations", self._put_annotations),
                ("DELETE", r"/api/tasks/(\d+)/annotations", self._delete_annotations),
                ("GET", r"/api/labels", self._list_labels),
                ("GET", r"/api/jobs", self._list_jobs),
                ("GET", r"/api/projects", self._list_projects),
            ]
        ]

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeCvatServer:
        """Bind a free port and serve in a daemon thread; sets :attr:`url`."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes
            timeout = 30

            def _handle(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeCvatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------ test helpers
    def add_task(self, name: str, labels: list[dict], frames: list[tuple[str, bytes]], *,
                 shapes: Sequence[dict] = (), chunk_size: int = 4, media_type: str = "image",
                 status: str = "annotation", task_id: int | None = None) -> int:
        """Create a task with one job and return its id.

        ``labels`` are ``{"name", "type", "color", "attributes"}`` dicts (an optional ``"id"``
        forces the label id); ``frames`` are ``(file name, encoded image)`` pairs; ``shapes``
        are LabeledShape-like dicts naming their label with ``"label"`` instead of ``label_id``.
        ``media_type="video"`` makes the task look like a video task to cvat-sdk.
        """
        if media_type not in ("image", "video") or not frames or chunk_size < 1:
            raise ValueError("need frames, chunk_size >= 1 and media_type 'image' or 'video'")
        decoded = []
        for file_name, data in frames:
            with Image.open(io.BytesIO(data)) as image:
                decoded.append(_Frame(file_name, data, image.width, image.height))
        with self._lock:
            task_id = self._take_id("task", task_id)
            if task_id in self._tasks:
                raise ValueError(f"task {task_id} already exists")
            task_labels = [{
                "id": self._take_id("label", label.get("id")), "name": label["name"],
                "color": label.get("color", "#afdd95"),
                "attributes": list(label.get("attributes", [])),
                "type": label.get("type", "any"), "sublabels": [], "task_id": task_id,
                "parent_id": None, "has_parent": False,
            } for label in labels]
            now = _timestamp()
            task = _Task(task_id, self._take_id("job"), name, task_labels, decoded, chunk_size,
                         media_type, status, now, now)
            by_name = {label["name"]: label["id"] for label in task_labels}
            for shape in shapes:
                shape = dict(shape)
                if shape.get("label") not in by_name:
                    raise ValueError(f"shape refers to unknown label {shape.get('label')!r}")
                shape["label_id"] = by_name[shape.pop("label")]
                try:
                    task.shapes.append(self._new_shape(task, shape)[1])
                except ApiError as e:
                    raise ValueError(e.body) from None
            self._tasks[task_id] = task
            return task_id

    def clear(self) -> None:
        """Forget every task, session, request and fault: as a server just started."""
        with self._lock:
            self._tasks.clear()
            self._sessions.clear()
            self.requests.clear()
            self._faults.clear()
            self._next = dict.fromkeys(self._next, 1)

    def shapes(self, task_id: int) -> list[dict]:
        """The task's stored shapes, each with ``"label": name`` in place of ``label_id``."""
        with self._lock:
            task = self._tasks[task_id]
            names = task.label_ids()
            return copy.deepcopy([
                {**{k: v for k, v in s.items() if k != "label_id"}, "label": names[s["label_id"]]}
                for s in self._sorted(task.shapes)])

    def tags(self, task_id: int) -> list[dict]:
        """The task's frame tags, with label names instead of ids."""
        with self._lock:
            task = self._tasks[task_id]
            names = task.label_ids()
            return [{**{k: v for k, v in t.items() if k != "label_id"},
                     "label": names[t["label_id"]]} for t in self._sorted(task.tags)]

    def set_task_updated(self, task_id: int) -> None:
        """Bump the task's ``updated_date`` so cvat-sdk treats its cache as stale."""
        with self._lock:
            task = self._tasks[task_id]
            task.updated = _later_than(task.updated)

    # ------------------------------------------------------------- internals
    def reset_faults(self) -> list[tuple[str, int, bool]]:
        """Disarm the faults ``fail_next`` armed and no request met; the ones that were
        left."""
        with self._lock:
            left, self._faults = self._faults, []
        return left

    def fail_next(self, method: str, *, status: int = 502, apply: bool = False) -> None:
        """Answer the next ``method`` request to a task's annotations with ``status``;
        with ``apply`` the write is carried out first (a response lost on the way back)."""
        with self._lock:
            self._faults.append((method, status, apply))

    def _take_id(self, kind: str, forced: int | None = None) -> int:
        value = self._next[kind] if forced is None else forced
        self._next[kind] = max(self._next[kind], value + 1)
        return value

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Parse one request, dispatch it and write the response."""
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = _Request(handler.command, parts.path,
                           dict(parse_qsl(parts.query, keep_blank_values=True)),
                           handler.headers, handler.rfile.read(length))
        with self._lock:
            self.requests.append((handler.command, handler.path))
        try:
            status, body, content_type, headers = self._dispatch(request)
        except ApiError as e:
            status, body, content_type, headers = e.status, e.body, JSON_TYPE, []
        except Exception as e:  # a bug or an unexpected payload: answer like Django would
            status, body, content_type, headers = 500, {"detail": repr(e)}, JSON_TYPE, []
        payload = body if isinstance(body, bytes) else (
            b"" if body is None else json.dumps(body, separators=(",", ":")).encode())
        handler.send_response(status)
        if body is not None:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _dispatch(self, request: _Request) -> _Response:
        path_matched = False
        for method, pattern, func in self._routes:
            match = pattern.match(request.path)
            if match:
                path_matched = True
                if method == request.method:
                    with self._lock:
                        if func not in (self._about, self._login, self._logout):
                            self._authenticate(request)
                        fault = self._fault(request)
                        if fault is None:
                            return func(request, *map(int, match.groups()))
                        status, apply = fault
                        if apply:
                            func(request, *map(int, match.groups()))
                        raise ApiError(status, {"detail": "Bad gateway (injected by the test)"})
        if path_matched:
            raise ApiError(405, {"detail": f'Method "{request.method}" not allowed.'})
        raise ApiError(404, {"detail": "Not found."})

    def _fault(self, request: _Request) -> tuple[int, bool] | None:
        for i, (method, status, apply) in enumerate(self._faults):
            if method == request.method and "/annotations" in request.path:
                del self._faults[i]
                return status, apply
        return None

    def _authenticate(self, request: _Request) -> None:
        """Accept a Bearer PAT or a session cookie (plus the CSRF header for unsafe methods)."""
        scheme, _, credential = (request.headers.get("Authorization") or "").partition(" ")
        if scheme == "Bearer":
            if credential != self.access_token:
                raise ApiError(401, {"detail": "Invalid token."})
            return
        cookies = SimpleCookie(request.headers.get("Cookie") or "")
        session = cookies["sessionid"].value if "sessionid" in cookies else None
        if session not in self._sessions:
            raise ApiError(401, _NOT_AUTHENTICATED)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            header = request.headers.get("X-CSRFToken")
            if not header:
                raise ApiError(403, {"detail": "CSRF Failed: CSRF token missing."})
            if "csrftoken" not in cookies or header != cookies["csrftoken"].value:
                raise ApiError(403, {"detail": "CSRF Failed: CSRF token from the 'X-Csrftoken'"
                                               " HTTP header incorrect."})

    def _task(self, task_id: int) -> _Task:
        if task_id not in self._tasks:
            raise ApiError(404, {"detail": "No Task matches the given query."})
        return self._tasks[task_id]

    def _paginate(self, request: _Request, items: list[Any]) -> _Response:
        """DRF page-number pagination (``page``, ``page_size``; default 10 per page)."""
        try:
            page, size = int(request.query.get("page", 1)), int(request.query.get("page_size", 10))
        except ValueError:
            raise ApiError(404, {"detail": "Invalid page."}) from None
        pages = max(1, math.ceil(len(items) / max(size, 1)))
        if not 1 <= page <= pages or size < 1:
            raise ApiError(404, {"detail": "Invalid page."})

        def link(number: int) -> str | None:
            if not 1 <= number <= pages:
                return None
            query = {k: v for k, v in request.query.items() if k != "page"}
            if number > 1:
                query["page"] = str(number)
            encoded = urlencode(sorted(query.items()))
            return self.url + request.path + ("?" + encoded if encoded else "")

        results = items[(page - 1) * size:page * size]
        return 200, {"count": len(items), "next": link(page + 1),
                     "previous": link(page - 1), "results": results}, JSON_TYPE, []

    def _task_json(self, task: _Task) -> dict[str, Any]:
        chunk_type = "imageset" if task.media_type == "image" else "video"
        return {
            "url": f"{self.url}/api/tasks/{task.id}", "id": task.id, "name": task.name,
            "project_id": None, "project_name": None, "owner": {
                "url": f"{self.url}/api/users/1", "id": 1, "username": self.username,
                "first_name": "", "last_name": ""},
            "assignee": None, "bug_tracker": "", "created_date": task.created,
            "updated_date": task.updated, "overlap": 0, "segment_size": len(task.frames),
            "status": task.status, "data_chunk_size": task.chunk_size,
            "data_original_chunk_type": chunk_type, "data_compressed_chunk_type": chunk_type,
            "data_cloud_storage_id": None, "guide_id": None, "size": len(task.frames),
            "image_quality": 70, "data": task.id, "dimension": "2d",
            "mode": "annotation" if task.media_type == "image" else "interpolation",
            "media_type": task.media_type, "subset": "", "organization_id": None,
            "organization": None, "target_storage": None, "source_storage": None,
            "jobs": {"count": 1, "completed": int(task.status == "completed"), "validation": 0,
                     "url": f"{self.url}/api/jobs?task_id={task.id}"},
            "labels": {"url": f"{self.url}/api/labels?task_id={task.id}"},
            "assignee_updated_date": None, "validation_mode": None, "consensus_enabled": False,
        }

    def _job_json(self, task: _Task) -> dict[str, Any]:
        done = task.status == "completed"
        task_json = self._task_json(task)
        return {
            "url": f"{self.url}/api/jobs/{task.job_id}", "id": task.job_id, "task_id": task.id,
            "task_name": task.name, "project_id": None, "project_name": None, "assignee": None,
            "guide_id": None, "dimension": "2d", "mode": task_json["mode"],
            "media_type": task.media_type, "bug_tracker": None, "status": task.status,
            "stage": "acceptance" if done else "annotation",
            "state": "completed" if done else "new", "frame_count": len(task.frames),
            "start_frame": 0, "stop_frame": len(task.frames) - 1,
            "data_chunk_size": task.chunk_size,
            "data_compressed_chunk_type": task_json["data_compressed_chunk_type"],
            "data_original_chunk_type": task_json["data_original_chunk_type"],
            "created_date": task.created, "updated_date": task.updated,
            "issues": {"url": f"{self.url}/api/issues?job_id={task.job_id}", "count": 0},
            "labels": {"url": f"{self.url}/api/labels?job_id={task.job_id}"},
            "type": "annotation", "organization": None, "target_storage": None,
            "source_storage": None, "assignee_updated_date": None, "parent_job_id": None,
            "replicas_count": 0, "consensus_replicas": 0,
        }

    @staticmethod
    def _check(task: _Task, item: dict[str, Any], kind: str, required: tuple[str, ...]) -> None:
        """Refuse a shape or tag (``kind``: the payload's key) as CVAT does: a field
        missing, a label the task lacks, a frame outside it."""
        missing = [k for k in required if k not in item]
        if missing:
            raise ApiError(400, {kind: [{k: ["This field is required."] for k in missing}]})
        if item["label_id"] not in task.label_ids():
            raise ApiError(400, [f"label_id `{item['label_id']}` is invalid"])
        if not 0 <= item["frame"] < len(task.frames):
            raise ApiError(400, [f"Frame {item['frame']} is out of the task frame range"
                                 f" [0, {len(task.frames) - 1}]"])

    def _new_shape(self, task: _Task, shape: dict[str, Any],
                   shape_id: int | None = None) -> tuple[dict, dict]:
        """Validate a shape and give it an id (a new one unless given).

        Returns the shape as CVAT echoes it after a write and as it stores it.
        """
        self._check(task, shape, "shapes", ("type", "label_id", "frame", "points"))
        merged = {**_SHAPE_DEFAULTS, **shape, "id": shape_id or self._take_id("shape")}
        echoed = {k: merged[k] for k in _ECHO_ORDER}
        stored = {k: merged[k] for k in _STORED_ORDER}
        stored.update(score=float(merged["score"]), rotation=float(merged["rotation"]),
                      points=[float(p) for p in merged["points"]])
        return echoed, stored

    def _new_tag(self, task: _Task, tag: dict[str, Any]) -> tuple[dict, dict]:
        """Validate a frame tag and give it a new id; as echoed and as stored."""
        self._check(task, tag, "tags", ("label_id", "frame"))
        merged = {"group": 0, "source": "manual", "attributes": [],
                  **{k: v for k, v in tag.items() if k != "id"}, "id": self._take_id("tag")}
        return ({k: merged[k] for k in _TAG_ECHO_ORDER},
                {k: merged[k] for k in _TAG_STORED_ORDER})

    @staticmethod
    def _sorted(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(shapes, key=lambda s: (s["frame"], s["id"]))

    def _write_payload(self, request: _Request) -> tuple[list[dict], list[dict]]:
        """The shapes and frame tags of a write request (tracks are not supported)."""
        data = request.json()
        if not isinstance(data, dict) or not all(
                isinstance(data.get(k, []), list) for k in ("shapes", "tags")):
            raise ApiError(400, {"non_field_errors": ["Invalid data."]})
        if data.get("tracks"):
            raise ApiError(400, {"detail": "The fake CVAT server stores shapes and tags only"})
        return data.get("shapes", []), data.get("tags", [])

    def _written(self, task: _Task, shapes: list[dict[str, Any]],
                 tags: list[dict[str, Any]] = ()) -> _Response:
        task.updated = _later_than(task.updated)
        body = {"version": 0, "tags": list(tags), "shapes": shapes, "tracks": [],
                "intervals": []}
        return 200, body, JSON_TYPE, []

    # -------------------------------------------------------------- endpoints
    def _about(self, request: _Request) -> _Response:
        return 200, {"name": "Computer Vision Annotation Tool", "description": _DESCRIPTION,
                     "version": self.server_version, "logo_url": f"{self.url}/static/logo.svg",
                     "subtitle": "Open Data Annotation Platform"}, JSON_TYPE, []

    def _login(self, request: _Request) -> _Response:
        data = request.json()
        if not isinstance(data, dict) or (data.get("username"), data.get("password")) != (
                self.username, self.password):
            message = "Unable to log in with provided credentials."
            raise ApiError(400, {"non_field_errors": [message]})
        session, csrf = secrets.token_hex(16), secrets.token_hex(16)
        self._sessions[session] = csrf
        return 200, {"key": secrets.token_hex(20)}, JSON_TYPE, [
            ("Set-Cookie", f"csrftoken={csrf}; Path=/; SameSite=Lax"),
            ("Set-Cookie", f"sessionid={session}; HttpOnly; Path=/; SameSite=Lax")]

    def _logout(self, request: _Request) -> _Response:
        cookies = SimpleCookie(request.headers.get("Cookie") or "")
        if "sessionid" in cookies:
            self._sessions.pop(cookies["sessionid"].value, None)
        return 200, {"detail": "Successfully logged out."}, JSON_TYPE, [
            ("Set-Cookie", 'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0;'
                           " Path=/")]

    def _list_tasks(self, request: _Request) -> _Response:
        tasks = [self._task_json(t) for t in sorted(self._tasks.values(), key=lambda t: -t.id)]
        query = request.query
        for key in ("search", "name"):
            if query.get(key):
                tasks = [t for t in tasks if query[key].lower() in t["name"].lower()]
        for key in ("id", "status", "mode", "dimension", "subset", "media_type"):
            if query.get(key):
                tasks = [t for t in tasks if str(t[key]) == query[key]]
        if query.get("filter"):
            try:
                condition = json.loads(query["filter"])
            except ValueError:
                raise ApiError(400, {"filter": ["Invalid filter: expected JSON"]}) from None
            tasks = [t for t in tasks if _json_logic(condition, t)]
        return self._paginate(request, tasks)

    def _retrieve_task(self, request: _Request, task_id: int) -> _Response:
        return 200, self._task_json(self._task(task_id)), JSON_TYPE, []

    def _list_labels(self, request: _Request) -> _Response:
        if request.query.get("job_id"):
            job_id = int(request.query["job_id"])
            tasks = [t for t in self._tasks.values() if t.job_id == job_id]
            if not tasks:
                raise ApiError(404, {"detail": "No Job matches the given query."})
        elif request.query.get("task_id"):
            tasks = [self._task(int(request.query["task_id"]))]
        else:
            tasks = sorted(self._tasks.values(), key=lambda t: t.id)
        return self._paginate(request, [dict(label) for t in tasks for label in t.labels])

    def _list_projects(self, request: _Request) -> _Response:
        """This server keeps tasks only: its list of projects is empty (projects are
        tested against a real CVAT, ``real_cvat``)."""
        return self._paginate(request, [])

    def _list_jobs(self, request: _Request) -> _Response:
        tasks = sorted(self._tasks.values(), key=lambda t: -t.id)
        if request.query.get("task_id"):
            tasks = [t for t in tasks if str(t.id) == request.query["task_id"]]
        return self._paginate(request, [self._job_json(t) for t in tasks])

    def _data_meta(self, request: _Request, task_id: int) -> _Response:
        task = self._task(task_id)
        frames = [{"width": f.width, "height": f.height, "name": f.name, "related_files": 0,
                   "has_related_context": False} for f in task.frames]
        return 200, {
            "chapters": None, "chunks_updated_date": task.created,
            "chunk_size": task.chunk_size, "size": len(task.frames), "image_quality": 70,
            "start_frame": 0, "stop_frame": len(task.frames) - 1, "frame_filter": "",
            "frames": frames if task.media_type == "image" else frames[:1],
            "deleted_frames": [], "included_frames": None, "storage": "local",
            "cloud_storage_id": None,
        }, JSON_TYPE, []

    def _data(self, request: _Request, task_id: int) -> _Response:
        """Original chunks as stored zips (``000000.jpg``...); ``type=frame`` gives one image."""
        task = self._task(task_id)
        kind, number = request.query.get("type"), request.query.get("number", "")
        if kind not in ("chunk", "frame"):
            raise ApiError(400, f"unknown data type {kind}.")
        if not number.lstrip("-").isdigit():
            raise ApiError(400, {"number": ["A valid integer is required."]})
        index = int(number)
        if kind == "frame":
            if not 0 <= index < len(task.frames):
                raise ApiError(400, f"Invalid frame number '{index}'. The frame number should be"
                                    f" in the [0, {len(task.frames) - 1}] range")
            frame = task.frames[index]
            return 200, frame.data, Image.MIME.get(
                Image.open(io.BytesIO(frame.data)).format or "", "image/jpeg"), []
        last = math.ceil(len(task.frames) / task.chunk_size) - 1
        if not 0 <= index <= last:
            raise ApiError(400, f"Invalid chunk number '{index}'. "
                                f"The chunk number should be in the [0, {last}] range")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            chunk = task.frames[index * task.chunk_size:(index + 1) * task.chunk_size]
            for position, frame in enumerate(chunk):
                suffix = PurePosixPath(frame.name).suffix.lower() or ".jpg"
                archive.writestr(f"{position:06d}{suffix}", frame.data)
        return 200, buffer.getvalue(), ZIP_TYPE, []

    def _get_annotations(self, request: _Request, task_id: int) -> _Response:
        task = self._task(task_id)
        return 200, {"version": 0, "tags": self._sorted(task.tags),
                     "shapes": self._sorted(task.shapes), "tracks": [],
                     "intervals": []}, JSON_TYPE, []

    def _patch_annotations(self, request: _Request, task_id: int) -> _Response:
        task = self._task(task_id)
        action = request.query.get("action")
        shapes, tags = self._write_payload(request)
        if action == "create":
            created = [self._new_shape(task, {k: v for k, v in s.items() if k != "id"})
                       for s in shapes]
            new_tags = [self._new_tag(task, t) for t in tags]
            task.shapes.extend(stored for _, stored in created)
            task.tags.extend(stored for _, stored in new_tags)
            return self._written(task, [echoed for echoed, _ in created],
                                 [echoed for echoed, _ in new_tags])
        if action not in ("update", "delete"):
            raise ApiError(400, {"action": [f'"{action}" is not a valid choice.']})
        by_id = {s["id"]: s for s in task.shapes}
        unknown = [s.get("id") for s in shapes if s.get("id") not in by_id]
        if unknown:
            raise ApiError(400, [f"Shape with id #{unknown[0]} doesn't exist"])
        tags_by_id = {t["id"]: t for t in task.tags}
        unknown = [t.get("id") for t in tags if t.get("id") not in tags_by_id]
        if unknown:
            raise ApiError(400, [f"Tag with id #{unknown[0]} doesn't exist"])
        if action == "delete":
            doomed = {s["id"] for s in shapes}
            task.shapes = [s for s in task.shapes if s["id"] not in doomed]
            doomed_tags = {t["id"] for t in tags}
            task.tags = [t for t in task.tags if t["id"] not in doomed_tags]
            return self._written(task, shapes, [
                {k: tags_by_id[t["id"]][k] for k in _TAG_ECHO_ORDER} for t in tags])
        if tags:
            raise ApiError(400, {"detail": "The fake CVAT server does not update tags"})
        updated = [self._new_shape(task, {**by_id[u["id"]], **u}, u["id"])[1] for u in shapes]
        for stored in updated:  # validated all first, so a bad shape changes nothing
            task.shapes[task.shapes.index(by_id[stored["id"]])] = stored
        return self._written(task, shapes)

    def _put_annotations(self, request: _Request, task_id: int) -> _Response:
        task = self._task(task_id)
        shapes, tags = self._write_payload(request)
        created = [self._new_shape(task, {k: v for k, v in s.items() if k != "id"})
                   for s in shapes]
        new_tags = [self._new_tag(task, t) for t in tags]
        task.shapes = [stored for _, stored in created]
        task.tags = [stored for _, stored in new_tags]
        return self._written(task, [echoed for echoed, _ in created],
                             [echoed for echoed, _ in new_tags])

    def _delete_annotations(self, request: _Request, task_id: int) -> _Response:
        task = self._task(task_id)
        task.shapes, task.tags = [], []
        task.updated = _later_than(task.updated)
        return 204, None, JSON_TYPE, []
