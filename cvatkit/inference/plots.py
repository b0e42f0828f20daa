"""Charts of what a task holds and of how a model does on it.

What a task holds, at a glance: shapes per label (``labels_figure``), object sizes against
COCO's "small" mark (``box_sizes``, ``sizes_figure``) and the first frames with their
annotations (``annotated_frames_figure``). How a model does: precision-recall curves per
label (``pr_curves_figure``), the confusion matrix of a review (``confusion_figure``), and
both as PNG files (``save_evaluation_plots``).

Figures are built on an Agg canvas, never pyplot, as in ``drawing``; colours are
``label_colors``, so a label has the same colour in every picture.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..cvat import Source
from ..errors import UsageError
from ..geometry import shape_area
from ..records import Frame
from .drawing import Color, gallery_figure, label_colors, save_png
from .evaluation import RECALL_POINTS, Evaluation
from .predictions import frame_pixels
from .disagreements import Review

SMALL = 32.0
"""COCO's small objects: under 32 x 32 pixels of area. Detectors find them worst."""
LARGE = 96.0
"""COCO's large objects: over 96 x 96 pixels of area."""
PR_CURVES_PNG = "pr_curves.png"
CONFUSION_PNG = "confusion.png"
FALSE_ROW = "false"
"""The confusion matrix's last row in the picture: predictions on no annotated object."""
MISSED_COLUMN = "missed"
"""The confusion matrix's last column in the picture: annotated objects nothing found."""


# -- what a task holds ---------------------------------------------------------------------

def box_sizes(frames: Iterable[Frame]) -> list[float]:
    """The size of every shape of ``frames`` in pixels: the square root of the area COCO
    counts for it (the box clipped to the frame; a polygon's or a mask's own area), so that
    under ``SMALL`` is what COCO calls small."""
    return [math.sqrt(max(shape_area(s, f.width, f.height), 0.0))
            for f in frames for s in f.shapes]


def labels_figure(shapes_per_label: Mapping[str, int], *,
                  colors: Mapping[str, Color] | None = None) -> Figure:
    """Shapes per label as horizontal bars, in the mapping's order, each with its count;
    a label without shapes is named in red (the model cannot learn it)."""
    names = list(shapes_per_label)
    counts = [int(shapes_per_label[n]) for n in names]
    palette = {**label_colors(names), **(colors or {})}
    fig = _figure(6.0, 1.2 + 0.32 * max(len(names), 1))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(names)), counts, color=[palette[n] for n in names])
    ax.bar_label(bars, labels=[str(c) for c in counts], padding=3, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for tick, count in zip(ax.get_yticklabels(), counts):
        if not count:
            tick.set_color("#b00020")
    ax.invert_yaxis()  # the first label on top
    ax.set_xlim(0, max(counts, default=0) * 1.15 or 1)
    ax.set_xlabel("shapes")
    ax.set_title(f"shapes per label ({sum(counts)} in all)", fontsize=10)
    if not names:
        ax.text(0.5, 0.5, "no labels", ha="center", va="center", transform=ax.transAxes)
    return fig


def sizes_figure(sizes: Sequence[float], *, bins: int = 30) -> Figure:
    """A histogram of object sizes (``box_sizes``) on a log scale, the sizes COCO calls
    small shaded, with how many there are."""
    values = np.asarray([s for s in sizes if s > 0], dtype=float)
    fig = _figure(6.0, 3.0)
    ax = fig.add_subplot()
    ax.set_xlabel("size: √area (pixels)")
    ax.set_ylabel("shapes")
    if not values.size:
        ax.set_title("object sizes", fontsize=10)
        ax.text(0.5, 0.5, "no shapes", ha="center", va="center", transform=ax.transAxes)
        return fig
    low, high = values.min(), values.max()
    low, high = min(low, SMALL) / 1.2, max(high, SMALL) * 1.2
    edges = np.geomspace(low, high, bins + 1)
    ax.hist(values, bins=edges, color="0.45")
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ticks = [2.0 ** k for k in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)
             if low <= 2.0 ** k <= high]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvspan(low, SMALL, color="#b00020", alpha=0.08, lw=0)
    ax.axvline(SMALL, color="#b00020", lw=1, ls="--")
    if high > LARGE:
        ax.axvline(LARGE, color="0.5", lw=1, ls=":")
    small = int((values < SMALL).sum())
    ax.text(SMALL, 0.97, f" small (< {SMALL:g} px): {small}", color="#b00020", fontsize=8,
            ha="left", va="top", transform=ax.get_xaxis_transform())
    ax.set_title(f"object sizes: {small} of {values.size} small "
                 f"({100 * small / values.size:.0f}%)", fontsize=10)
    return fig


def annotated_frames_figure(source: Source, frames: Sequence[Frame], *, columns: int = 4,
                            colors: Mapping[str, Color] | None = None) -> Figure:
    """``frames`` of ``source`` with their shapes (dashed outlines in their label's
    colour), in a grid ``columns`` wide; reads and decodes each frame's image."""
    items = []
    for frame in frames:
        image = frame_pixels(source, frame)
        count = len(frame.shapes)
        items.append((image, (), frame.shapes,
                      f"{Path(frame.name).name}: {count} shape{'' if count == 1 else 's'}"))
    return gallery_figure(items, colors=colors, columns=max(1, min(columns, len(items))))


# -- how a model does ----------------------------------------------------------------------

def pr_curves_figure(evaluation: Evaluation, *,
                     colors: Mapping[str, Color] | None = None) -> Figure:
    """Precision against recall at IoU 0.5, a curve per label (``Evaluation.pr_curves``),
    with each label's AP@0.5 and a dot where the evaluation's threshold puts it."""
    names = [c.label for c in evaluation.per_class]
    palette = {**label_colors(names), **(colors or {})}
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot()
    recall = np.asarray(RECALL_POINTS)
    drawn, unannotated = 0, []
    for c in evaluation.per_class:
        curve = np.asarray(evaluation.pr_curves.get(c.label, ()), dtype=float)
        if not curve.size:
            unannotated.append(c.label)
            continue
        color = palette[c.label]
        ax.plot(recall, np.where(curve > -1, curve, np.nan), color=color, lw=1.8,
                label=f"{c.label}  AP@0.5 {c.ap50:.3f}")
        if c.annotated and c.found + c.false:
            ax.plot(c.found / c.annotated, c.found / (c.found + c.false), "o", color=color,
                    markeredgecolor="white", zorder=3)
        drawn += 1
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.set_title(f"precision-recall at IoU 0.5, {evaluation.frames} frames "
                 f"(dots: score ≥ {evaluation.threshold:g})", fontsize=10)
    if drawn:
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no annotated objects: no precision-recall curves",
                ha="center", va="center", transform=ax.transAxes)
    if drawn and unannotated:
        fig.text(0.01, 0.005, "no annotated objects: " + ", ".join(unannotated), fontsize=7,
                 color="0.4", ha="left", va="bottom")
    return fig


def confusion_figure(review: Review) -> Figure:
    """The review's confusion matrix with its counts: rows the annotated label, columns
    the predicted one; the last row counts the false boxes (a prediction on no annotated
    object), the last column the missed objects."""
    matrix = np.asarray(review.confusion)
    rows = [*review.labels, FALSE_ROW]
    columns = [*review.labels, MISSED_COLUMN]
    side = 2.2 + 0.5 * len(rows)
    fig = _figure(side + 0.8, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
    dark = 0.5 * max(int(matrix.max()), 1)
    font = 9 if len(rows) <= 12 else 7
    for (i, j), count in np.ndenumerate(matrix):
        if i == len(rows) - 1 and j == len(columns) - 1:
            continue  # a false box is never missed: nothing to count
        ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=font,
                color="white" if count > dark else ("0.6" if count == 0 else "black"))
    ax.set_xticks(range(len(columns)), columns, rotation=45 if len(columns) > 4 else 0,
                  ha="right" if len(columns) > 4 else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for tick in (ax.get_xticklabels()[-1], ax.get_yticklabels()[-1]):
        tick.set_fontstyle("italic")
    ax.set_xlabel("predicted")
    ax.set_ylabel("annotated")
    ax.set_title(f"confusion at score ≥ {review.threshold:g}", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def save_evaluation_plots(evaluation: Evaluation, review: Review,
                          out_dir: str | os.PathLike[str], *, dpi: int = 100) -> list[Path]:
    """Write ``pr_curves.png`` and ``confusion.png`` into ``out_dir`` (created if need
    be; each file whole or not at all) and return their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the plots ({PR_CURVES_PNG} "
                         f"and {CONFUSION_PNG} are written into it)")
    return [save_png(pr_curves_figure(evaluation), out / PR_CURVES_PNG, dpi=dpi),
            save_png(confusion_figure(review), out / CONFUSION_PNG, dpi=dpi)]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig
