"""Label files read back what was written, quotes and non-ASCII names included."""

from __future__ import annotations

import pytest

from cvatkit.errors import AnnotationError, SourceError
from cvatkit.label_files import (CLASSES_CSV, LABEL_MAP_JSON, PBTXT, read_label_map,
                                 write_label_files)
from cvatkit.records import LabelMap

NAMES = ["car", "traffic light", "o'clock", 'say "hi"', "Straße", "a,b"]


@pytest.mark.parametrize("keep", [LABEL_MAP_JSON, PBTXT, CLASSES_CSV])
def test_each_label_file_round_trips(tmp_path, keep):
    write_label_files(LabelMap.from_names(NAMES), tmp_path)
    for name in {LABEL_MAP_JSON, PBTXT, CLASSES_CSV} - {keep}:
        (tmp_path / name).unlink()
    assert read_label_map(tmp_path).names == tuple(NAMES)


def test_bad_label_files_are_named(tmp_path):
    with pytest.raises(SourceError, match="has no label file"):
        read_label_map(tmp_path)
    (tmp_path / PBTXT).write_text("item { id: 1 name: 'a' }\nitem { id: 3 name: 'b' }\n")
    with pytest.raises(SourceError, match=r"label_map.pbtxt: label ids must run 1..N"):
        read_label_map(tmp_path)
    (tmp_path / LABEL_MAP_JSON).write_text('{"labels": []}')
    with pytest.raises(SourceError, match="label_map.json: not a label map"):
        read_label_map(tmp_path)


def test_label_map_refuses_duplicates_and_names_unknown_labels():
    with pytest.raises(AnnotationError, match="label 'a' is defined more than once"):
        LabelMap.from_names(["a", "b", "a"])
    labels = LabelMap.from_names(["a", "b"])
    assert labels.id_of("b") == 2 and labels.name_of(1) == "a"
    with pytest.raises(AnnotationError, match=r"label 'z' is not in the label map \(a, b\)"):
        labels.id_of("z")
