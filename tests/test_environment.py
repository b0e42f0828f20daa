"""pyproject.toml, constraints.txt, environment.yml and binder/ describe one environment."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _reqs(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.strip().strip('"')
        if not line or line.startswith(("#", "-")):
            continue
        r = Requirement(line)
        out[canonicalize_name(r.name)] = str(r.specifier)
    return out


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _env_yml():
    import yaml

    doc = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in doc["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in doc["dependencies"] if isinstance(d, dict))
    return conda, pip


def test_every_dependency_is_pinned_and_the_pin_satisfies_pyproject():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    deps = _reqs(project["dependencies"] + sum(extras.values(), []))  # every extra, docs too
    pins = _pins()
    for name, spec in deps.items():
        assert name in pins, f"{name} has no pin in constraints.txt: run `make lock`"
        assert Requirement(f"{name}{spec}").specifier.contains(pins[name]), (name, pins[name])


def test_environment_yml_matches_pyproject():
    project = _pyproject()["project"]
    conda, lines = _env_yml()
    assert conda == ["python=3.11", "pip"] and "--constraint constraints.txt" in lines
    assert "--editable ." in lines
    extras = project["optional-dependencies"]
    assert _reqs(lines) == _reqs(project["dependencies"] + extras["test"] + extras["cluster"])
    assert project["requires-python"] == ">=3.11,<3.12"


def test_binder_matches_pyproject():
    project = _pyproject()["project"]
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "-c ../constraints.txt" in lines
    assert _reqs(lines) == _reqs(project["dependencies"])
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()
