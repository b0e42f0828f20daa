"""CVAT exports in the "CVAT for images 1.1" format: the reader and the writer.

The export is ``annotations.xml`` plus ``images/`` (as a zip or a folder). The reader
streams the XML with lxml so a task of any size is read with bounded memory; every
message names the XML line at fault. The writer makes zips (or the bare annotations.xml
of CVAT's "Upload annotations") that CVAT and the reader take back.
"""

from __future__ import annotations

import math
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from lxml import etree

from ..errors import AnnotationError, SourceError
from ..files import written_aside
from ..geometry import ellipse_polygon
from ..limits import ANNOTATIONS as ANNOTATION_FILES
from ..records import Frame, LabelMap, Shape, TaskSummary
from .container import ZIP_TIME, Container, ImageLoader, add_to_zip
from .source import UNLABELLED, ExportSource, check_image_name

ANNOTATIONS = "annotations.xml"
SCORE_ATTRIBUTE = "score"
"""The attribute a predicted shape's score is written as: CVAT's XML format has no score
field, and CVAT's upload keeps the attribute on labels that declare one of that name."""
_SKIPPED_KINDS = ("polyline", "points", "cuboid", "skeleton", "tag")


class CvatXmlSource(ExportSource):
    """A task exported from CVAT as "CVAT for images 1.1"."""

    def __init__(self, container: Container) -> None:
        super().__init__(container)
        self._xml_name = container.display(ANNOTATIONS)
        meta = self._read_meta()
        self._task_name = meta.findtext("task/name") or meta.findtext("job/name") or \
            meta.findtext("project/name") or container.path.stem
        task_id = meta.findtext("task/id") or meta.findtext("job/id")
        self._task_id = int(task_id) if task_id and task_id.isdigit() else None
        size = meta.findtext("task/size") or meta.findtext("job/size")
        self._size = int(size) if size and size.isdigit() else None
        self._labels = _parse_labels(meta, self._xml_name)

    @property
    def labels(self) -> LabelMap:
        return self._labels

    def summary(self) -> TaskSummary:
        if self._size is None:  # no <size> in <meta>: count the images, once
            self._size = sum(1 for _ in self._iter_images())
        frames = self._size
        return TaskSummary(id=self._task_id, name=self._task_name, labels=self._labels.names,
                           frames=frames, source=self.description)

    def frames(self) -> Iterator[Frame]:
        self.skipped.clear()
        for elem in self._iter_images():
            yield self._frame(elem)

    # -- parsing -----------------------------------------------------------------------

    def _parse(self, tags: tuple[str, ...]):
        stream = self.container.open(ANNOTATIONS, limit=ANNOTATION_FILES)
        try:
            for _event, elem in etree.iterparse(
                    stream, events=("end",), tag=tags, resolve_entities=False,
                    no_network=True, huge_tree=True, remove_comments=True):
                yield elem
        except etree.XMLSyntaxError as e:
            line = e.position[0] if e.position else getattr(e, "lineno", "?")
            raise SourceError(
                f"{self._xml_name} line {line}: the XML is malformed ({e.msg}); export the "
                "task from CVAT again or fix the file") from None
        finally:
            stream.close()

    def _read_meta(self) -> etree._Element:
        for elem in self._parse(("meta", "image")):
            if elem.tag == "meta":
                return elem
            break
        raise SourceError(
            f"{self._xml_name} has no <meta> section before its images, so it is not a "
            "'CVAT for images 1.1' export; export the task from CVAT in that format")

    def _iter_images(self) -> Iterator[etree._Element]:
        for elem in self._parse(("image", "track")):
            if elem.tag == "track":
                # Only in "CVAT for video" exports; "for images" flattens tracks into images.
                self.skipped["track"] += 1
            else:
                yield elem
            elem.clear(keep_tail=False)
            parent = elem.getparent()
            while parent is not None and elem.getprevious() is not None:
                del parent[0]

    def _frame(self, elem: etree._Element) -> Frame:
        where = f"{self._xml_name} line {elem.sourceline}"
        name = elem.get("name")
        if not name:
            raise AnnotationError(f"{where}: <image> has no name attribute")
        check_image_name(name, elem.get("subset", ""), where)
        index = _int_attr(elem, "id", where)
        width = _int_attr(elem, "width", where)
        height = _int_attr(elem, "height", where)
        shapes = []
        for child in elem:
            kind = child.tag
            if not isinstance(kind, str):
                continue
            if kind in _SKIPPED_KINDS:
                self.skipped[kind] += 1
                continue
            if kind not in ("box", "polygon", "mask", "ellipse"):
                self.skipped[kind] += 1
                continue
            shape = self._shape(child, f"{self._xml_name} line {child.sourceline}")
            if shape is not None:
                shapes.append(shape)
        return Frame(index=index, name=name, width=width, height=height, shapes=tuple(shapes),
                     subset=elem.get("subset", ""), where=where)

    def _shape(self, el: etree._Element, where: str) -> Shape | None:
        label = el.get("label")
        if label is None:
            raise AnnotationError(f"{where}: <{el.tag}> has no label")
        if not label.strip():
            self.skipped[UNLABELLED] += 1  # counted, not trained on (refused with --strict)
            return None
        if label not in self._labels:
            raise AnnotationError(
                f"{where}: a {el.tag} is labelled {label!r}, which is not among the task's "
                f"labels ({', '.join(self._labels.names)}); add the label to the task in CVAT "
                "or fix the annotation")
        common = dict(
            label=label,
            where=where,
            occluded=el.get("occluded", "0") in ("1", "true", "True"),
            attributes=tuple((a.get("name", ""), a.text or "") for a in el.iter("attribute")),
            z_order=int(_float_attr(el, "z_order", where, default=0)),
        )
        if el.tag == "box":
            pts = tuple(_float_attr(el, k, where) for k in ("xtl", "ytl", "xbr", "ybr"))
            return Shape(kind="rectangle", points=pts,
                         rotation=_float_attr(el, "rotation", where, default=0.0), **common)
        if el.tag == "polygon":
            return Shape(kind="polygon", points=_parse_points(el.get("points", ""), where),
                         **common)
        if el.tag == "ellipse":
            return Shape(kind="polygon", points=_ellipse_polygon(el, where), **common)
        return Shape(kind="mask", points=_mask_points(el, where), **common)


def _parse_labels(meta: etree._Element, xml_name: str) -> LabelMap:
    names: list[str] = []
    colors: dict[str, str | None] = {}
    types: dict[str, str] = {}
    for section in ("task", "job", "project"):
        for label in meta.findall(f"{section}/labels/label"):
            if label.findtext("parent"):
                continue  # a skeleton's point
            name = label.findtext("name")
            if not name or label.findtext("type") == "tag":
                continue  # a tag label marks whole frames: it is no class of objects
            if name in names:
                raise AnnotationError(
                    f"{xml_name}: label {name!r} is defined twice in <meta> "
                    f"(line {label.sourceline}); CVAT names each label once: export the task "
                    "again or fix the file")
            names.append(name)
            colors[name] = label.findtext("color")
            types[name] = label.findtext("type") or "any"
        if names:
            break
    if not names:
        raise AnnotationError(
            f"{xml_name} declares no labels in <meta>; add labels to the task in CVAT and "
            "export it again")
    try:
        return LabelMap.from_names(names, colors, types)
    except AnnotationError as e:
        raise AnnotationError(f"{xml_name}: {e}") from None


def _int_attr(el: etree._Element, key: str, where: str) -> int:
    raw = el.get(key)
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(
            f"{where}: <{el.tag}> attribute {key}={raw!r} is not a whole number") from None


def _float_attr(el: etree._Element, key: str, where: str, default: float | None = None) -> float:
    raw = el.get(key)
    if raw is None and default is not None:
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(
            f"{where}: <{el.tag}> attribute {key}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise AnnotationError(f"{where}: <{el.tag}> attribute {key}={raw!r} is not finite")
    return value


def _parse_points(raw: str, where: str) -> tuple[float, ...]:
    out: list[float] = []
    for pair in filter(None, raw.strip().split(";")):
        try:
            x, y = (float(v) for v in pair.split(","))
        except ValueError:
            raise AnnotationError(
                f"{where}: polygon point {pair!r} is not 'x,y' numbers") from None
        out += (x, y)
    return tuple(out)


def _ellipse_polygon(el: etree._Element, where: str) -> tuple[float, ...]:
    cx, cy, rx, ry = (_float_attr(el, k, where) for k in ("cx", "cy", "rx", "ry"))
    return ellipse_polygon(cx, cy, rx, ry, _float_attr(el, "rotation", where, default=0.0))


def _mask_points(el: etree._Element, where: str) -> tuple[float, ...]:
    left, top, width, height = (int(_float_attr(el, k, where))
                                for k in ("left", "top", "width", "height"))
    try:
        rle = [int(v) for v in el.get("rle", "").split(",") if v.strip()]
    except ValueError:
        raise AnnotationError(f"{where}: mask rle is not a list of whole numbers") from None
    if sum(rle) != width * height or width <= 0 or height <= 0:
        raise AnnotationError(
            f"{where}: mask rle covers {sum(rle)} pixels but its box is {width}x{height}; "
            "the export is damaged, export the task again")
    return tuple(float(v) for v in rle) + (left, top, left + width - 1, top + height - 1)


# -- writing -----------------------------------------------------------------------------


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
        info = zipfile.ZipInfo("annotations.xml", ZIP_TIME)
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
                add_to_zip(z, f"images/{frame.name}", images(frame))


def cvat_xml_bytes(frames: Iterable[Frame], labels: LabelMap, *, task_name: str) -> bytes:
    """annotations.xml alone, as CVAT's "Upload annotations" takes it."""
    frames = list(frames)
    root = etree.Element("annotations")
    root.append(_el("version", "1.1"))
    root.append(_meta(labels, task_name, 1, len(frames)))
    for frame in frames:
        root.append(_image_el(frame))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


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
        if shape.score is not None and SCORE_ATTRIBUTE not in shape.attrs:
            etree.SubElement(s, "attribute", {"name": SCORE_ATTRIBUTE}).text = \
                f"{shape.score:.4f}"
    return el
