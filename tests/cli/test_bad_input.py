"""Bad input: a clear message naming the file, line, frame or label; exit code 2; no
traceback; nothing half-written."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from helpers import unzip
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
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, flat
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".out.partial-*"))
    return flat


def test_malformed_xml_names_the_line(capsys, tmp_path):
    xml = _xml(BOX.format(GOOD_BOX)).replace("</image>", "</imag>")
    _fails(capsys, tmp_path, _export(tmp_path, xml),
           "annotations.xml line 6", "XML is malformed")


def test_malformed_json_names_the_line(capsys, tmp_path):
    d = tmp_path / "coco"
    (d / "annotations").mkdir(parents=True)
    (d / "annotations" / "instances_default.json").write_text('{\n "images": [\n  {"id": 1,}\n]}')
    _fails(capsys, tmp_path, d, "instances_default.json line 3", "JSON is malformed")


def test_missing_image(capsys, tmp_path):
    src = _export(tmp_path, _xml(BOX.format(GOOD_BOX)), images={})
    _fails(capsys, tmp_path, src, "'a.jpg'", "images/a.jpg is not in the export",
           "Save images")


@pytest.mark.parametrize("data", [b"not an image at all", _jpeg()[:200],
                                  _jpeg()[:4] + b"\x00" * 60 + b"\xff\xd9"],
                         ids=["garbage", "truncated-jpeg", "damaged-header"])
def test_image_that_does_not_decode(capsys, tmp_path, data):
    src = _export(tmp_path, _xml(BOX.format(GOOD_BOX)), images={"a.jpg": data})
    _fails(capsys, tmp_path, src, "images/a.jpg", "does not decode")


def test_image_of_another_size(capsys, tmp_path):
    src = _export(tmp_path, _xml(BOX.format(GOOD_BOX)), images={"a.jpg": _jpeg(40, 24)})
    _fails(capsys, tmp_path, src, "is 40x24 pixels", "annotations.xml line 6 says 32x24")


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


def test_label_not_in_label_map(capsys, tmp_path):
    shape = '<box label="horse" occluded="0" xtl="2" ytl="2" xbr="9" ybr="9"/>'
    _fails(capsys, tmp_path, _export(tmp_path, _xml(BOX.format(shape))),
           "annotations.xml line 6", "labelled 'horse'", "not among the task's labels (cat, dog)")


def test_coco_category_not_declared(capsys, tmp_path):
    d = tmp_path / "coco"
    (d / "annotations").mkdir(parents=True)
    (d / "images" / "default").mkdir(parents=True)
    (d / "images" / "default" / "a.jpg").write_bytes(_jpeg())
    doc = {"categories": [{"id": 1, "name": "cat"}],
           "images": [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 24}],
           "annotations": [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]}]}
    (d / "annotations" / "instances_default.json").write_text(json.dumps(doc))
    _fails(capsys, tmp_path, d, "annotation id 5", "category_id 7", "(1 cat)")


def test_empty_task(capsys, tmp_path):
    _fails(capsys, tmp_path, _export(tmp_path, _xml("")), "the task has no frames")


def test_task_without_any_shape(capsys, tmp_path):
    _fails(capsys, tmp_path, _export(tmp_path, _xml(BOX.format(""))),
           "none of the task's 1 frames has a shape")


def test_video_export(capsys, tmp_path):
    track = ('<track id="0" label="cat"><box frame="0" outside="0" occluded="0" '
             'keyframe="1" xtl="1" ytl="1" xbr="5" ybr="5"/></track>')
    _fails(capsys, tmp_path, _export(tmp_path, _xml(track)), "CVAT for video 1.1",
           "CVAT for images 1.1")


def test_duplicate_frame_names(capsys, tmp_path):
    images = BOX.format(GOOD_BOX) + "\n" + BOX.replace('id="0"', 'id="1"').format(GOOD_BOX)
    _fails(capsys, tmp_path, _export(tmp_path, _xml(images)),
           "annotations.xml line 7: frame name 'a.jpg' appears twice", "line 6)")


def test_zip_with_the_wrong_layout(capsys, tmp_path):
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("pics/a.jpg", _jpeg())
        f.writestr("notes.txt", "hello")
    _fails(capsys, tmp_path, z, "photos.zip is not a CVAT export",
           "it holds: notes.txt, pics/", "CVAT for images 1.1")


def test_not_an_export_at_all(capsys, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    _fails(capsys, tmp_path, f, "a.txt is neither a folder nor a zip file")
    _fails(capsys, tmp_path, tmp_path / "nope.zip", "nope.zip: no such file or folder")


def test_out_dir_with_a_dataset_needs_overwrite(capsys, tmp_path, sample_cvat):
    out = tmp_path / "ds"
    assert _run(capsys, "prepare", sample_cvat, out)[0] == 0
    before = (out / "dataset.json").read_text()
    code, _o, err = _run(capsys, "prepare", sample_cvat, out)
    err = " ".join(err.split())
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
    err = " ".join(err.split())
    assert code == 2 and "is not empty and does not hold a cvatkit dataset" in err
    assert (out / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_val_split_out_of_range(capsys, tmp_path, sample_cvat, value):
    _fails(capsys, tmp_path, sample_cvat, "must be between 0 and 1",
           extra=["--val-split", value])


def test_zipped_folder_export_is_accepted(capsys, tmp_path, sample_cvat):
    folder = unzip(sample_cvat, tmp_path / "unzipped")
    assert _run(capsys, "prepare", folder, tmp_path / "from-folder")[0] == 0
