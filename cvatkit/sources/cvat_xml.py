"""Reader of CVAT exports in the "CVAT for images 1.1" format.

The export is ``annotations.xml`` plus ``images/`` (as a zip or a folder). The XML is
streamed with lxml so a task of any size is read with bounded memory; every message
names the XML line at fault.
"""

from __future__ import annotations


import math
from collections.abc import Iterator

from lxml import etree

from ..annotations import Frame, LabelMap, Shape, TaskSummary
from ..errors import AnnotationError, SourceError
from ..geometry import ellipse_polygon
from .archive import Container
from .export import ExportSource

ANNOTATIONS = "annotations.xml"
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
        stream = self.container.open(ANNOTATIONS)
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
            shapes.append(self._shape(child, f"{self._xml_name} line {child.sourceline}"))
        return Frame(index=index, name=name, width=width, height=height, shapes=tuple(shapes),
                     subset=elem.get("subset", ""), where=where)

    def _shape(self, el: etree._Element, where: str) -> Shape:
        label = el.get("label")
        if label is None:
            raise AnnotationError(f"{where}: <{el.tag}> has no label")
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
            if not name or name in names:
                continue
            names.append(name)
            colors[name] = label.findtext("color")
            types[name] = label.findtext("type") or "any"
        if names:
            break
    if not names:
        raise AnnotationError(
            f"{xml_name} declares no labels in <meta>; add labels to the task in CVAT and "
            "export it again")
    return LabelMap.from_names(names, colors, types)


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

