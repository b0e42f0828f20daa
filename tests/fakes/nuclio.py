"""A stand-in for Nuclio: the dashboard routes CVAT's lambda manager calls, and one
runtime process per deployed function that runs its handler as Nuclio's Python runtime
does (``init_context(context)`` once, then ``handler(context, event)`` per request).

The dashboard (``NuclioDashboard``) serves, on 127.0.0.1:
- ``GET /api/functions``: every function, by name, as ``nuctl`` deploys them
  (``metadata`` and ``spec`` from its function.yaml, ``status.httpPort``);
- ``GET /api/functions/NAME``: one of them (404 when unknown);
- ``POST /api/function_invocations``: the body sent on to the function named in the
  ``x-nuclio-function-name`` header (CVAT's "dashboard" way of invoking).

CVAT's default ("direct") way posts to ``http://localhost:PORT`` of the function itself,
which the runtime process answers. Run as ``python -m fakes.nuclio FUNCTION_DIR PORT`` it
is that runtime: event bodies sent as JSON reach the handler decoded, as Nuclio does.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

READY = "ready"


class NuclioDashboard:
    """The dashboard of a local Nuclio, with functions deployed from folders."""

    def __init__(self, port: int = 0, logs: Path | None = None) -> None:
        self.port = port
        self.logs = logs
        self.functions: dict[str, dict[str, Any]] = {}
        self._runtimes: dict[str, subprocess.Popen] = {}
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NuclioDashboard:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                if path == "/api/functions":
                    return self._send(200, outer.functions)
                name = path.removeprefix("/api/functions/")
                if path.startswith("/api/functions/") and name in outer.functions:
                    return self._send(200, outer.functions[name])
                self._send(404, {"error": f"function {name!r} not found"})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                name = self.headers.get("x-nuclio-function-name", "")
                if self.path.rstrip("/") != "/api/function_invocations" or (
                        name not in outer.functions):
                    return self._send(404, {"error": f"function {name!r} not found"})
                port = outer.functions[name]["status"]["httpPort"]
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/", data=body, method="POST",
                    headers={"Content-Type": self.headers.get("Content-Type",
                                                              "application/json")})
                try:
                    with urllib.request.urlopen(request, timeout=600) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as e:
                    status, payload = e.code, e.read()
                except OSError as e:  # the function's process is gone
                    status, payload = 503, json.dumps({"error": str(e)}).encode()
                self._send_raw(status, payload)

            def _send(self, status: int, data: Any) -> None:
                self._send_raw(status, json.dumps(data).encode())

            def _send_raw(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def deploy(self, folder: Path, *, timeout: float = 600) -> str:
        """Deploy the function in ``folder`` (its function.yaml and handler), as
        ``nuctl deploy --path FOLDER --platform local`` would; its name once ready."""
        from cvatkit.ports import free_ports

        config = yaml.safe_load((folder / "function.yaml").read_text())
        name = config["metadata"]["name"]
        self.remove(name)
        port = free_ports(1)[0]
        log = open(self.logs / f"{name}.log" if self.logs else os.devnull, "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
        process = subprocess.Popen([sys.executable, "-m", "fakes.nuclio", str(folder),
                                    str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self._runtimes[name] = process
        deadline = time.monotonic() + timeout
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"function {name} ended while starting "
                                   f"({process.returncode}); see its log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"function {name} did not start in {timeout} s")
            time.sleep(0.2)
        self.functions[name] = {
            "metadata": {"name": name, "namespace": "nuclio",
                         "annotations": config["metadata"].get("annotations", {}),
                         "labels": {"nuclio.io/project-name": "cvat"}},
            "spec": config.get("spec", {}),
            "status": {"state": READY, "httpPort": port},
        }
        return name

    def stop_runtime(self, name: str) -> None:
        """End the function's process but keep it listed: a function whose container died."""
        self._end(self._runtimes.pop(name, None))

    def remove(self, name: str) -> None:
        self.functions.pop(name, None)
        self._end(self._runtimes.pop(name, None))

    @staticmethod
    def _end(process: subprocess.Popen | None) -> None:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        for name in list(self._runtimes):
            self.remove(name)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def _answers(port: int) -> bool:
    return loaded_modules(port) is not None


def loaded_modules(port: int) -> dict[str, str] | None:
    """Where the runtime on ``port`` loaded the handler's packages from; None when it does
    not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            return json.loads(answer.read()) if answer.status == 200 else None
    except (OSError, urllib.error.URLError, ValueError):
        return None


# ----------------------------------------------------------------- the runtime
class _UserData:
    pass


class Response:
    """``context.Response`` of Nuclio's Python runtime."""

    def __init__(self, body: Any = None, headers: dict | None = None,
                 content_type: str | None = None, status_code: int = 200) -> None:
        self.body, self.headers = body, headers or {}
        self.content_type, self.status_code = content_type, status_code


class Context:
    """What a handler gets as ``context``: a logger, ``user_data``, ``Response``."""

    Response = Response

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(f"nuclio.{name}")
        self.user_data = _UserData()


class Event:
    """What a handler gets as ``event``: the body (decoded when it is JSON), headers."""

    def __init__(self, body: Any, headers: dict, content_type: str) -> None:
        self.body, self.headers, self.content_type = body, headers, content_type
        self.method, self.path = "POST", "/"


def run(folder: Path, port: int) -> None:
    config = yaml.safe_load((folder / "function.yaml").read_text())
    module_name, handler_name = config["spec"]["handler"].split(":")
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    module = importlib.import_module(module_name)
    context = Context(config["metadata"]["name"])
    module.init_context(context)
    handler = getattr(module, handler_name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            # ready, and where the handler's packages came from (the function's folder)
            loaded = {name: getattr(sys.modules[name], "__file__", None)
                      for name in ("cvatkit",) if name in sys.modules}
            self._reply(200 if self.path == "/ready" else 404, json.dumps(loaded).encode(),
                        "application/json")

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.headers.get("Content-Type", "")
            body: Any = raw
            if "json" in kind:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
            try:
                answer = handler(context, Event(body, dict(self.headers), kind))
            except Exception as e:  # noqa: BLE001 -- Nuclio answers 500 with the error
                context.logger.exception("handler failed")
                return self._reply(500, str(e).encode(), "text/plain")
            if isinstance(answer, Response):
                data = answer.body
                data = data.encode() if isinstance(data, str) else (data or b"")
                self._reply(answer.status_code, data, answer.content_type or "text/plain")
            else:
                self._reply(200, json.dumps(answer).encode(), "application/json")

        def _reply(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    logging.basicConfig(level=logging.INFO)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]))
