"""The model catalog: the models of CVAT's training workflow, mapped onto TF Model Garden.

Each entry says what the model is built from, the original workflow's defaults, the input
size, when to choose it, how many GPUs it needs and where its initial weights come from.
Users add their own entries in a catalog file (YAML or JSON) without editing cvatkit:
``$CVATKIT_CATALOG`` or ``~/.config/cvatkit/models.yaml`` (see ``load_catalog``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import CatalogError
from ..limits import TEXT

CATALOG_ENV = "CVATKIT_CATALOG"
DEFAULT_USER_CATALOG = Path("~/.config/cvatkit/models.yaml")
DEFAULT_MODEL = "retinanet-spinenet-mobile-coco"
"""The model of a run that names none: the fast COCO-trained detector."""
FAMILIES = ("retinanet", "fasterrcnn", "maskrcnn")
WEIGHT_KINDS = ("coco", "imagenet", "none")
"""What a run can start from besides an earlier run or a store version: the entry's
COCO-trained detector, its ImageNet backbone, or random initialisation."""
_MG = "https://storage.googleapis.com/tf_model_garden/vision"
SMALL_TASK_STEPS = 1000
"""ssd-mobilenet-v2-small's default num-steps: what its race against Ultralytics YOLO on
the built-in sample (bench/race.py) found enough for a few hundred frames at batch 16."""


@dataclass(frozen=True, kw_only=True)
class Weights:
    """Where a model's initial weights come from."""

    description: str
    """What they are, e.g. 'ImageNet MobileNetV2 (TF Model Garden)'."""
    urls: tuple[str, ...] = ()
    """Files to fetch: one archive (.tar.gz) or the files of a TF checkpoint."""
    checkpoint: str = ""
    """The checkpoint prefix (or Keras .h5 file) inside what was fetched."""
    modules: str = "backbone"
    """What to load: 'backbone', 'backbone,decoder' or 'all'."""
    sha256: dict[str, str] = field(default_factory=dict)
    """Expected digests by file name; files without one are pinned on first download."""
    kind: str = "tf_checkpoint"
    """'tf_checkpoint' or 'keras_h5'."""
    num_classes: int = 0
    """With modules 'all': the class count of the checkpoint's detector (91 for Model
    Garden's COCO models); every variable whose shape fits is loaded, the class predictor
    starts afresh when the task's count differs."""

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Weights:
        """From a catalog file's mapping or ``run.json`` (lists for tuples)."""
        return cls(**{**fields, "urls": tuple(fields.get("urls", ()))})


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model users can pick."""

    key: str
    title: str
    family: str
    """'retinanet' (one-stage, SSD-style), 'fasterrcnn' or 'maskrcnn'."""
    backbone: str
    """mobilenet_v1, mobilenet_v2 (mobilenet_v2_050: width 0.5), resnet50, resnet101,
    inception_resnet_v2, spinenet49, spinenet49_mobile."""
    image_size: int
    batch_size: int
    """Per GPU (or for the CPU); multiplied by num-clones unless set."""
    learning_rate: float
    num_steps: int
    advice: str
    weights: Weights | None = None
    """The ImageNet-trained backbone (``--weights imagenet``)."""
    coco: Weights | None = None
    """A whole detector trained on COCO (``--weights coco``)."""
    default_weights: str = "none"
    """What a run starts from unless told: 'coco', 'imagenet' or 'none'."""
    min_gpus: int = 0
    separable_head: bool = False
    head_filters: int = 256
    head_convs: int = 4
    max_level: int = 0
    """The coarsest feature level (0: the family's, 6 for one-stage models)."""
    activation: str = ""
    """The backbone's and heads' activation ('' for the backbone's usual one)."""
    anchor_size: float = 4.0
    num_proposals: int | None = None
    """Faster/Mask R-CNN: proposals kept per image (fewer is faster)."""
    l2_weight_decay: float = 4e-5
    box_loss_weight: float = 50.0
    """One-stage models: the weight of the box regression loss against the class loss."""
    huber_loss_delta: float = 0.1
    """One-stage models: where the box loss turns from squared to linear (in the encoded
    offsets of a box from its anchor): a small delta keeps pulling boxes that are almost
    right, which the stricter IoU thresholds of COCO AP reward."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Model Garden config overrides (dotted keys) applied last: the escape hatch of
    user catalog entries."""
    experiment: str = ""
    """The Model Garden experiment the config starts from (by family if empty)."""
    init_version: str = ""
    """A model-store version (``s3://.../NS/models/KEY/VERSION``) runs start from unless
    given another checkpoint: its weights, with the same class check."""
    source: str = "built-in"


    def weights_for(self, kind: str) -> Weights | None:
        """The published weights of ``kind`` ('coco' or 'imagenet'), if it has them."""
        w = self.coco if kind == "coco" else self.weights if kind == "imagenet" else None
        return w if w is not None and w.urls else None

    @property
    def weight_kinds(self) -> tuple[str, ...]:
        """What it can start from, best first."""
        return tuple(k for k in ("coco", "imagenet") if self.weights_for(k)) + ("none",)

    @property
    def masks(self) -> str:
        """What to prepare for it (``prepare(masks=...)``): instance masks when the task
        has polygons or masks for a model that learns them; boxes only for the others."""
        return "auto" if self.family == "maskrcnn" else "never"

    @property
    def weights_note(self) -> str:
        """What a run starts from by default."""
        if self.init_version:
            return f"the model store version {self.init_version}"
        w = self.weights_for(self.default_weights)
        return (f"{self.default_weights}: {w.description}" if w
                else "none: random initialisation")

    @property
    def other_weights(self) -> tuple[str, ...]:
        """The published weights (or none) a run could start from instead."""
        default = "" if self.init_version else self.default_weights
        return tuple(k for k in self.weight_kinds if k != default)


_CHOOSE = (
    "If unsure: retinanet-spinenet-mobile-coco when COCO's weights can be downloaded and "
    "your objects are like COCO's; ssd-mobilenet-v2-small otherwise.")
_SSD_ADVICE = (
    "Starts from random weights (Model Garden publishes no COCO-trained SSD), or from its "
    "ImageNet-trained backbone with --weights imagenet. " + _CHOOSE)
_FRCNN_ADVICE = (
    "More accurate than the SSD models and slower; trains with batch 1 by default, as "
    "the original workflow did. Starts from random weights, or its ImageNet-trained "
    "backbone with --weights imagenet (Model Garden publishes no COCO-trained Faster "
    "R-CNN of it).")

_COCO_NOTE = (
    "Starts from a whole detector trained on COCO's 80 classes (only the class predictor "
    "starts afresh when your labels differ): useful after a few hundred steps on a few "
    "hundred frames.")

BUILT_IN: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="retinanet-spinenet-mobile-coco", title="RetinaNet Mobile SpineNet-49 "
        "(COCO-trained)", family="retinanet", backbone="spinenet49_mobile", image_size=384,
        batch_size=16, learning_rate=0.02, num_steps=2000, separable_head=True,
        head_filters=48, head_convs=4, max_level=7, activation="swish", anchor_size=3.0,
        default_weights="coco",
        advice="Recommended when COCO's weights can be downloaded and your objects are "
               "like COCO's (people, vehicles, animals, everyday things): small and fast "
               "(2.3 M parameters, trains on a CPU). " + _COCO_NOTE + " The default model; "
               "for more accuracy on a GPU, retinanet-resnet50-coco. Without internet, or "
               "for objects COCO has nothing like, ssd-mobilenet-v2-small.",
        coco=Weights(description="Mobile SpineNet-49 RetinaNet trained on COCO at 384 px, "
                                 "box AP 28.1 (TF Model Garden)",
                     urls=(f"{_MG}/retinanet/spinenet49mobile.tar.gz",), modules="all",
                     num_classes=91)),
    ModelSpec(
        key="retinanet-resnet50-coco", title="RetinaNet ResNet-50 FPN (COCO-trained)",
        family="retinanet", backbone="resnet50", image_size=640, batch_size=8,
        learning_rate=0.01, num_steps=3000, head_filters=256, head_convs=4, max_level=7,
        anchor_size=4.0, default_weights="coco",
        advice="More accurate than retinanet-spinenet-mobile-coco and about ten times "
               "slower: for a GPU. " + _COCO_NOTE,
        coco=Weights(description="RetinaNet ResNet-50 FPN trained on COCO at 640 px, box AP "
                                 "36.8 (TF Model Garden)",
                     urls=(f"{_MG}/retinanet/retinanet-resnet50fpn.tar.gz",), modules="all",
                     num_classes=91),
        weights=Weights(description="ImageNet ResNet-50 backbone (TF Model Garden)",
                        urls=(f"{_MG}/resnet/resnet-50-i224.tar.gz",), checkpoint="")),
    ModelSpec(
        key="ssd-mobilenet-v2-small", title="SSD MobileNetV2 0.5 (FPN, RetinaNet head), "
        "for small tasks", family="retinanet", backbone="mobilenet_v2_050", image_size=320,
        batch_size=16, learning_rate=0.08, num_steps=SMALL_TASK_STEPS, separable_head=True,
        head_filters=64, head_convs=2, max_level=5, anchor_size=3.0, box_loss_weight=100.0,
        huber_loss_delta=0.03,
        advice="Recommended without internet, or when your objects are nothing like COCO's "
               "(cells, parts, defects, symbols): made to train from random weights on a "
               "CPU on a small task (hundreds of frames, a few kinds of object). "
               "MobileNetV2 at half width on three feature levels, at a high learning "
               "rate; a step costs about half of a full-width SSD's. Left to itself, its "
               "input size, anchors and steps are fitted to your frames and boxes "
               "(`cvatkit train --plan` shows them)."),
    ModelSpec(
        key="ssd-mobilenet-v2", title="SSD MobileNetV2 (FPN, RetinaNet head)",
        family="retinanet", backbone="mobilenet_v2", image_size=320, batch_size=24,
        learning_rate=0.004, num_steps=10000, separable_head=True, head_filters=64,
        head_convs=2, anchor_size=3.0,
        advice="The full-width MobileNetV2 SSD of CVAT's workflow (which called it "
               "ssd-mobilenet-v2-coco). " + _SSD_ADVICE,
        weights=Weights(description="ImageNet MobileNetV2 backbone (TF Model Garden)",
                        urls=(f"{_MG}/mobilenet/v2_1.0_float/ckpt-180648.index",
                              f"{_MG}/mobilenet/v2_1.0_float/ckpt-180648.data-00000-of-00001"),
                        checkpoint="ckpt-180648")),
    ModelSpec(
        key="ssd-mobilenet-v1", title="SSD MobileNetV1 (FPN, RetinaNet head)",
        family="retinanet", backbone="mobilenet_v1", image_size=320, batch_size=24,
        learning_rate=0.004, num_steps=10000, head_filters=64, head_convs=2,
        anchor_size=3.0, advice="The older, slightly faster MobileNet; no published "
        "weights, so it always starts from random ones. " + _CHOOSE,
        weights=None),
    ModelSpec(
        key="ssdlite-mobilenet-v2", title="SSDLite MobileNetV2 (separable convolutions)",
        family="retinanet", backbone="mobilenet_v2", image_size=320, batch_size=24,
        learning_rate=0.004, num_steps=10000, separable_head=True, head_filters=32,
        head_convs=2, anchor_size=3.0,
        advice="The lightest model, for small devices and quick experiments; a little less "
               "accurate than ssd-mobilenet-v2. Starts from random weights, or its ImageNet "
               "backbone with --weights imagenet.",
        weights=Weights(description="ImageNet MobileNetV2 backbone (TF Model Garden)",
                        urls=(f"{_MG}/mobilenet/v2_1.0_float/ckpt-180648.index",
                              f"{_MG}/mobilenet/v2_1.0_float/ckpt-180648.data-00000-of-00001"),
                        checkpoint="ckpt-180648")),
    ModelSpec(
        key="frcnn-res50", title="Faster R-CNN ResNet-50 FPN", family="fasterrcnn",
        backbone="resnet50", image_size=640, batch_size=1, learning_rate=0.0003,
        num_steps=10000, advice="The lightest Faster R-CNN. " + _FRCNN_ADVICE + " For more "
        "accuracy see frcnn-res101 or frcnn-inc-resv2-atr.",
        weights=Weights(description="ImageNet ResNet-50 backbone (TF Model Garden)",
                        urls=(f"{_MG}/resnet/resnet-50-i224.tar.gz",), checkpoint="")),
    ModelSpec(
        key="frcnn-res101", title="Faster R-CNN ResNet-101 FPN", family="fasterrcnn",
        backbone="resnet101", image_size=640, batch_size=1, learning_rate=0.0003,
        num_steps=10000,
        advice="A deeper backbone for harder data. " + _FRCNN_ADVICE,
        weights=Weights(description="ImageNet ResNet-101 backbone (TF Model Garden)",
                        urls=(f"{_MG}/resnet/resnet-101-i224.tar.gz",), checkpoint="")),
    ModelSpec(
        key="frcnn-res101-lowp", title="Faster R-CNN ResNet-101 FPN, few proposals",
        family="fasterrcnn", backbone="resnet101", image_size=640, batch_size=1,
        learning_rate=0.0003, num_steps=10000, num_proposals=100,
        advice="ResNet-101 with 100 region proposals instead of 1000: faster, for frames "
               "with few objects. For more accuracy pick frcnn-res101 or "
               "frcnn-inc-resv2-atr. Starts from random weights, or its ImageNet-trained "
               "backbone with --weights imagenet.",
        weights=Weights(description="ImageNet ResNet-101 backbone (TF Model Garden)",
                        urls=(f"{_MG}/resnet/resnet-101-i224.tar.gz",), checkpoint="")),
    ModelSpec(
        key="frcnn-inc-resv2-atr", title="Faster R-CNN Inception-ResNet-v2 (FPN)",
        family="fasterrcnn", backbone="inception_resnet_v2", image_size=640, batch_size=1,
        learning_rate=0.0003, num_steps=10000,
        advice="The most complex backbone: for very busy frames (hundreds of objects). "
               "Needs the most memory and time. Starts from random weights, or its "
               "ImageNet-trained backbone (Keras Applications) with --weights imagenet.",
        weights=Weights(
            description="ImageNet Inception-ResNet-v2 (Keras Applications)",
            urls=("https://storage.googleapis.com/tensorflow/keras-applications/"
                  "inception_resnet_v2/"
                  "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",),
            checkpoint="inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            kind="keras_h5")),
    ModelSpec(
        key="frcnn-nas", title="Faster R-CNN with a NAS-found backbone (SpineNet-49)",
        family="fasterrcnn", backbone="spinenet49", image_size=640, batch_size=1,
        learning_rate=0.0003, num_steps=10000,
        advice="A backbone found by architecture search (SpineNet-49: about the memory of "
               "ResNet-50; the original workflow's NAS model wanted 2 GPUs, this one does "
               "not). Starts from random weights, or with --weights imagenet from the SpineNet-49 "
               "backbone of Model Garden's COCO RetinaNet. " + _CHOOSE,
        weights=Weights(description="SpineNet-49 backbone of Model Garden's COCO RetinaNet",
                        urls=(f"{_MG}/spinenet/spinenet-49-i640.tar.gz",), checkpoint="")),
    ModelSpec(
        key="maskrcnn", title="Mask R-CNN ResNet-50 FPN (boxes and masks)",
        family="maskrcnn", backbone="resnet50", image_size=640, batch_size=1,
        learning_rate=0.0003, num_steps=10000,
        advice="Segmentation: predicts a mask per object, from polygons or masks. Trains "
               "in three stages, as the original workflow did: the heads, then the upper "
               "backbone, then everything at a tenth of the learning rate; by default one "
               "epoch each. Few epochs are enough, most of them in stage 1 "
               "(stage-1-epochs, stage-2-epochs, stage-3-epochs). Starts from random "
               "weights, or its ImageNet-trained ResNet-50 with --weights imagenet.",
        weights=Weights(description="ImageNet ResNet-50 backbone (TF Model Garden)",
                        urls=(f"{_MG}/resnet/resnet-50-i224.tar.gz",), checkpoint="")),
)


def load_catalog(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """The built-in entries plus the user's, by key.

    The user catalog is ``path``, else ``$CVATKIT_CATALOG``, else
    ``~/.config/cvatkit/models.yaml`` if it exists. Its form::

        models:
          my-ssd:                       # a new key
            base: ssd-mobilenet-v2 # start from an entry (or give every field)
            title: SSD for my cameras
            image_size: 512
            batch_size: 16
            overrides:                  # any Model Garden config field
              task.model.head.num_filters: 128
    """
    catalog = {spec.key: spec for spec in BUILT_IN}
    if path is None:
        env = os.environ.get(CATALOG_ENV)
        path = env if env else (DEFAULT_USER_CATALOG.expanduser()
                                if DEFAULT_USER_CATALOG.expanduser().exists() else None)
    if path is None:
        return catalog
    file = Path(path)
    try:
        TEXT.check(file.stat().st_size, f"model catalog {file}")
        text = file.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CatalogError(f"model catalog {file}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise CatalogError(f"model catalog {file} is not UTF-8 text ({e.reason} at byte "
                           f"{e.start}); save it as UTF-8") from None
    doc = _parse(text, file)
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise CatalogError(f"model catalog {file}: expected a 'models:' mapping of keys to "
                           "entries")
    for key, entry in models.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise CatalogError(
                f"model catalog {file}: the key {key!r} may hold letters, digits, '.', '_' and "
                "'-' only (it names the model's folder in a model store)")
        catalog[key] = _entry(key, entry, catalog, file)
    return catalog


_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


MODEL_ALIASES = {
    "ssd-mobilenet-v2-coco": "ssd-mobilenet-v2",
    "ssd-mobilenetv2": "ssd-mobilenet-v2",
    "ssd-mobilenet-v1-coco": "ssd-mobilenet-v1",
    "ssd-mobilenetv1": "ssd-mobilenet-v1",
    "ssd-mobilenetlite": "ssdlite-mobilenet-v2",
    "ssdlite-mobilenet": "ssdlite-mobilenet-v2",
    "frcnn-res50-coco": "frcnn-res50",
    "frcnn-res101-coco": "frcnn-res101",
    "frcnn-inc-resv2-atr-coco": "frcnn-inc-resv2-atr",
    "frcnn-nas-coco": "frcnn-nas",
    "maskrcnn-training": "maskrcnn",
    "mask-rcnn": "maskrcnn",
}
"""The other names CVAT's training workflow used for its models. Its ``-coco`` names are
kept as aliases of entries that do not start from COCO's weights (Model Garden publishes
none for them), whose own names therefore leave COCO out."""


def get_model(key: str, catalog: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """The entry ``key`` (or one of CVAT's workflow names for it: ``MODEL_ALIASES``)."""
    catalog = catalog if catalog is not None else load_catalog()
    if key in catalog:
        return catalog[key]
    if MODEL_ALIASES.get(key) in catalog:
        return catalog[MODEL_ALIASES[key]]
    import difflib

    close = difflib.get_close_matches(key, list(catalog), n=1, cutoff=0.4)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise CatalogError(f"unknown model {key!r}; {hint}`cvatkit models` lists them all")


def _parse(text: str, file: Path) -> Any:
    """The catalog's document; a key given twice in one mapping (YAML and JSON readers keep
    the last one without a word) is refused with its line."""
    if file.suffix == ".json":
        def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            keys = [k for k, _ in pairs]
            twice = next((k for k in keys if keys.count(k) > 1), None)
            if twice is not None:
                raise CatalogError(f"model catalog {file}: {twice!r} is given twice in one "
                                   "object; keep one of them")
            return dict(pairs)

        try:
            return json.loads(text, object_pairs_hook=once)
        except json.JSONDecodeError as e:
            raise CatalogError(f"model catalog {file} line {e.lineno}: {e.msg}") from None
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise CatalogError(
                        f"model catalog {file} line {key_node.start_mark.line + 1}: {key!r} "
                        f"is given twice in one mapping (first on line {seen[key]}); keep "
                        "one of them")
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise CatalogError(f"model catalog {file}{line}: not valid YAML "
                           f"({getattr(e, 'problem', e)})") from None


_FIELDS = {f.name for f in fields(ModelSpec)} - {"key", "source"}


def _entry(key: str, entry: Any, catalog: dict[str, ModelSpec], file: Path) -> ModelSpec:
    where = f"model catalog {file}, entry {key!r}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a mapping of fields")
    entry = dict(entry)
    base_key = entry.pop("base", None)
    unknown = set(entry) - _FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                           f"known: base, {', '.join(sorted(_FIELDS))}")
    for name in ("weights", "coco"):
        if entry.get(name) is None:
            continue
        w = entry[name]
        if not isinstance(w, dict) or "description" not in w:
            raise CatalogError(f"{where}: {name} needs at least a description")
        try:
            entry[name] = Weights.from_dict(w)
        except TypeError as e:
            raise CatalogError(f"{where}: {name}: {e}") from None
    if base_key is not None:
        base_key = base_key if base_key in catalog else MODEL_ALIASES.get(base_key, base_key)
        if base_key not in catalog:
            raise CatalogError(f"{where}: base {base_key!r} is not a model key")
        spec = replace(catalog[base_key], key=key, source=str(file), **entry)
    else:
        missing = {"title", "family", "backbone", "image_size", "batch_size",
                   "learning_rate", "num_steps", "advice"} - set(entry)
        if missing:
            raise CatalogError(f"{where}: needs {', '.join(sorted(missing))} (or a base)")
        spec = ModelSpec(key=key, source=str(file), **entry)
    if spec.family not in FAMILIES:
        raise CatalogError(f"{where}: family {spec.family!r} is not one of "
                           f"{', '.join(FAMILIES)}")
    for name in ("image_size", "batch_size", "num_steps"):
        if not isinstance(getattr(spec, name), int) or getattr(spec, name) < 1:
            raise CatalogError(f"{where}: {name} must be a whole number >= 1")
    if not isinstance(spec.overrides, dict) or not all(
            isinstance(k, str) and k for k in spec.overrides):
        raise CatalogError(f"{where}: overrides must be a mapping of Model Garden config "
                           "fields (dotted names) to values, e.g. task.model.min_level: 3")
    if spec.default_weights not in WEIGHT_KINDS:
        raise CatalogError(f"{where}: default_weights {spec.default_weights!r} is not one of "
                           f"{', '.join(WEIGHT_KINDS)}")
    if spec.default_weights != "none" and not spec.weights_for(spec.default_weights):
        field_name = "coco" if spec.default_weights == "coco" else "weights"
        raise CatalogError(f"{where}: default_weights is {spec.default_weights!r} but the "
                           f"entry has no {field_name} with urls; give them, or set "
                           "default_weights: none")
    return spec
