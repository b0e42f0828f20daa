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

from .annotations import LabelMap
from .errors import SourceError

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
_FIELD = re.compile(r"(?P<key>id|name|display_name)\s*:\s*(?P<val>\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


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
    (classes.csv), told apart by the file's suffix."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))["label_map"]
            pairs = sorted((int(k), str(v)) for k, v in raw.items())
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SourceError(f"{path}: not a label map ({e}); expected "
                              '{"label_map": {"1": "name", ...}}') from None
        return _from_pairs(pairs, path)
    if path.suffix == ".pbtxt":
        pairs = []
        for m in _ITEM.finditer(path.read_text(encoding="utf-8")):
            fields = {f["key"]: f["val"] for f in _FIELD.finditer(m["body"])}
            if "id" not in fields or "name" not in fields:
                raise SourceError(f"{path}: an item lacks its id or name")
            pairs.append((int(fields["id"]), _unquote(fields["name"])))
        if not pairs:
            raise SourceError(f"{path}: no label items (item {{ id: 1 name: 'cat' }})")
        return _from_pairs(sorted(pairs), path)
    if path.suffix == ".csv":
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        if not rows or [c.strip() for c in rows[0]] != ["labels"]:
            raise SourceError(f"{path}: the first row must be the header 'labels'")
        return LabelMap.from_names(r[0] for r in rows[1:] if r)
    raise SourceError(f"{path}: a label file is label_map.json, label_map.pbtxt or "
                      "classes.csv (told apart by the suffix .json, .pbtxt or .csv)")


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _from_pairs(pairs: list[tuple[int, str]], path: Path) -> LabelMap:
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise SourceError(f"{path}: label ids must run 1..N without gaps, got "
                          f"{[i for i, _ in pairs]}")
    return LabelMap.from_names(name for _, name in pairs)
