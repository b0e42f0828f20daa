"""A ``cvat_sdk.auto_annotation`` detection function around a cvatkit detector.

``cvatkit annotate`` runs it through ``annotate_task``; cvat-cli runs it from the module
``cvatkit.cvat_function``::

    cvat-cli --server-host https://cvat.example.com task auto-annotate 42 \\
        --function-module cvatkit.cvat_function -p model=str:s3://models/team/models/KEY/VERSION \\
        -p threshold=float:0.5

(CVAT's server-side "native functions" are a CVAT Enterprise/Cloud feature; on CVAT
Community, pre-annotation runs from the client like this.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from ..cvat import shape_to_cvat
from ..errors import CvatkitError, UsageError
from ..inference import Detector, check_threshold, load_detector
from ..records import Frame
from .matching import LabelMatch
from .shapes import shape_kind, task_shapes

SHAPE_CHOICES = ("auto", "rectangle", "polygon", "mask")


class DetectorFunction:
    """Detections of one frame as CVAT shapes, labelled and shaped for the task.

    ``mapping`` renames model labels to task labels (and drops those mapped to nothing);
    ``kinds`` gives the shape to output per task label (rectangle, polygon or mask; for
    the labels it leaves out, what ``shape_kind`` gives a label of any shape).
    ``existing`` holds, per frame name, the keys (``shape_key``) of shapes already on the
    task: predictions equal to one of them are not returned again, so running twice
    writes nothing twice. Frames named in ``skip`` get no prediction (the model is not
    run on them).
    """

    def __init__(self, detector: Detector, *, mapping: LabelMatch | None = None,
                 kinds: Mapping[str, str] | None = None, threshold: float = 0.5,
                 max_detections: int = 100,
                 existing: Mapping[str, set[tuple]] | None = None,
                 skip: Mapping[str, str] | None = None) -> None:
        import cvat_sdk.auto_annotation as cvataa

        check_threshold(threshold)
        self.detector = detector
        self.threshold = threshold
        self.max_detections = max_detections
        names = detector.labels.names
        self._target = {n: (mapping.target(n) if mapping else n) for n in names}
        targets = list(dict.fromkeys(t for t in self._target.values() if t is not None))
        self._ids = {t: i for i, t in enumerate(targets, start=1)}
        self._kinds = dict(kinds or {})
        self._existing = existing or {}
        self._skip = skip or {}
        self.counts: Counter[str] = Counter()
        """Shapes returned per task label, plus ``shapes.EXISTING``/``DROPPED``."""
        self.spec = cvataa.DetectionFunctionSpec(labels=[
            cvataa.label_spec(t, self._ids[t], type=self._kinds.get(t, "any"))
            for t in targets])

    def detect(self, context, image) -> list:
        if context.frame_name in self._skip:
            return []
        threshold = context.conf_threshold
        threshold = self.threshold if threshold is None else threshold
        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        shapes = self.detector.detect([pixels], threshold=threshold,
                                      max_detections=self.max_detections)[0]
        frame = Frame(index=0, name=context.frame_name, width=width, height=height,
                      shapes=tuple(shapes))
        has_masks, as_polygons = self.detector.info.has_masks, context.conv_mask_to_poly
        new = task_shapes(frame, self._target.get,
                          lambda t: shape_kind(self._kinds.get(t, "any"), has_masks,
                                               masks_as_polygons=as_polygons),
                          self._existing.get(context.frame_name, set()), self.counts)
        return [shape_to_cvat(s, self._ids[s.label]) for s in new]


def create(model: str, labels: str = "", threshold: float = 0.5, max_detections: int = 100,
           shape: str = "auto") -> DetectorFunction:
    """What ``cvat-cli task auto-annotate --function-module cvatkit.cvat_function`` calls
    with its ``-p name=type:value`` parameters."""
    try:
        if shape not in SHAPE_CHOICES:
            raise UsageError(f"shape={shape!r}: choose one of {', '.join(SHAPE_CHOICES)}")
        detector = load_detector(model, labels=labels or None)
        kinds = {} if shape == "auto" else {n: shape for n in detector.labels.names}
        return DetectorFunction(detector, kinds=kinds, threshold=threshold,
                                max_detections=max_detections)
    except CvatkitError as e:
        raise _for_cvat_cli(e) from None


def _for_cvat_cli(error: CvatkitError) -> Exception:
    """``error`` as cvat-cli reports a mistake (its message, no traceback) when cvat-cli
    is what loaded this module; else as it is."""
    try:
        from cvat_cli._internal.common import CriticalError
    except ImportError:
        return error
    return CriticalError(f"cvatkit: {error}")
