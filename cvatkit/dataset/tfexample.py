"""tf.train.Example records and TFRecord files, without importing TensorFlow.

Preparing a dataset needs only the Example message and the TFRecord framing. Both are
small and fixed, so they are declared here for the protobuf runtime, which makes
``cvatkit prepare`` start in a fraction of a second instead of loading all of TensorFlow.
The bytes are the same as TensorFlow's: TensorFlow and Model Garden read them back (tested).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def _build_classes():
    f = descriptor_pb2.FileDescriptorProto(name="cvatkit_example.proto",
                                           package="cvatkit.tf", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    for name, ftype in (("BytesList", T.TYPE_BYTES), ("FloatList", T.TYPE_FLOAT),
                        ("Int64List", T.TYPE_INT64)):
        m = f.message_type.add(name=name)
        fld = m.field.add(name="value", number=1, type=ftype, label=T.LABEL_REPEATED)
        if ftype != T.TYPE_BYTES:
            fld.options.packed = True
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate(
            (("bytes_list", "BytesList"), ("float_list", "FloatList"),
             ("int64_list", "Int64List")), start=1):
        feature.field.add(name=name, number=number, type=T.TYPE_MESSAGE,
                          label=T.LABEL_OPTIONAL, type_name=f".cvatkit.tf.{type_name}",
                          oneof_index=0)
    features = f.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                    type_name=".cvatkit.tf.Feature")
    features.field.add(name="feature", number=1, type=T.TYPE_MESSAGE,
                       label=T.LABEL_REPEATED, type_name=".cvatkit.tf.Features.FeatureEntry")
    example = f.message_type.add(name="Example")
    example.field.add(name="features", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                      type_name=".cvatkit.tf.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("cvatkit.tf.Example"))


Example = _build_classes()


def make_example(feature: dict[str, tuple[str, list]]) -> bytes:
    """A serialized Example from ``{key: (kind, values)}``, kind being ``bytes``,
    ``float`` or ``int64``."""
    ex = Example()
    fmap = ex.features.feature
    for key, (kind, values) in feature.items():
        getattr(fmap[key], f"{kind}_list").value.extend(values)
    return ex.SerializeToString(deterministic=True)


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class TFRecordWriter:
    """Writes records in TensorFlow's TFRecord framing (length, CRC32C, data, CRC32C)."""

    def __init__(self, path) -> None:
        self._file: BinaryIO = open(path, "wb")

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._file.write(header + struct.pack("<I", _masked_crc(header)) + record
                         + struct.pack("<I", _masked_crc(record)))

    def close(self) -> None:
        self._file.close()
