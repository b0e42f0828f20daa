"""Bad input, case by case: one folder per case under ``tests/bad_inputs/``.

A case folder holds its input (an export, a hyperparameters file, a catalog, a model, ...)
and ``case.json``::

    {"reads": "export",              # the kind of input: which commands read it
     "message": ["line 6", "..."],   # what the message must say (whitespace folded)
     "exit": 2,                      # the exit code (default 2: a user mistake)
     "absent": ["<_io."],            # what it must not say
     "input": "export",              # the input inside the folder (default: the only one)
     "value": "cvat://-1",           # or a value instead of a file
     "args": ["--strict"],           # more arguments for every command
     "env": {"CVATKIT_CATALOG": "{input}"},
     "commands": ["check {input}"]}  # instead of the kind's own commands

Every command that reads that kind of input is run on it: it must exit with the code,
say what the case says (a user mistake on one ``cvatkit: error:`` line, never wrapped, so
that the paths in it stay whole), print no traceback, write nothing half-done and leave the case
folder as it was. Adding a case is adding a folder.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shlex
import shutil
import socket
import threading
from pathlib import Path

import pytest
from helpers import TESTS, folded
from fakes.saved_models import model_garden_like

from cvatkit.cli import main
from cvatkit.cvat import SAMPLE_LABELS
from cvatkit.label_files import write_label_files

CASES = TESTS / "bad_inputs"
COMMANDS = {
    "export": ["check {input}", "prepare {input} {out}/dataset"],
    "source": ["check {value}", "prepare {value} {out}/dataset"],
    "hparams": ["train --model ssd-mobilenet-v2 --data {dataset} --run-dir {out}/run "
                "--hparams-file {input}"],
    "hparams-text": ["train --model ssd-mobilenet-v2 --data {dataset} --run-dir "
                     "{out}/run --hparams {value}"],
    "catalog": ["models --catalog {input}",
                "train --data {dataset} --run-dir {out}/run --catalog {input} "
                "--hparams num-steps=2"],
    "store": ["list --store {value} --namespace lab",
              "publish {out}/no-run --store {value} --namespace lab"],
    "version": ["pull {value} {out}/pulled",
                "predict {value} {frames} --out {out}/predictions"],
    "model": ["predict {input} {frames} --out {out}/predictions",
              "evaluate {input} {export}"],
    "labels": ["predict {bare_model} {frames} --labels {input} --out {out}/predictions"],
    "frames": ["predict {model} {input} --out {out}/predictions"],
    "sample": ["sample {input}"],
    "run": ["train --resume {input}", "stop {input}", "status {input}",
            "publish {input} --store {out}/store --namespace lab"],
    "server": ["tasks --server-host {server}", "check cvat://1 --server-host {server}"],
    "args": [],  # the case gives its commands
}


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "case.json").is_file())


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def places(prepared, sample_cvat, tmp_path_factory) -> dict[str, str]:
    """What the commands' other arguments name: a dataset, a model and its frames."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model = model_garden_like(root / "model" / "saved_model")
    write_label_files(SAMPLE_LABELS, model.parent)
    bare = model_garden_like(root / "bare" / "saved_model")
    return {"dataset": str(prepared.path), "export": str(sample_cvat),
            "frames": str(sample_cvat), "model": str(model.parent),
            "bare_model": str(bare.parent), "template_model": str(model.parent)}


@pytest.fixture(scope="module")
def servers():
    """A web server that is not CVAT (it answers HTML), an address nothing answers, and
    one that takes connections and never answers."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<html><body>Welcome to our intranet</body></html>"
            self.send_response(404 if "/api/" in self.path else 200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with socket.socket() as silent:  # takes connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield {"html": f"http://127.0.0.1:{page.server_port}",
               "refused": f"http://127.0.0.1:{closed}",
               "refused_with_a_password":
                   f"http://someone:pw-that-is-never-shown@127.0.0.1:{closed}",
               "silent": f"http://127.0.0.1:{silent.getsockname()[1]}"}
    page.shutdown()


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_bad_input(case, places, servers, tmp_path, capsys, monkeypatch):
    spec = json.loads((case / "case.json").read_text())
    given = [p for p in case.iterdir() if p.name != "case.json"]
    source = case / spec["input"] if "input" in spec else (given[0] if len(given) == 1
                                                          else case)
    out = tmp_path / "out"
    out.mkdir()
    if spec.get("base") == "model":  # a working model with the case's files over it
        target = tmp_path / "model"
        shutil.copytree(places["template_model"], target)
        shutil.copytree(source, target, dirs_exist_ok=True)
        source = target
    values = {**places, "input": str(source), "value": spec.get("value", ""),
              "out": str(out), "server": servers.get(spec.get("server", ""), "")}
    for key in ("CVAT_HOST", "CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD",
                "CVATKIT_CATALOG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "a-token-the-server-never-sees")
    for key, value in spec.get("env", {}).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value.format(**values))
    before = _fingerprint(case)
    commands = spec.get("commands") or COMMANDS[spec["reads"]]
    assert commands, f"{case.name}: no command reads {spec['reads']!r}"
    for command in commands:
        argv = [a.format(**values) for a in shlex.split(command)] + spec.get("args", [])
        code = main(argv)
        stdout, stderr = capsys.readouterr()
        said = folded(stdout + stderr)
        wrong = [f"exit {code}, not {spec.get('exit', 2)}"] if code != spec.get("exit", 2) else []
        wrong += ["a traceback"] if "Traceback" in stdout + stderr else []
        wrong += [f"does not say {f!r}" for f in _list(spec["message"])
                  if folded(f.format(**values)) not in said]
        errors = [line for line in stderr.splitlines() if line.startswith("cvatkit: error:")]
        if code == 2 and not wrong:  # the message is one line, its paths whole in it
            wrong += [f"says it on {len(errors)} error lines"] if len(errors) != 1 else \
                [f"does not say {f!r} on its error line" for f in _list(spec["message"])
                 if f.format(**values) not in errors[0] and f.format(**values) not in stdout]
        wrong += [f"says {f!r}" for f in _list(spec.get("absent", [])) if f in said]
        if code:
            wrong += [f"left {p} behind" for p in [*out.rglob("*"), *tmp_path.glob(".*")]]
        if wrong:
            pytest.fail(f"cvatkit {' '.join(argv)}: {'; '.join(wrong)}\n{said[-1500:]}",
                        pytrace=False)
    assert _fingerprint(case) == before, f"{case.name}: the input was changed"


def _list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_there_are_cases_of_every_kind():
    kinds = {json.loads((c / "case.json").read_text())["reads"] for c in _cases()}
    assert kinds == set(COMMANDS), set(COMMANDS) ^ kinds
    assert len(_cases()) >= 120
