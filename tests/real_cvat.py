"""A real CVAT server for the tests (the ``real_cvat`` fixture), found or started:

1. ``CVATKIT_TEST_CVAT_URL`` with ``CVATKIT_TEST_CVAT_USER`` and
   ``CVATKIT_TEST_CVAT_PASSWORD``: a team's own CVAT (e.g. docker compose). Its lambda
   manager reaches the tests' Nuclio stand-in when it looks for Nuclio on this machine at
   ``CVATKIT_TEST_NUCLIO_PORT``; without that port the Nuclio tests are skipped.
2. else ``START.sh``/``STOP.sh`` from ``CVATKIT_TEST_CVAT_SOURCE`` or, beside the project,
   ``../shared/cvat-server``: CVAT 2.73.0 built from source and started on free loopback
   ports in a folder of its own (``CVATKIT_TEST_CVAT_DIR`` keeps it between sessions),
   wired to the Nuclio stand-in; stopped by its recorded pids when the session ends,
   whatever the tests did.
3. else the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fakes.nuclio import NuclioDashboard

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "cvat-server"
START_LIMIT = 1800
"""Seconds the first start may take (a fresh machine builds CVAT's venv from PyPI)."""
STARTED: list[RealCvat] = []
"""The servers of this session (the summary at its end names them)."""


@dataclass
class RealCvat:
    url: str
    user: str
    password: str = field(repr=False)
    nuclio: NuclioDashboard | None = None
    """The Nuclio stand-in the server's lambda manager calls; None when it calls none."""
    started: Path | None = None
    """The folder of a server the fixture started (and stops)."""
    start_seconds: float = 0.0
    made: list[tuple[str, int]] = field(default_factory=list)

    def client(self):
        from cvatkit import connect

        return connect(self.url, user=self.user, password=self.password)

    def env(self) -> dict[str, str]:
        """A user's environment for this server."""
        return {"CVAT_HOST": self.url, "CVAT_USER": self.user,
                "CVAT_PASSWORD": self.password}


def why_unavailable() -> str | None:
    """Why no real CVAT can be had here, or None when one can."""
    if os.environ.get("CVATKIT_TEST_CVAT_URL"):
        return None
    source = Path(os.environ.get("CVATKIT_TEST_CVAT_SOURCE") or DEFAULT_SOURCE)
    if not (source / "START.sh").is_file():
        return (f"no real CVAT: set CVATKIT_TEST_CVAT_URL (+ _USER, _PASSWORD) to a CVAT "
                f"server, or CVATKIT_TEST_CVAT_SOURCE to a folder with START.sh "
                f"({source} has none)")
    return None


def start(logs: Path) -> RealCvat:
    """The server ``why_unavailable`` allows, ready for requests."""
    from cvatkit.ports import free_ports

    url = os.environ.get("CVATKIT_TEST_CVAT_URL")
    if url:
        nuclio_port = os.environ.get("CVATKIT_TEST_NUCLIO_PORT")
        nuclio = NuclioDashboard(int(nuclio_port), logs).start() if nuclio_port else None
        return RealCvat(url=url.rstrip("/"), user=os.environ["CVATKIT_TEST_CVAT_USER"],
                        password=os.environ["CVATKIT_TEST_CVAT_PASSWORD"], nuclio=nuclio)
    source = Path(os.environ.get("CVATKIT_TEST_CVAT_SOURCE") or DEFAULT_SOURCE)
    # Not under pytest's folder: PostgreSQL's socket path must stay short.
    folder = Path(os.environ.get("CVATKIT_TEST_CVAT_DIR")
                  or tempfile.mkdtemp(prefix="cvatkit-cvat-"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # run as root, START.sh runs PostgreSQL as its own user, inside it
    cvat, pg, redis, ondisk, opa, nuclio_port = free_ports(6)
    nuclio = NuclioDashboard(nuclio_port, logs).start()
    env = {**os.environ, "CVAT_REAL_PORT": str(cvat), "CVAT_REAL_PG_PORT": str(pg),
           "CVAT_REAL_REDIS_PORT": str(redis), "CVAT_REAL_ONDISK_PORT": str(ondisk),
           "CVAT_REAL_OPA_PORT": str(opa), "CVAT_NUCLIO_SCHEME": "http",
           "CVAT_NUCLIO_HOST": "127.0.0.1", "CVAT_NUCLIO_PORT": str(nuclio_port),
           "CVAT_NUCLIO_DEFAULT_TIMEOUT": "120",
           # through the dashboard, as on Kubernetes: "direct" would call the function at
           # host.docker.internal when the tests run in a container
           "CVAT_NUCLIO_INVOKE_METHOD": "dashboard"}
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    begun = time.monotonic()
    with open(logs / "cvat-start.log", "wb") as log:  # holds the password: pytest's folder
        done = subprocess.run(["bash", str(source / "START.sh"), str(folder)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, timeout=START_LIMIT,
                              check=False)
    server = RealCvat(url=f"http://127.0.0.1:{cvat}", user="admin", password="",
                      nuclio=nuclio, started=folder, start_seconds=time.monotonic() - begun)
    if done.returncode != 0:
        stop(server)
        tail = (logs / "cvat-start.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"START.sh failed ({done.returncode}):\n{tail}")
    credentials = dict(line.split("=", 1) for line in
                       (folder / "credentials").read_text().splitlines() if "=" in line)
    server.user, server.password = credentials["CVAT_USER"], credentials["CVAT_PASSWORD"]
    with urllib.request.urlopen(f"{server.url}/api/server/about", timeout=60) as answer:
        assert answer.status == 200
    return server


def stop(server: RealCvat) -> None:
    """Stop what ``start`` started (by the pids START.sh recorded), and the stand-in."""
    if server.nuclio is not None:
        server.nuclio.stop()
    if server.started is None:
        return
    source = Path(os.environ.get("CVATKIT_TEST_CVAT_SOURCE") or DEFAULT_SOURCE)
    keep = bool(os.environ.get("CVATKIT_TEST_CVAT_DIR"))
    subprocess.run(["bash", str(source / "STOP.sh"), str(server.started)]
                   + ([] if keep else ["--purge"]), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300, check=False)
    if not keep:
        shutil.rmtree(server.started, ignore_errors=True)


# ----------------------------------------------------------------- making tasks
def jpeg_files(folder: Path, frames: list[tuple[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in frames:
        path = folder / name
        path.write_bytes(data)
        out.append(path)
    return out


def make_task(client, name: str, files: list[Path], *, labels=None, project_id=None,
              segment_size: int | None = None, score_attribute: bool = False) -> int:
    """A new image task of ``files`` (labels: (name, type) pairs, or the project's);
    ``score_attribute``: each label has a text attribute ``score``."""
    from cvat_sdk import models
    from cvat_sdk.core.proxies.tasks import ResourceType

    spec = {"name": name}
    if project_id is not None:
        spec["project_id"] = project_id
    else:
        attributes = [models.AttributeRequest(name="score", mutable=False, input_type="text",
                                              values=[""], default_value="")
                      ] if score_attribute else []
        spec["labels"] = [models.PatchedLabelRequest(name=n, type=t, attributes=attributes)
                          for n, t in labels]
    if segment_size:
        spec["segment_size"] = segment_size
    task = client.tasks.create_from_data(
        spec=models.TaskWriteRequest(**spec), resource_type=ResourceType.LOCAL,
        resources=[str(f) for f in files],
        data_params={"image_quality": 100, "sorting_method": "predefined"})
    return int(task.id)


def make_project(client, name: str, labels) -> int:
    from cvat_sdk import models

    project = client.projects.create(models.ProjectWriteRequest(
        name=name, labels=[models.PatchedLabelRequest(name=n, type=t) for n, t in labels]))
    return int(project.id)


def add_shapes(client, task_id: int, shapes: list[dict]) -> None:
    """Add shapes given as ``{"label", "frame", "points", "type"}`` to a task."""
    from cvat_sdk import models

    task = client.tasks.retrieve(task_id)
    ids = {label.name: label.id for label in task.get_labels()}
    task.update_annotations(models.PatchedLabeledDataRequest(shapes=[
        models.LabeledShapeRequest(type=s.get("type", "rectangle"), frame=s["frame"],
                                   label_id=ids[s["label"]], points=s["points"])
        for s in shapes]))


def set_job(client, job_id: int, *, stage: str | None = None, state: str | None = None) -> None:
    from cvat_sdk import models

    fields = {}
    if stage:
        fields["stage"] = stage
    if state:
        fields["state"] = state
    client.api_client.jobs_api.partial_update(
        job_id, patched_job_write_request=models.PatchedJobWriteRequest(**fields))


def image_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return buf.getvalue()
