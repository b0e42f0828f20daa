"""The module cvat-cli loads: ``--function-module cvatkit.cvat_function``.

cvat-cli calls ``create(**parameters)`` with its ``-p name=type:value`` parameters; the
function itself lives in ``cvatkit.annotate``.
"""

from .annotate.function import SHAPE_CHOICES, DetectorFunction, create

__all__ = ["SHAPE_CHOICES", "DetectorFunction", "create"]
