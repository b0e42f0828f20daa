"""Reading CVAT exports: both formats, zips and folders, agree on every frame and shape."""

from __future__ import annotations

import zipfile

import pytest
from helpers import SAMPLE_FRAMES, unzip

from cvatkit import LabelMap, open_export, open_source
from cvatkit.cvat import SAMPLE_LABELS as LABELS
from cvatkit.cvat import write_coco, write_cvat_xml
from cvatkit.records import Frame, Shape


def _read(path):
    src = open_export(path)
    try:
        return src.labels, list(src.frames()), src
    finally:
        src.close()


def _canon(frames):
    return [(f.name, f.width, f.height,
             sorted((s.kind, s.label, tuple(round(p, 2) for p in s.points)) for s in f.shapes))
            for f in frames]


def test_cvat_and_coco_exports_read_the_same(sample_cvat, sample_coco):
    labels_x, frames_x, _ = _read(sample_cvat)
    labels_c, frames_c, _ = _read(sample_coco)
    assert labels_x.names == labels_c.names == ("square", "triangle", "circle")
    assert len(frames_x) == SAMPLE_FRAMES
    assert _canon(frames_x) == _canon(frames_c)
    kinds = {s.kind for f in frames_x for s in f.shapes}
    assert kinds == {"rectangle", "polygon"}


def test_folder_and_zip_and_wrapped_zip_agree(sample_cvat, tmp_path):
    folder = unzip(sample_cvat, tmp_path / "unpacked")
    wrapped = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(sample_cvat) as src, zipfile.ZipFile(wrapped, "w") as dst:
        for info in src.infolist():
            dst.writestr("my-export/" + info.filename, src.read(info))
    expected = _canon(_read(sample_cvat)[1])
    assert _canon(_read(folder)[1]) == expected
    assert _canon(_read(wrapped)[1]) == expected
    src = open_export(wrapped)
    frame = next(src.frames())
    assert src.read_image(frame)[:2] == b"\xff\xd8"  # the JPEG as stored


def test_cvat_xml_reads_masks_ellipses_attributes_and_skips_the_rest(tmp_path):
    xml = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><name>t</name><size>1</size><labels>
  <label><name>cat</name><color>#ff0000</color><type>any</type><attributes/></label>
  <label><name>dog</name><type>any</type></label>
</labels></task></meta>
<image id="0" name="a.png" width="8" height="6">
  <box label="cat" occluded="1" xtl="1" ytl="1" xbr="4" ybr="3" z_order="2" rotation="90">
    <attribute name="color">black</attribute></box>
  <mask label="dog" source="manual" occluded="0" rle="1, 3, 2" left="2" top="1" width="3" height="2" z_order="0"/>
  <ellipse label="dog" occluded="0" cx="4" cy="3" rx="2" ry="1"/>
  <polyline label="cat" occluded="0" points="0,0;1,1"/>
  <tag label="cat"/>
</image>
</annotations>"""
    d = tmp_path / "export"
    (d / "images").mkdir(parents=True)
    (d / "annotations.xml").write_bytes(xml)
    src = open_export(d)
    (frame,) = list(src.frames())
    box, mask, ellipse = frame.shapes
    assert box.occluded and box.attrs == {"color": "black"} and box.z_order == 2
    assert box.rotation == 90 and box.bbox() == pytest.approx((1.5, 0.5, 3.5, 3.5))
    assert mask.kind == "mask" and mask.points == (1, 3, 2, 2, 1, 4, 2)
    assert mask.bbox() == (2, 1, 5, 3)
    assert ellipse.kind == "polygon" and ellipse.bbox() == pytest.approx((2, 2, 6, 4))
    assert dict(src.skipped) == {"polyline": 1, "tag": 1}


def test_coco_reads_rle_and_multi_part_polygons_as_masks(tmp_path):
    frame = Frame(index=0, name="f.png", width=10, height=8, shapes=(
        Shape(kind="mask", label="square", points=(1, 5, 1, 1, 2, 3)),))
    write_coco(tmp_path / "c.zip", [frame], LABELS)
    (back,) = list(open_export(tmp_path / "c.zip").frames())
    assert back.shapes[0].kind == "mask"
    # The first pixel of the box is off, so the mask's own box starts a row lower.
    assert back.shapes[0].bbox() == (1, 1, 3, 4)
    from cvatkit.geometry import mask_bitmap

    assert mask_bitmap(back.shapes[0], 10, 8).sum() == 5


def test_writers_round_trip_through_readers(tmp_path):
    labels = LabelMap.from_names(["a", "b"])
    frames = [Frame(index=0, name="x/y.jpg", width=50, height=40, shapes=(
        Shape(kind="rectangle", label="a", points=(1.5, 2.25, 30.0, 20.0), occluded=True,
              attributes=(("kind", "big"),)),
        Shape(kind="polygon", label="b", points=(1, 1, 10, 1, 5, 9)),
        Shape(kind="mask", label="b", points=(2, 4, 0, 10, 10, 12, 11)))),
        Frame(index=1, name="z.jpg", width=50, height=40)]
    write_cvat_xml(tmp_path / "x.zip", frames, labels, task_name="rt")
    back = list(open_export(tmp_path / "x.zip").frames())
    assert [(f.name, f.shapes) for f in back] == [
        (f.name, tuple(Shape(**{**s.__dict__, "points": tuple(round(p, 2) for p in s.points)})
                       for s in f.shapes)) for f in frames]


def test_open_source_rejects_other_schemes():
    from cvatkit.errors import UsageError

    with pytest.raises(UsageError, match="cvat://TASK_ID"):
        open_source("s3://bucket/export.zip")
    with pytest.raises(UsageError, match="cvat://42"):
        open_source("cvat://abc")
