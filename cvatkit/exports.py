"""Writers of CVAT exports: "CVAT for images 1.1" and "COCO 1.0", as zips CVAT accepts.

The readers in ``cvatkit.sources`` read back exactly what these write.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from lxml import etree

from .annotations import Frame, LabelMap, Shape
from .files import written_aside
from .geometry import polygon_area

_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
ImageLoader = Callable[[Frame], bytes]


def write_cvat_xml(dest: Path, frames: Iterable[Frame], labels: LabelMap, *,
                   task_name: str, images: ImageLoader | None = None,
                   task_id: int = 1, dumped: str | None = None) -> None:
    """A "CVAT for images 1.1" zip: annotations.xml, and images/ when ``images`` is given.

    Images are streamed into the zip one at a time. ``dumped`` is the export time written
    in the metadata (default: now; pass a fixed one for byte-identical exports).
    """
    frames = list(frames)
    with written_aside(dest) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("annotations.xml", _ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w") as raw, etree.xmlfile(raw, encoding="utf-8") as xf:
            xf.write_declaration()
            with xf.element("annotations"):
                xf.write(_el("version", "1.1"))
                xf.write(_meta(labels, task_name, task_id, len(frames), dumped),
                         pretty_print=True)
                for frame in frames:
                    xf.write(_image_el(frame), pretty_print=True)
        if images is not None:
            for frame in frames:
                _add(z, f"images/{frame.name}", images(frame))


def cvat_xml_bytes(frames: Iterable[Frame], labels: LabelMap, *, task_name: str) -> bytes:
    """annotations.xml alone, as CVAT's "Upload annotations" takes it."""
    frames = list(frames)
    root = etree.Element("annotations")
    root.append(_el("version", "1.1"))
    root.append(_meta(labels, task_name, 1, len(frames)))
    for frame in frames:
        root.append(_image_el(frame))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def write_coco(dest: Path, frames: Iterable[Frame], labels: LabelMap, *,
               images: ImageLoader | None = None, subset: str = "default") -> None:
    """A "COCO 1.0" zip: annotations/instances_<subset>.json and images/<subset>/."""
    frames = list(frames)
    doc = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "",
                 "version": "", "year": ""},
        "categories": [{"id": label.id, "name": label.name, "supercategory": ""}
                       for label in labels],
        "images": [],
        "annotations": [],
    }
    for n, frame in enumerate(frames, start=1):
        doc["images"].append({"id": n, "width": frame.width, "height": frame.height,
                              "file_name": frame.name, "license": 0, "flickr_url": "",
                              "coco_url": "", "date_captured": 0})
        for shape in frame.shapes:
            doc["annotations"].append(
                _coco_ann(frame, shape, n, len(doc["annotations"]) + 1, labels))
    with written_aside(dest) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        _add(z, f"annotations/instances_{subset}.json", json.dumps(doc).encode(),
             zipfile.ZIP_DEFLATED)
        if images is not None:
            for frame in frames:
                _add(z, f"images/{subset}/{frame.name}", images(frame))


def _add(z: zipfile.ZipFile, name: str, data: bytes,
         compression: int = zipfile.ZIP_STORED) -> None:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = compression
    z.writestr(info, data)


def _el(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.Element(tag, {k: v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _meta(labels: LabelMap, task_name: str, task_id: int, size: int,
          dumped: str | None = None) -> etree._Element:
    now = dumped or time.strftime("%Y-%m-%d %H:%M:%S.000000+00:00", time.gmtime())
    meta = _el("meta")
    task = etree.SubElement(meta, "task")
    for tag, text in (("id", str(task_id)), ("name", task_name), ("size", str(size)),
                      ("mode", "annotation"), ("overlap", "0"), ("bugtracker", ""),
                      ("created", now), ("updated", now), ("subset", "default"),
                      ("start_frame", "0"), ("stop_frame", str(max(size - 1, 0))),
                      ("frame_filter", "")):
        task.append(_el(tag, text))
    labels_el = etree.SubElement(task, "labels")
    for label in labels:
        el = etree.SubElement(labels_el, "label")
        el.append(_el("name", label.name))
        el.append(_el("color", label.color or "#000000"))
        el.append(_el("type", label.type or "any"))
        el.append(_el("attributes"))
    meta.append(_el("dumped", now))
    return meta


def _num(v: float) -> str:
    return f"{v:.2f}"


def _image_el(frame: Frame) -> etree._Element:
    attrs = {"id": str(frame.index), "name": frame.name, "width": str(frame.width),
             "height": str(frame.height)}
    if frame.subset:
        attrs["subset"] = frame.subset
    el = etree.Element("image", attrs)
    for shape in frame.shapes:
        common = {"label": shape.label, "source": "manual" if shape.score is None else "auto",
                  "occluded": "1" if shape.occluded else "0"}
        if shape.kind == "rectangle":
            x0, y0, x1, y1 = shape.points
            s = etree.SubElement(el, "box", {**common, "xtl": _num(x0), "ytl": _num(y0),
                                             "xbr": _num(x1), "ybr": _num(y1),
                                             "z_order": str(shape.z_order)})
            if shape.rotation:
                s.set("rotation", _num(shape.rotation))
        elif shape.kind == "polygon":
            pts = ";".join(f"{_num(x)},{_num(y)}"
                           for x, y in zip(shape.points[0::2], shape.points[1::2]))
            s = etree.SubElement(el, "polygon", {**common, "points": pts,
                                                 "z_order": str(shape.z_order)})
        else:
            *runs, left, top, right, bottom = (int(v) for v in shape.points)
            s = etree.SubElement(el, "mask", {
                **common, "rle": ", ".join(str(r) for r in runs), "left": str(left),
                "top": str(top), "width": str(right - left + 1),
                "height": str(bottom - top + 1), "z_order": str(shape.z_order)})
        for name, value in shape.attributes:
            etree.SubElement(s, "attribute", {"name": name}).text = value
    return el


def _coco_ann(frame: Frame, shape: Shape, image_id: int, ann_id: int,
              labels: LabelMap) -> dict:
    x0, y0, x1, y1 = shape.bbox()
    attrs: dict[str, object] = {"occluded": shape.occluded}
    attrs.update(dict(shape.attributes))
    segmentation: object = []
    area = (x1 - x0) * (y1 - y0)
    if shape.kind == "rectangle":
        attrs["rotation"] = shape.rotation
    elif shape.kind == "polygon":
        segmentation = [list(shape.points)]
        area = polygon_area(shape.points)
    else:
        from pycocotools import mask as coco_mask
        import numpy as np
        from .geometry import mask_bitmap

        bitmap = mask_bitmap(shape, frame.width, frame.height)
        rle = coco_mask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
        segmentation = {"counts": rle["counts"].decode("ascii"),
                        "size": [frame.height, frame.width]}
        area = float(bitmap.sum())
    return {"id": ann_id, "image_id": image_id, "category_id": labels.id_of(shape.label),
            "segmentation": segmentation, "area": area, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "iscrowd": 1 if shape.kind == "mask" else 0, "attributes": attrs}
