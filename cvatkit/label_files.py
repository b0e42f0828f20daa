"""The label files written next to every dataset and model.

The names and formats are the ones users of CVAT's old training workflow look for:
``label_map.pbtxt`` (TF Object Detection API), ``classes.csv`` (header ``labels``, one
name per row) and ``label_map.json`` (``{"label_map": {"1": "name"}}``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .errors import SourceError
from .limits import TEXT
from .records import LabelMap

PBTXT = "label_map.pbtxt"
CLASSES_CSV = "classes.csv"
LABEL_MAP_JSON = "label_map.json"


def write_label_files(labels: LabelMap, folder: Path) -> None:
    """Write all three label files into ``folder``."""
    (folder / PBTXT).write_text(format_pbtxt(labels), encoding="utf-8")
    (folder / CLASSES_CSV).write_text(format_classes_csv(labels), encoding="utf-8")
    (folder / LABEL_MAP_JSON).write_text(
        json.dumps({"label_map": {str(label.id): label.name for label in labels}}, indent=2,
                   ensure_ascii=False) + "\n", encoding="utf-8")


def format_pbtxt(labels: LabelMap) -> str:
    items = []
    for label in labels:
        name = label.name.replace("\\", "\\\\").replace("'", "\\'")
        items.append(f"item {{\n  id: {label.id}\n  name: '{name}'\n}}\n")
    return "".join(items)


def format_classes_csv(labels: LabelMap) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["labels"])
    for label in labels:
        writer.writerow([label.name])
    return buf.getvalue()


_ITEM = re.compile(r"item\s*\{(?P<body>[^}]*)\}", re.S)
_FIELD = re.compile(r"(?P<key>id|name|display_name)\s*:\s*"
                    r"(?P<val>\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


def read_label_map(folder: Path) -> LabelMap:
    """The label map of a dataset or model folder, from whichever label file it has."""
    folder = Path(folder)
    for name in (LABEL_MAP_JSON, PBTXT, CLASSES_CSV):
        if (folder / name).exists():
            return read_label_file(folder / name)
    raise SourceError(
        f"{folder} has no label file ({LABEL_MAP_JSON}, {PBTXT} or {CLASSES_CSV})")


def read_label_file(path: Path) -> LabelMap:
    """A label map from one file: ``.json`` (label_map.json), ``.pbtxt`` or ``.csv``
    (classes.csv), told apart by the file's suffix. Ids must run 1..N."""
    path = Path(path)
    pairs = sorted(read_class_names(path).items())
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise SourceError(f"{path}: label ids must run 1..N without gaps, got "
                          f"{[i for i, _ in pairs]}")
    return LabelMap.from_names(name for _, name in pairs)


def read_class_names(path: Path) -> dict[int, str]:
    """Class id -> label name from one label file, ids as the file gives them: they may
    have gaps, as in the TF Object Detection API's COCO label map (80 labels, ids up to
    90). A pbtxt item's ``display_name`` is its name when it has one (the COCO map's
    ``name`` holds codes such as ``/m/01g317``)."""
    path = Path(path)
    try:
        TEXT.check(path.stat().st_size, str(path))
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save "
                          "the label file as UTF-8") from None
    except OSError as e:
        raise SourceError(f"{path} cannot be read ({e.strerror})") from None
    if path.suffix == ".json":
        try:
            raw = json.loads(text)["label_map"]
            pairs = [(int(k), str(v)) for k, v in raw.items()]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SourceError(f"{path}: not a label map ({e}); expected "
                              '{"label_map": {"1": "name", ...}}') from None
    elif path.suffix == ".pbtxt":
        pairs = []
        for m in _ITEM.finditer(text):
            fields = {f["key"]: f["val"] for f in _FIELD.finditer(m["body"])}
            name = fields.get("display_name", fields.get("name"))
            if "id" not in fields or name is None:
                raise SourceError(f"{path}: an item lacks its id or name")
            pairs.append((int(fields["id"]), _unquote(name)))
        if not pairs:
            raise SourceError(f"{path}: no label items (item {{ id: 1 name: 'cat' }})")
    elif path.suffix == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows or [c.strip() for c in rows[0]] != ["labels"]:
            raise SourceError(f"{path}: the first row must be the header 'labels'")
        pairs = list(enumerate((r[0] for r in rows[1:] if r), start=1))
    else:
        raise SourceError(f"{path}: a label file is label_map.json, label_map.pbtxt or "
                          "classes.csv (told apart by the suffix .json, .pbtxt or .csv)")
    out: dict[int, str] = {}
    for class_id, name in pairs:
        if class_id < 1:
            raise SourceError(f"{path}: label {name!r} has id {class_id}; ids start at 1 "
                              "(0 is the background)")
        if class_id in out:
            raise SourceError(f"{path}: id {class_id} is given twice ({out[class_id]!r} "
                              f"and {name!r})")
        out[class_id] = name
    return out


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])
