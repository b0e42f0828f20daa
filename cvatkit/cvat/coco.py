"""CVAT exports in the "COCO 1.0" format: the reader and the writer.

The export is ``annotations/instances_<subset>.json`` plus ``images/`` (CVAT writes
``images/<subset>/`` in recent versions, ``images/`` in older ones).
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnnotationError, SourceError
from ..files import written_aside
from ..geometry import mask_bitmap, polygon_area
from ..limits import ANNOTATIONS
from ..records import Frame, LabelMap, Shape, TaskSummary
from .container import Container, ImageLoader, add_to_zip
from .source import UNLABELLED, ExportSource, check_image_name

_ATTRIBUTES_SKIPPED = ("occluded", "rotation", "z_order", "track_id", "keyframe")


def coco_files(container: Container) -> list[str]:
    return [n for n in container.names()
            if n.startswith("annotations/") and n.endswith(".json")
            and n.split("/")[-1].startswith(("instances_", "person_keypoints_"))
            and n.count("/") == 1]


class CocoSource(ExportSource):
    """A task exported from CVAT as "COCO 1.0" (every ``instances_*.json`` subset)."""

    def __init__(self, container: Container) -> None:
        super().__init__(container)
        self._files = sorted(coco_files(container))
        if not self._files:
            raise SourceError(
                f"{container.display('annotations/')} holds no instances_*.json file")
        self._docs = [(name, self._load(name)) for name in self._files]
        self._labels = self._parse_categories()

    @property
    def labels(self) -> LabelMap:
        return self._labels

    def summary(self) -> TaskSummary:
        frames = sum(len(doc.get("images", [])) for _name, doc in self._docs)
        return TaskSummary(id=None, name=self.container.path.stem, labels=self._labels.names,
                           frames=frames, source=self.description)

    def frames(self) -> Iterator[Frame]:
        self.skipped.clear()
        index = 0
        for name, doc in self._docs:
            subset = name.split("/")[-1][len("instances_"):-len(".json")]
            display = self.container.display(name)
            by_image: dict[Any, list[dict]] = defaultdict(list)
            images = doc.get("images") or []
            image_ids = _unique_image_ids(images, display)
            for ann in doc.get("annotations") or []:
                if not isinstance(ann, dict) or ann.get("image_id") not in image_ids:
                    raise AnnotationError(
                        f"{display}: annotation id {_get(ann, 'id')} names image_id "
                        f"{_get(ann, 'image_id')}, which is not among the images; fix the "
                        "file or export the task again")
                by_image[ann["image_id"]].append(ann)
            for img in images:
                where = f"{display} image id {img.get('id')}"
                try:
                    file_name = str(img["file_name"])
                    width, height = int(img["width"]), int(img["height"])
                except (KeyError, TypeError, ValueError):
                    raise AnnotationError(
                        f"{where}: an image needs file_name, width and height") from None
                check_image_name(file_name, "", where)
                shapes = tuple(self._shape(a, display, width, height)
                               for a in by_image.get(img["id"], []))
                yield Frame(index=index, name=file_name, width=width, height=height,
                            shapes=tuple(s for s in shapes if s is not None),
                            subset=subset, where=where)
                index += 1

    # -- parsing -----------------------------------------------------------------------

    def _load(self, name: str) -> dict:
        try:
            with self.container.open(name, limit=ANNOTATIONS) as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise SourceError(
                f"{self.container.display(name)} line {e.lineno} column {e.colno}: the JSON "
                f"is malformed ({e.msg}); export the task from CVAT again or fix the file"
            ) from None
        except UnicodeDecodeError as e:
            raise SourceError(
                f"{self.container.display(name)}: not UTF-8 text ({e.reason})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("images", []), list):
            raise SourceError(
                f"{self.container.display(name)}: not a COCO instances file (no 'images' list)")
        return doc

    def _parse_categories(self) -> LabelMap:
        self._category_names: dict[Any, str] = {}
        self._unnamed: set[Any] = set()
        names: list[str] = []
        for name, doc in self._docs:
            ids_here: dict[Any, str] = {}
            for cat in sorted(doc.get("categories") or [], key=lambda c: _get(c, "id") or 0):
                try:
                    cid, cname = cat["id"], str(cat["name"])
                except (KeyError, TypeError):
                    raise AnnotationError(
                        f"{self.container.display(name)}: a category needs an id and a name"
                    ) from None
                where = self.container.display(name)
                if not cname.strip():
                    self._unnamed.add(cid)  # its shapes are counted, not trained on
                    continue
                if self._category_names.get(cid, cname) != cname:
                    raise AnnotationError(
                        f"{where}: category {cid} is named {cname!r}, but "
                        f"{self._category_names[cid]!r} in another file of the export; "
                        "export the task from CVAT again")
                twin = next((k for k, v in ids_here.items() if v == cname and k != cid), None)
                if twin is not None:
                    raise AnnotationError(
                        f"{where}: categories {twin} and {cid} are both named {cname!r}; "
                        "CVAT exports each label once: rename one of them, or merge their "
                        "annotations under one id")
                ids_here[cid] = cname
                self._category_names[cid] = cname
                if cname not in names:
                    names.append(cname)
        if not names:
            raise AnnotationError(
                f"{self.container.display(self._files[0])} declares no categories; add labels "
                "to the task in CVAT and export it again")
        try:
            return LabelMap.from_names(names)
        except AnnotationError as e:
            raise AnnotationError(f"{self.container.display(self._files[0])}: {e}") from None

    def _shape(self, ann: dict, display: str, width: int, height: int) -> Shape | None:
        where = f"{display} annotation id {ann.get('id')}"
        cat = ann.get("category_id")
        if cat in self._unnamed:
            self.skipped[UNLABELLED] += 1
            return None
        if cat not in self._category_names:
            known = ", ".join(f"{k} {v}" for k, v in self._category_names.items())
            raise AnnotationError(
                f"{where}: category_id {cat!r} is not among the categories ({known}); fix the "
                "annotation or add the label to the task")
        attrs = ann.get("attributes") or {}
        common = dict(
            label=self._category_names[cat],
            where=where,
            occluded=bool(attrs.get("occluded", False)),
            attributes=tuple((str(k), str(v)) for k, v in attrs.items()
                             if k not in _ATTRIBUTES_SKIPPED),
            z_order=int(attrs.get("z_order", 0) or 0),
        )
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            return Shape(kind="mask", points=_rle_to_cvat(seg, where, width, height), **common)
        if isinstance(seg, list) and seg:
            polys = [p for p in seg if isinstance(p, list)]
            if len(polys) == 1:
                return Shape(kind="polygon", points=_numbers(polys[0], where, pairs=True),
                             **common)
            return Shape(kind="mask", points=_polygons_to_cvat(polys, where, width, height),
                         **common)
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise AnnotationError(f"{where}: needs a bbox [x, y, width, height] or a segmentation")
        x, y, w, h = _numbers(bbox, where)
        return Shape(kind="rectangle", points=(x, y, x + w, y + h),
                     rotation=float(attrs.get("rotation", 0.0) or 0.0), **common)


def _unique_image_ids(images: list, display: str) -> set:
    """The images' ids, each given once."""
    seen: dict[Any, str] = {}
    for img in images:
        if not isinstance(img, dict):
            continue
        key = img.get("id")
        if key in seen:
            raise AnnotationError(
                f"{display}: image id {key!r} is given twice ({seen[key]!r} and "
                f"{img.get('file_name')!r}); each image needs its own id: export the task "
                "again or fix the file")
        seen[key] = str(img.get("file_name"))
    return set(seen)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _numbers(values: list, where: str, *, pairs: bool = False) -> tuple[float, ...]:
    """Coordinates as numbers; with ``pairs``, an x and a y for every point."""
    shown = _brief(values)
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: coordinates {shown} are not all numbers") from None
    if not all(math.isfinite(v) for v in out):
        raise AnnotationError(f"{where}: coordinates {shown} are not all finite")
    if pairs and len(out) % 2:
        raise AnnotationError(
            f"{where}: the polygon {shown} has {len(out)} coordinates, an odd number: a "
            "point needs an x and a y; fix the segmentation or export the task again")
    return out


def _brief(value: object, limit: int = 80) -> str:
    """``value`` as a message shows it: its start, when it is long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _rle_to_cvat(seg: dict, where: str, width: int, height: int) -> tuple[float, ...]:
    from pycocotools import mask as coco_mask

    try:
        rle = seg
        if isinstance(seg.get("counts"), list):
            rle = coco_mask.frPyObjects(seg, *seg["size"])
        bitmap = coco_mask.decode(rle).astype(bool)
    except Exception as e:  # pycocotools raises bare Exceptions on bad RLE
        raise AnnotationError(f"{where}: the RLE segmentation does not decode ({e})") from None
    if bitmap.shape != (height, width):
        raise AnnotationError(
            f"{where}: the mask is {bitmap.shape[1]}x{bitmap.shape[0]} but its image is "
            f"{width}x{height}")
    return _bitmap_to_cvat(bitmap, where)


def _polygons_to_cvat(polys: list, where: str, width: int, height: int) -> tuple[float, ...]:
    from pycocotools import mask as coco_mask

    flat = [list(_numbers(p, where, pairs=True)) for p in polys if len(p) >= 6]
    if not flat:
        raise AnnotationError(f"{where}: every polygon has fewer than 3 points")
    bitmap = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(flat, height, width)))
    return _bitmap_to_cvat(bitmap.astype(bool), where)


def _bitmap_to_cvat(bitmap: np.ndarray, where: str) -> tuple[float, ...]:
    from cvat_sdk.masks import encode_mask

    if not bitmap.any():
        raise AnnotationError(f"{where}: the mask is empty")
    return tuple(float(v) for v in encode_mask(bitmap))


# -- writing -----------------------------------------------------------------------------


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
        add_to_zip(z, f"annotations/instances_{subset}.json", json.dumps(doc).encode(),
             zipfile.ZIP_DEFLATED)
        if images is not None:
            for frame in frames:
                add_to_zip(z, f"images/{subset}/{frame.name}", images(frame))


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

        bitmap = mask_bitmap(shape, frame.width, frame.height)
        rle = coco_mask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
        segmentation = {"counts": rle["counts"].decode("ascii"),
                        "size": [frame.height, frame.width]}
        area = float(bitmap.sum())
    return {"id": ann_id, "image_id": image_id, "category_id": labels.id_of(shape.label),
            "segmentation": segmentation, "area": area, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "iscrowd": 1 if shape.kind == "mask" else 0, "attributes": attrs}
