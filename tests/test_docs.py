"""The documentation site builds with no warning (no broken link or anchor), and its
generated pages list every model and hyperparameter the code has."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

from cvatkit.training import BUILT_IN, PARAMS


def test_the_docs_build_strictly_and_say_what_the_code_does(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    models = (tmp_path / "site" / "models" / "index.html").read_text()
    assert all(f"<code>{spec.key}</code>" in models for spec in BUILT_IN)
    hparams = (tmp_path / "site" / "hyperparameters" / "index.html").read_text()
    assert all(f"<code>{p.key}</code>" in hparams for p in PARAMS)
    assert (tmp_path / "site" / "bench" / "index.html").is_file()  # bench/README.md


def test_the_readme_is_short_and_links_to_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in ("install", "quickstart", "app", "data", "training", "models",
                 "hyperparameters", "evaluation", "annotation", "cluster", "troubleshooting",
                 "benchmarks", "architecture"):
        assert f"(docs/{page}.md)" in readme, page
        assert (ROOT / "docs" / f"{page}.md").is_file(), page
