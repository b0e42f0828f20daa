"""The notebooks run in a real kernel."""

from __future__ import annotations

from pathlib import Path

import papermill

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_dashboard_notebook_runs_and_shows_the_report(tmp_path):
    out = tmp_path / "dashboard.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "dashboard.ipynb"), str(out),
                               cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    import nbformat

    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "frames: 60 (54 train, 6 val)" in text
    assert "shapes per label:" in text
    assert (tmp_path / "build" / "dashboard" / "sample" / "task.zip").exists()
