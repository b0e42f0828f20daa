"""Tasks on a live CVAT server, read through cvat-sdk.

Credentials come from the call or the environment (``CVAT_ACCESS_TOKEN``, or
``CVAT_USER`` and ``CVAT_PASSWORD``) and stay in memory: cvatkit never writes them.
Frames and annotations go through ``cvat_sdk.datasets.TaskDataset`` and its local cache,
so reading the same task again downloads nothing new.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..addresses import redacted, split_credentials
from ..errors import AnnotationError, ServerError, UsageError
from ..limits import ANSWER, IMAGE
from ..records import Frame, LabelMap, Shape, TaskSummary
from .jobs import AUTO, Job, choose_jobs, job_from_cvat, parse_jobs
from .source import UNLABELLED
from .sdk import attribute_names, label_map_from_cvat, shape_from_cvat, summary_from_cvat

HOST_ENV = "CVAT_HOST"
TOKEN_ENV = "CVAT_ACCESS_TOKEN"
USER_ENV = "CVAT_USER"
PASSWORD_ENV = "CVAT_PASSWORD"
CACHE_ENV = "CVATKIT_CVAT_CACHE"


def connect(host: str | None = None, *, access_token: str | None = None,
            user: str | None = None, password: str | None = None,
            cache_dir: str | os.PathLike[str] | None = None):
    """A logged-in ``cvat_sdk.Client``.

    ``host`` defaults to ``$CVAT_HOST``. Credentials: ``access_token``, else ``user`` and
    ``password``, else ``$CVAT_ACCESS_TOKEN``, else ``$CVAT_USER`` and ``$CVAT_PASSWORD``.
    """
    from cvat_sdk.core.client import AccessTokenCredentials, Client, Config
    from cvat_sdk.core.exceptions import InvalidHostException

    host = host or os.environ.get(HOST_ENV)
    if not host:
        raise UsageError(
            "no CVAT server is configured: pass --server-host https://your.cvat.host (or "
            f"host= in Python), or set {HOST_ENV}")
    # A user and password in the address serve as credentials when no others are given;
    # from here on the address is shown, written and used without them.
    host, url_user, url_password = split_credentials(host)
    if access_token is None and user is None and url_user and url_password and not (
            os.environ.get(TOKEN_ENV) or os.environ.get(USER_ENV)):
        user, password = url_user, url_password
    if access_token is None and user is None:
        access_token = os.environ.get(TOKEN_ENV) or None
        if access_token is None:
            user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if access_token is None and not (user and password):
        raise UsageError(
            f"no CVAT credentials for {host}: set {TOKEN_ENV} to a Personal Access Token "
            f"(CVAT: your profile > Security), or {USER_ENV} and {PASSWORD_ENV}")
    cache = Path(cache_dir or os.environ.get(CACHE_ENV) or Config().cache_dir)
    try:
        # The server's version is asked for below, where an answer that is not CVAT's
        # gets a message of its own (cvat-sdk would log the page it got instead).
        client = Client(host, config=Config(cache_dir=cache), check_server_version=False)
    except InvalidHostException as e:
        raise UsageError(f"CVAT host {host!r} is not a valid address: "
                         f"{redacted(str(e))}") from None
    except Exception as e:
        raise server_error(e, host, "connect") from None
    _bound_waits(client)
    try:
        client.api_client.server_api.retrieve_about()
    except Exception as e:
        client.close()
        raise server_error(e, host, "connect", path="/api/server/about") from None
    try:
        if access_token is not None:
            client.login(AccessTokenCredentials(access_token))
            # A token is only checked when used: ask for one task so a bad token fails here.
            client.api_client.tasks_api.list(page_size=1)
        else:
            client.login((user, password))  # type: ignore[arg-type]
    except Exception as e:
        client.close()
        raise server_error(e, host, "log in") from None
    return client


def _bound_waits(client) -> None:
    """Every request of ``client`` waits at most ``limits.ANSWER`` for the server, and is
    tried again once after a timeout (cvat-sdk's requests wait forever by default)."""
    import urllib3

    seconds = ANSWER.value()
    rest = client.api_client.rest_client
    rest.pool_manager.connection_pool_kw["retries"] = urllib3.Retry(
        total=3, connect=1, read=1, status_forcelist=(502, 503, 504), backoff_factor=0.5)
    request = rest.request

    def bounded(*args, _request_timeout=None, **kwargs):
        return request(*args, _request_timeout=_request_timeout or (seconds, seconds),
                       **kwargs)

    rest.request = bounded


def server_host(client) -> str:
    """The address of the server a client from ``connect`` is logged in to."""
    return str(client.api_map.host)


def disconnect(client) -> None:
    """End a session from ``connect``; a session already dead is not worth a message."""
    try:
        client.close()
    except Exception:  # noqa: BLE001
        pass


def list_tasks(client, *, search: str | None = None) -> list[TaskSummary]:
    """Every task the user can see (newest first), with its labels."""
    host = client.api_map.host
    try:
        tasks = client.tasks.list()
        out = []
        for task in tasks:
            if search and search.lower() not in str(task.name).lower():
                continue
            out.append(summary_from_cvat(task, task.get_labels(), host))
    except Exception as e:
        raise server_error(e, host, "list tasks") from None
    return sorted(out, key=lambda t: t.id or 0, reverse=True)


class CvatServerSource:
    """One task of a CVAT server, read through ``cvat_sdk.datasets.TaskDataset``.

    ``jobs`` picks the jobs whose frames are read (``jobs.parse_jobs``; by default the
    finished ones, see ``jobs.JOBS_HELP``); ``frames()`` counts what it left out in
    ``left_out`` and all frames by their job's state in ``frames_by_job``.
    """

    def __init__(self, client, task_id: int, *, jobs: str | tuple[str, ...] = AUTO) -> None:
        import cvat_sdk.models as models
        from cvat_sdk.datasets import TaskDataset, UnsupportedDatasetError
        from cvat_sdk.datasets.caching import UpdatePolicy, make_cache_manager

        self.client = client
        self.task_id = int(task_id)
        host = client.api_map.host
        self.description = f"cvat://{task_id} on {host}"
        self.skipped: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.frames_by_job: Counter[str] = Counter()
        words = parse_jobs(jobs) if isinstance(jobs, str) else jobs
        try:
            self._dataset = TaskDataset(client, self.task_id)
        except UnsupportedDatasetError as e:
            raise ServerError(
                f"task {task_id} on {host} cannot be read frame by frame ({e}); cvat-sdk reads "
                "image tasks only: export the task as 'CVAT for images 1.1' and prepare the "
                "export instead") from None
        except Exception as e:
            raise server_error(e, host, f"read task {task_id}") from None
        cache = make_cache_manager(client, UpdatePolicy.NEVER)
        self._chunk_dir = cache.chunk_dir(self.task_id)
        self._task = cache.retrieve_task(self.task_id)
        self._meta = cache.ensure_task_model(
            self.task_id, "data_meta.json", models.DataMetaRead, None, "data metadata")
        annotations = cache.ensure_task_model(
            self.task_id, "annotations.json", models.LabeledData, None, "annotations")
        self._tracks = len(annotations.tracks or [])
        try:
            self._labels = label_map_from_cvat(self._dataset.labels)
        except AnnotationError as e:
            raise AnnotationError(f"{self.description}: {e}") from None
        self._label_names = {label.id: label.name for label in self._dataset.labels}
        self._attr_names = attribute_names(self._dataset.labels)
        self.jobs = choose_jobs(task_jobs(client, self.task_id), words, self.description)
        self.notes: list[str] = [self.jobs.note] if self.jobs.note else []

    @property
    def labels(self) -> LabelMap:
        return self._labels

    @property
    def tracks(self) -> int:
        """Tracks (interpolated video annotations) that TaskDataset does not expose."""
        return self._tracks

    def summary(self) -> TaskSummary:
        return summary_from_cvat(self._task, self._dataset.labels, self.client.api_map.host)

    def frames(self) -> Iterator[Frame]:
        self.skipped.clear()
        self.left_out.clear()
        self.frames_by_job.clear()
        if self._tracks:
            self.skipped["track"] = self._tracks
        sizes = self._meta.frames
        for sample in self._dataset.samples:
            k = sample.frame_index
            state = self.jobs.state_of(k)
            self.frames_by_job[state] += 1
            if not self.jobs.takes(k):
                self.left_out[f"in a job {state}"] += 1
                continue
            meta = sizes[k] if k < len(sizes) else sizes[0]
            shapes = []
            for s in sample.annotations.shapes:
                if s.label_id not in self._label_names:
                    self.skipped[UNLABELLED] += 1
                    continue
                shape = shape_from_cvat(s, self._label_names, self._attr_names,
                                        where=f"task {self.task_id} frame {k}")
                if shape is None:
                    self.skipped[getattr(s.type, "value", str(s.type))] += 1
                else:
                    shapes.append(shape)
            self.skipped["tag"] += len(sample.annotations.tags)
            yield Frame(index=k, name=sample.frame_name, width=int(meta.width),
                        height=int(meta.height), shapes=tuple(shapes),
                        where=f"task {self.task_id} frame {k}")
        if not self.skipped["tag"]:
            del self.skipped["tag"]

    @property
    def frame_count(self) -> int:
        return len(self._dataset.samples)

    def frame_names(self) -> dict[int, str]:
        """Frame number -> frame name, for every frame of the task."""
        return {sample.frame_index: sample.frame_name for sample in self._dataset.samples}

    def task_lines(self) -> list[str]:
        return []

    def task_ids(self) -> list[int]:
        return [self.task_id]

    def task_frame(self, number: int, name: str) -> tuple[int, int]:
        """The task and the frame number in it of this source's frame ``number``."""
        return self.task_id, number

    def current_annotations(self) -> tuple[dict[str, list[Shape]], set[int]]:
        """The task's shapes as the server has them now (not from the local cache), by
        frame name; and the frames that hold a shape or lie in a track (between its first
        and last key frame). One read of the task's annotations."""
        try:
            data = self.client.tasks.retrieve(self.task_id).get_annotations()
        except Exception as e:
            raise server_error(e, self.client.api_map.host,
                                f"read the annotations of task {self.task_id}") from None
        names = self.frame_names()
        shapes: dict[str, list[Shape]] = {}
        annotated = {int(s.frame) for s in data.shapes or []}
        for s in data.shapes or []:
            if s.label_id not in self._label_names:
                continue
            shape = shape_from_cvat(s, self._label_names, self._attr_names,
                                    where=f"task {self.task_id} frame {s.frame}")
            if shape is not None:
                shapes.setdefault(names.get(int(s.frame), str(s.frame)), []).append(shape)
        for track in data.tracks or []:
            keys = [int(s.frame) for s in track.shapes or []]
            if keys:
                annotated.update(range(min(keys), max(keys) + 1))
        return shapes, annotated

    def image_name(self, frame: Frame) -> str:
        return f"task {self.task_id} frame {frame.index} ({frame.name})"

    def read_image(self, frame: Frame) -> bytes:
        """The frame as stored in its original-quality chunk (no re-encoding)."""
        chunk_size = int(self._task.data_chunk_size)
        chunk = self._chunk_dir / f"{frame.index // chunk_size}.zip"
        if chunk.exists():
            with zipfile.ZipFile(chunk) as z:
                members = z.infolist()
                member = frame.index % chunk_size
                if member < len(members):
                    IMAGE.check(members[member].file_size, self.image_name(frame))
                    return z.read(members[member])
        image = self._dataset.samples[self._sample_position(frame)].media.load_image()
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    def _sample_position(self, frame: Frame) -> int:
        for i, sample in enumerate(self._dataset.samples):
            if sample.frame_index == frame.index:
                return i
        raise ServerError(f"task {self.task_id} has no frame {frame.index}")

    def opener(self) -> None:
        return None  # the client's session lives in this process

    def close(self) -> None:
        pass


def task_jobs(client, task_id: int) -> list[Job]:
    """The annotation jobs of task ``task_id``, as the server has them now."""
    try:
        jobs = client.tasks.retrieve(task_id).get_jobs()
    except Exception as e:
        raise server_error(e, client.api_map.host, f"read the jobs of task {task_id}") from None
    return sorted((j for j in map(job_from_cvat, jobs) if j is not None),
                  key=lambda j: j.start)


def server_error(e: Exception, host: str, doing: str, *,
                 path: str | None = None) -> ServerError:
    """Turn what cvat-sdk / urllib3 raise into one clear sentence (never with secrets).
    ``doing`` says what was asked (``log in``); ``path``, the request's, when known."""
    from cvat_sdk.api_client.exceptions import ApiException

    if isinstance(e, ServerError):
        return e
    host = redacted(host)
    status = getattr(e, "status", None)
    not_cvat = _not_cvat(e, host, path)
    if not_cvat is not None:
        return not_cvat
    if isinstance(e, ApiException) and status is not None:
        if status == 400 and doing == "log in":
            return ServerError(f"CVAT at {host} refused the user name or password")
        if status in (401, 403) and doing == "log in":
            return ServerError(
                f"CVAT at {host} refused the access token ({status}); create a new Personal "
                "Access Token in CVAT and set it again")
        if status in (401, 403):
            return ServerError(
                f"CVAT at {host} refused to {doing} ({status}): the credentials lack access")
        if status == 404:
            return ServerError(
                f"could not {doing}: it does not exist on {host}, or this account cannot see "
                "it; check the task id with `cvatkit tasks`")
        return ServerError(f"CVAT at {host} answered {status} when asked to {doing}")
    reason = type(e).__name__
    if _timed_out(e):
        return ServerError(
            f"CVAT at {host} did not answer within {ANSWER.units()} seconds (to {doing}); "
            f"is it overloaded or stuck? Set {ANSWER.env} higher to wait longer")
    if "MaxRetryError" in reason or "NewConnectionError" in reason or isinstance(e, OSError):
        return ServerError(f"cannot reach CVAT at {host} (to {doing}): is the address right "
                           "and the server up?")
    return ServerError(f"could not {doing} on {host}: {reason}: {redacted(_first_line(e))}")


def _timed_out(e: BaseException) -> bool:
    """Whether ``e`` (or what it wraps: urllib3 retries wrap their last error as
    ``reason``) is a wait that ran out."""
    seen = 0
    while e is not None and seen < 5:
        if "Timeout" in type(e).__name__ or isinstance(e, TimeoutError):
            return True
        e = getattr(e, "reason", None) or e.__context__
        seen += 1
    return False


def _not_cvat(e: Exception, host: str, path: str | None) -> ServerError | None:
    """The error to give when what answered is not a CVAT server (a web page, a proxy's
    error page): its answers are not CVAT's JSON."""
    headers = getattr(e, "headers", None) or {}
    kind = str(headers.get("Content-Type") or headers.get("content-type") or "")
    if not kind or "json" in kind:
        return None
    where = f"from {path}" if path else "from its API"
    return ServerError(
        f"{host} does not answer as a CVAT server (got {kind.split(';')[0]} {where}, "
        f"status {getattr(e, 'status', '?')}); give the address of CVAT itself, e.g. "
        "https://app.cvat.ai")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""
