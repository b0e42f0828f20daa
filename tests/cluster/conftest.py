"""What the cluster tests share: a folder standing in for the claim, mounted here where the
pods mount it, holding the prepared sample dataset; the command line run with secrets in
the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import PLANTED, folded

from cvatkit.cli import main

IMAGE = "registry.example.com/cvatkit:0.1.0"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        """stderr as one line (the error paragraph unwrapped)."""
        return folded(self.err)


@pytest.fixture
def claim(prepared, tmp_path_factory) -> Path:
    """The mount path: the test session's base folder, which holds the prepared dataset
    and every test's tmp_path."""
    base = tmp_path_factory.getbasetemp()
    assert base in prepared.path.parents
    return base


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cvatkit ARGS`` in this process, with secrets set in the environment
    (``helpers.PLANTED``) that no output may hold."""
    for key, value in PLANTED.items():
        monkeypatch.setenv(key, value)

    def run(*args) -> Result:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        for secret in PLANTED.values():
            assert secret not in out + err
        return Result(code, out, err)

    return run


@pytest.fixture
def pod_args(claim) -> list[str]:
    """The options every render takes: the image, the claim and where it is mounted."""
    return ["--image", IMAGE, "--claim", "work", "--mount-path", str(claim)]
