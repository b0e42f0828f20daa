"""Pictures of frames and their shapes: predictions solid and captioned, ground truth dashed.

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, never pyplot, so
drawing opens no window and works the same in threads, scripts and notebooks. Shapes are
drawn in the frame's pixel coordinates (origin upper-left), as CVAT stores them.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon

from ..files import written_aside
from ..geometry import mask_bitmap
from ..records import Shape

Color = tuple[float, float, float]
GalleryItem = tuple[np.ndarray, Sequence[Shape], Sequence[Shape], str]

MASK_ALPHA = 0.4
POLYGON_FILL_ALPHA = 0.15
GT_DASHES = (0, (4, 3))
_CHAR_EM = 0.62      # mean advance of a caption character, in ems (DejaVu Sans digits: 0.64)
_LINE_EM = 1.25      # caption line height, in ems
_PAD_EM = 0.25       # caption background margin around its text, in ems


def label_colors(names: Sequence[str]) -> dict[str, Color]:
    """A distinct RGB colour (0..1 floats) per label, stable for a given label order:
    tab10 up to 10 labels; up to 20, tab20's strong colours then its light ones (never a
    light and a strong shade of one hue for neighbouring labels); then golden-ratio steps
    around the hue circle."""
    names = list(dict.fromkeys(names))
    if len(names) <= 10:
        table = colormaps["tab10"].colors
    else:
        pairs = colormaps["tab20"].colors
        table = [*pairs[0::2], *pairs[1::2]]
    out: dict[str, Color] = {}
    for i, name in enumerate(names):
        if i < len(table):
            out[name] = tuple(float(c) for c in table[i][:3])
        else:
            k = i - len(table)
            hue = (0.07 + k * 0.618034) % 1.0
            out[name] = colorsys.hsv_to_rgb(hue, 0.75, (0.95, 0.7, 0.85)[k % 3])
    return out


def draw_frame(ax: Axes, image: np.ndarray, predictions: Sequence[Shape] = (), *,
               ground_truth: Sequence[Shape] = (), colors: Mapping[str, Color] | None = None,
               title: str | None = None, show_scores: bool = True) -> None:
    """Draw ``image`` (H, W[, 3|4]) on ``ax`` in pixel coordinates with its shapes.

    Predictions get a solid outline in their label's colour and a "label 0.87" caption;
    masks a translucent fill, polygons a light one. Ground truth gets a dashed
    white/colour outline and no caption. Captions that would overlap an earlier one move
    inside the box or below it. Labels missing from ``colors`` get colours of their own."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    palette = _complete_colors(colors, [*predictions, *ground_truth])
    ax.imshow(image, extent=(0, width, height, 0), interpolation="nearest",
              cmap="gray" if image.ndim == 2 else None, zorder=0)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    px_in = _inches_per_pixel(ax, width, height)
    font = _font_points(width * px_in, height * px_in)
    lw = max(1.0, min(2.5, font / 5))
    if title:
        ax.set_title(title, fontsize=font, pad=font / 2)

    overlay = np.zeros((height, width, 4))
    for shape in ground_truth:
        _outline(ax, shape, palette[shape.label], lw, dashed=True, zorder=2)
    for shape in predictions:
        color = palette[shape.label]
        if shape.kind == "mask":
            overlay[mask_bitmap(shape, width, height)] = (*color, MASK_ALPHA)
        _outline(ax, shape, color, lw, dashed=False, zorder=3)
    if overlay[..., 3].any():
        ax.imshow(overlay, extent=(0, width, height, 0), interpolation="nearest", zorder=1)

    em = font / 72 / px_in  # one em of the caption font, in frame pixels
    placed: list[tuple[float, float, float, float]] = []
    ranked = sorted(predictions, key=lambda s: -s.confidence)
    for shape in ranked:
        text = shape.label
        if show_scores and shape.score is not None:
            text += f" {shape.score:.2f}"
        size = (len(text) * _CHAR_EM + 2 * _PAD_EM) * em, (_LINE_EM + 2 * _PAD_EM) * em
        x, y, w, h = _place_caption(shape.bbox(), size, placed, width, height)
        placed.append((x, y, w, h))
        color = palette[shape.label]
        ax.text(x + _PAD_EM * em, y + _PAD_EM * em, text, fontsize=font, ha="left", va="top",
                color=_ink_on(color), clip_on=True, zorder=4,
                bbox=dict(boxstyle=f"square,pad={_PAD_EM}", facecolor=color, edgecolor="none",
                          alpha=0.9))


def frame_figure(image: np.ndarray, predictions: Sequence[Shape] = (), *,
                 ground_truth: Sequence[Shape] = (), colors: Mapping[str, Color] | None = None,
                 title: str | None = None, width_inches: float = 6) -> Figure:
    """One frame as a figure ``width_inches`` wide, its height following the frame's."""
    height, width = np.asarray(image).shape[:2]
    image_h = width_inches * height / width
    title_h = 0.35 if title else 0.0
    fig = Figure(figsize=(width_inches, image_h + title_h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, image_h / (image_h + title_h)))
    draw_frame(ax, image, predictions, ground_truth=ground_truth, colors=colors, title=title)
    return fig


def gallery_figure(items: Sequence[GalleryItem], *,
                   colors: Mapping[str, Color] | None = None, columns: int = 4,
                   tile_inches: float = 3.0) -> Figure:
    """Frames (image, predictions, ground truth, title) in a grid ``columns`` wide, with one
    legend for the whole figure (label colours, and the outlines of the kinds of shape
    drawn: prediction, ground truth); cells past the last frame are hidden."""
    shapes = [s for _, preds, gts, _ in items for s in (*preds, *gts)]
    palette = _complete_colors(colors, shapes)
    cols = max(1, min(columns, len(items)))
    rows = max(1, math.ceil(len(items) / cols))
    aspect = max((np.asarray(img).shape[0] / np.asarray(img).shape[1]
                  for img, *_ in items), default=0.75)
    tile_h = tile_inches * min(max(aspect, 0.5), 1.5)
    title_h, legend_h = 0.3, 0.45
    fig_w, fig_h = cols * tile_inches, rows * (tile_h + title_h) + legend_h
    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(
        left=0.01, right=0.99, top=1 - title_h / fig_h, bottom=legend_h / fig_h,
        hspace=title_h / tile_h, wspace=0.04))
    for ax, item in zip(axes.flat, items):
        image, preds, gts, title = item
        draw_frame(ax, image, preds, ground_truth=gts, colors=palette, title=title)
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    if not items:
        fig.text(0.5, 0.5, "no frames to show", ha="center", va="center")
    used = [name for name in palette if any(s.label == name for s in shapes)]
    handles = [Line2D([], [], color=palette[n], lw=6, label=n) for n in used]
    if any(preds for _, preds, _, _ in items):
        handles.append(Line2D([], [], color="0.3", lw=1.5, label="prediction"))
    if any(gts for _, _, gts, _ in items):
        handles.append(Line2D([], [], color="0.3", lw=1.5, ls=GT_DASHES,
                              label="ground truth"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 2 * cols),
                   frameon=False, fontsize=8, handlelength=2.2)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``path``, whole or not at all (written aside, then
    renamed), creating the folder."""
    with written_aside(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def _complete_colors(colors: Mapping[str, Color] | None,
                     shapes: Sequence[Shape]) -> dict[str, Color]:
    """``colors`` plus stable colours for labels it lacks, continuing its sequence."""
    given = dict(colors or {})
    missing = [s.label for s in shapes if s.label not in given]
    if not missing:
        return given
    extended = label_colors([*given, *missing])
    return {**extended, **given}


def _inches_per_pixel(ax: Axes, width: int, height: int) -> float:
    """How many inches one frame pixel takes on the figure (the image is letterboxed)."""
    box = ax.get_position()
    fig_w, fig_h = ax.get_figure().get_size_inches()
    return min(box.width * fig_w / width, box.height * fig_h / height)


def _font_points(shown_w: float, shown_h: float) -> float:
    """Caption size for a frame shown ``shown_w`` x ``shown_h`` inches: 7 pt on a 3 inch
    tile, 10 pt at 6 inches, 6..12 pt whatever the frame's pixel size."""
    return max(6.0, min(12.0, 4.0 + max(shown_w, shown_h)))


def _ink_on(color: Color) -> str:
    r, g, b = color[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _outline(ax: Axes, shape: Shape, color: Color, lw: float, *, dashed: bool,
             zorder: int) -> None:
    if shape.kind == "polygon":
        xy = np.reshape(shape.points, (-1, 2))
    else:
        xy = _box_corners(shape)
    if dashed:  # white under colour dashes: visible on any background, unlike any fill
        ax.add_patch(Polygon(xy, closed=True, fill=False, edgecolor="white", lw=lw,
                             zorder=zorder))
        ax.add_patch(Polygon(xy, closed=True, fill=False, edgecolor=color, lw=lw,
                             ls=GT_DASHES, zorder=zorder))
        return
    fill = shape.kind == "polygon"
    ax.add_patch(Polygon(xy, closed=True, lw=lw, edgecolor=color, fill=fill,
                         facecolor=(*color, POLYGON_FILL_ALPHA) if fill else "none",
                         zorder=zorder))


def _box_corners(shape: Shape) -> np.ndarray:
    """The rectangle's (rotated) corners, or the mask's box."""
    if shape.kind == "mask":
        x0, y0, x1, y1 = shape.bbox()
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)
    x0, y0, x1, y1 = shape.points
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)
    if not shape.rotation:
        return corners
    a = math.radians(shape.rotation)
    centre = corners.mean(axis=0)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (corners - centre) @ turn.T + centre


def _place_caption(box: tuple[float, float, float, float], size: tuple[float, float],
                   placed: Sequence[tuple[float, float, float, float]],
                   width: int, height: int) -> tuple[float, float, float, float]:
    """Greedy spot (x, y, w, h) for a caption: above the box's top-left corner, else inside
    it, else stacked down the box, else below it; always inside the frame. Takes the first
    spot clear of ``placed``, or the least overlapping one when none is clear."""
    x0, y0, x1, y1 = box
    w, h = size
    x = min(max(x0, 0.0), max(width - w, 0.0))
    ys = [y0 - h, y0]
    ys += [y0 + k * h for k in range(1, max(0, int((y1 - y0) / h)))]
    ys += [y1 + k * h for k in range(0, max(1, int((height - y1) / h)))]
    ys += [y0 - k * h for k in range(2, max(2, int(y0 / h) + 1))]
    best, best_overlap = None, math.inf
    for y in ys:
        y = min(max(y, 0.0), max(height - h, 0.0))
        spot = (x, y, w, h)
        overlap = sum(_overlap(spot, other) for other in placed)
        if overlap == 0:
            return spot
        if overlap < best_overlap:
            best, best_overlap = spot, overlap
    return best if best is not None else (x, y0, w, h)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    dx = min(ax + aw, bx + bw) - max(ax, bx)
    dy = min(ay + ah, by + bh) - max(ay, by)
    return dx * dy if dx > 0 and dy > 0 else 0.0
