"""Voila serving a notebook on 127.0.0.1, and Debian's headless Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def voila(notebook: Path, *, env: dict[str, str] | None = None, log: Path | None = None):
    """Serve ``notebook`` with Voila (its kernel runs in the notebook's folder); yields the
    page URL once the server answers."""
    port = free_port()
    voila_bin = Path(sys.executable).parent / "voila"
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [str(voila_bin), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--Voila.tornado_settings={'autoreload': False}", str(notebook.name)],
        cwd=notebook.parent, env={**os.environ, **(env or {})}, stdout=out,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 600  # only a stuck server takes that long
        while True:
            try:
                urllib.request.urlopen(url + "api/status", timeout=2).read()  # noqa: S310
                break
            except urllib.error.HTTPError:
                break  # it answers (a 403 for that path is an answer)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"voila did not start (exit {proc.poll()})") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
