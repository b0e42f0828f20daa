"""Bad input that takes more than one command to show (an output folder that holds
something, shapes dropped with their line named); single cases are in tests/bad_inputs/."""

from __future__ import annotations

import io
import json

import pytest
from helpers import unzip, folded
from PIL import Image

from cvatkit.cli import main

LABELS_XML = """<labels><label><name>cat</name><type>any</type></label>
<label><name>dog</name><type>any</type></label></labels>"""


def _jpeg(w=32, h=24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _xml(images: str, labels: str = LABELS_XML) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
            f"<meta><task><name>t</name>{labels}</task></meta>\n{images}\n</annotations>\n")


def _export(tmp_path, xml: str, images: dict[str, bytes] | None = None, name="export"):
    d = tmp_path / name
    (d / "images").mkdir(parents=True)
    (d / "annotations.xml").write_text(xml)
    for n, data in (images if images is not None else {"a.jpg": _jpeg()}).items():
        (d / "images" / n).write_bytes(data)
    return d


BOX = '<image id="0" name="a.jpg" width="32" height="24">{}</image>'
GOOD_BOX = '<box label="cat" occluded="0" xtl="2" ytl="2" xbr="20" ybr="20"/>'


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err


def _fails(capsys, tmp_path, src, *needles, extra=()):
    out_dir = tmp_path / "out"
    code, _out, err = _run(capsys, "prepare", src, out_dir, *extra)
    assert code == 2, err
    flat = folded(err)
    for needle in needles:
        assert needle in flat, flat
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".out.partial-*"))
    return flat


@pytest.mark.parametrize("shape, why", [
    ('<box label="cat" occluded="0" xtl="20" ytl="2" xbr="20" ybr="20"/>',
     "box 'cat' has zero or negative area"),
    ('<box label="dog" occluded="0" xtl="20" ytl="2" xbr="10" ybr="20"/>',
     "box 'dog' has zero or negative area"),
    ('<polygon label="cat" occluded="0" points="1,1;5,5"/>',
     "polygon 'cat' has 2 points (a polygon needs at least 3)"),
], ids=["zero-area", "negative-area", "two-point-polygon"])
def test_degenerate_shapes_are_dropped_and_named_or_refused_with_strict(
        capsys, tmp_path, shape, why):
    why = why.replace("box", "rectangle")
    src = _export(tmp_path, _xml(BOX.format(GOOD_BOX + "\n" + shape)))
    code, out, _err = _run(capsys, "prepare", src, tmp_path / "ok")
    assert code == 0
    # The message names the shape's own line (the image starts on line 6).
    assert f"annotations.xml line 7: frame 0 'a.jpg': {why}" in out
    assert "dropped" in out
    _fails(capsys, tmp_path, src, "--strict", why, extra=["--strict"])


def test_out_dir_with_a_dataset_needs_overwrite(capsys, tmp_path, sample_cvat):
    out = tmp_path / "ds"
    assert _run(capsys, "prepare", sample_cvat, out)[0] == 0
    before = (out / "dataset.json").read_text()
    code, _o, err = _run(capsys, "prepare", sample_cvat, out)
    err = folded(err)
    assert code == 2 and "already holds a dataset" in err and "--overwrite" in err
    assert (out / "dataset.json").read_text() == before
    # A failing overwrite leaves the old dataset as it was.
    bad = _export(tmp_path, _xml(BOX.format(GOOD_BOX)), images={"a.jpg": b"junk"})
    assert _run(capsys, "prepare", bad, out, "--overwrite")[0] == 2
    assert (out / "dataset.json").read_text() == before
    assert _run(capsys, "prepare", sample_cvat, out, "--overwrite", "--val-split", "0.5")[0] == 0
    assert json.loads((out / "dataset.json").read_text())["val_fraction"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_out_dir_with_other_files_is_refused(capsys, tmp_path, sample_cvat):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _o, err = _run(capsys, "prepare", sample_cvat, out, "--overwrite")
    err = folded(err)
    assert code == 2 and "is not empty and does not hold a cvatkit dataset" in err
    assert (out / "thesis.tex").read_text() == "precious"


def test_zipped_folder_export_is_accepted(capsys, tmp_path, sample_cvat):
    folder = unzip(sample_cvat, tmp_path / "unzipped")
    assert _run(capsys, "prepare", folder, tmp_path / "from-folder")[0] == 0
