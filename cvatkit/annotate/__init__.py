"""The annotation stage: a detector's predictions made into a task's shapes and written
to a CVAT server (cvat-sdk's ``annotate_task``, or cvat-cli with the same function) or
into an annotations file CVAT uploads."""

from ..frame_choices import FRAME_CHOICES, FRAMES_HELP
from .driver import (AnnotateResult, annotate_export, annotate_project, annotate_task,
                     output_kinds)
from .function import DetectorFunction, create
from .matching import LabelMatch, match_labels, parse_label_pairs
from .shapes import shape_key, shape_kind, task_shapes

__all__ = ["AnnotateResult", "DetectorFunction", "FRAMES_HELP", "FRAME_CHOICES",
           "LabelMatch", "annotate_export", "annotate_project", "annotate_task", "create",
           "match_labels", "output_kinds", "parse_label_pairs", "shape_key", "shape_kind",
           "task_shapes"]
