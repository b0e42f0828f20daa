"""Pictures of frames: colours, captions that do not pile up, galleries, PNG output."""

from __future__ import annotations

import itertools

import numpy as np
from cvat_sdk.masks import encode_mask
from PIL import Image

from cvatkit.inference.drawing import (draw_frame, frame_figure, gallery_figure, label_colors,
                                       save_png)
from cvatkit.records import Shape

WIDTH, HEIGHT = 128, 96
CAT_BOX = (10.0, 20.0, 60.0, 70.0)


def _image(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.full((height, width, 3), 90, dtype=np.uint8)


def _mask(label: str, score: float) -> Shape:
    bitmap = np.zeros((HEIGHT, WIDTH), dtype=bool)
    bitmap[55:85, 75:115] = True
    bitmap[62:70, 85:100] = False  # a hole
    return Shape(kind="mask", label=label, score=score,
                 points=tuple(float(v) for v in encode_mask(bitmap)))


def _predictions() -> list[Shape]:
    return [Shape(kind="rectangle", label="cat", points=CAT_BOX, score=0.87),
            _mask("car", 0.91),
            Shape(kind="polygon", label="tree", points=(80, 5, 120, 10, 110, 40, 85, 35),
                  score=0.42)]


def _ground_truth() -> list[Shape]:
    return [Shape(kind="rectangle", label="cat", points=(6, 16, 64, 74)),
            Shape(kind="polygon", label="tree", points=(82, 6, 118, 12, 108, 38))]


def _png_pixel(fig, path, x: float, y: float, dpi: int) -> tuple[int, int, int]:
    """The saved PNG's pixel at frame coordinates (x, y) of the figure's only axes."""
    fig.canvas.draw()
    disp_x, disp_y = fig.axes[0].transData.transform((x, y)) * dpi / fig.dpi
    png = np.asarray(Image.open(path).convert("RGB"))
    return tuple(int(v) for v in png[png.shape[0] - int(disp_y) - 1, int(disp_x)])


def test_frame_png_has_size_for_dpi_and_outline_in_label_colour(tmp_path):
    colors = label_colors(["cat", "car", "tree"])
    fig = frame_figure(_image(), _predictions(), ground_truth=_ground_truth(), colors=colors,
                       title="frame 7", width_inches=6)
    out = save_png(fig, tmp_path / "new" / "folder" / "frame.png", dpi=80)

    assert out == tmp_path / "new" / "folder" / "frame.png"
    assert [p.name for p in out.parent.iterdir()] == ["frame.png"]  # no temporary left
    w_in, h_in = fig.get_size_inches()
    assert Image.open(out).size == (round(w_in * 80), round(h_in * 80))
    cat = tuple(round(c * 255) for c in colors["cat"])
    x0, y0, x1, y1 = CAT_BOX
    on_outline = _png_pixel(fig, out, x1, (y0 + y1) / 2, dpi=80)
    inside = _png_pixel(fig, out, (x0 + x1) / 2, (y0 + y1) / 2, dpi=80)
    assert max(abs(a - b) for a, b in zip(on_outline, cat)) <= 12, (on_outline, cat)
    assert inside == (90, 90, 90)  # a box is an outline, not a fill


def test_ground_truth_is_dashed_and_predictions_solid_and_captioned():
    fig = frame_figure(_image(), _predictions(), ground_truth=_ground_truth())
    ax = fig.axes[0]
    colors = label_colors(["cat", "car", "tree"])
    cat_edges = [p for p in ax.patches if p.get_edgecolor()[:3] == colors["cat"]]
    styles = [p.get_linestyle() for p in cat_edges]
    assert len(styles) == 2 and styles.count("solid") == 1  # one solid, one dashed
    assert sorted(t.get_text() for t in ax.texts) == ["car 0.91", "cat 0.87", "tree 0.42"]
    assert len(ax.images) == 2  # the frame and the translucent mask overlay
    overlay = ax.images[1].get_array()
    assert overlay[70, 80, 3] > 0 and overlay[65, 90, 3] == 0  # filled, hole left open


def test_captions_of_boxes_at_the_same_spot_do_not_overlap():
    shapes = [Shape(kind="rectangle", label=name, points=(0, 0, 50, 40), score=score)
              for name, score in (("cat", 0.9), ("dog", 0.8), ("bird", 0.7))]
    fig = frame_figure(_image(), shapes)
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [t.get_bbox_patch().get_window_extent() for t in ax.texts]
    assert len(boxes) == 3
    frame = ax.get_window_extent()
    for box in boxes:  # the captions stay on the frame
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1
        assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1
    for a, b in itertools.combinations(boxes, 2):
        overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_x <= 0.5 or overlap_y <= 0.5, (a, b)


def test_captions_read_the_same_on_small_and_large_frames():
    heights = []
    for scale in (1, 15):  # 128 px and 1920 px wide
        box = tuple(v * scale for v in CAT_BOX)
        fig = frame_figure(_image(WIDTH * scale, HEIGHT * scale),
                           [Shape(kind="rectangle", label="cat", points=box, score=0.5)])
        fig.canvas.draw()
        heights.append(fig.axes[0].texts[0].get_window_extent().height)
    assert heights[0] == heights[1]
    assert 10 <= heights[0] <= 30  # pixels at 100 dpi


def test_caption_ink_follows_background_luminance():
    fig = frame_figure(_image(), [Shape(kind="rectangle", label="dark", points=CAT_BOX,
                                        score=0.5),
                                  Shape(kind="rectangle", label="light", points=(70, 50, 120, 90),
                                        score=0.5)],
                       colors={"dark": (0.1, 0.1, 0.4), "light": (1.0, 0.9, 0.3)})
    ink = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert ink == {"dark 0.50": "white", "light 0.50": "black"}


def test_label_colors_distinct_and_stable():
    for n in (3, 25):
        names = [f"label{i}" for i in range(n)]
        colors = label_colors(names)
        assert list(colors) == names
        assert colors == label_colors(names)
        rgb = np.array(list(colors.values()))
        assert rgb.shape == (n, 3)
        assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(rgb, 2)) > 0.05


def test_gallery_grid_hides_empty_cells_and_has_one_legend(tmp_path):
    items = [(_image(), _predictions(), _ground_truth(), f"frame {i}") for i in range(5)]
    fig = gallery_figure(items, columns=4, tile_inches=2.0)
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert len(fig.axes) == 8 and len(rows) == 2
    assert sum(not ax.get_visible() for ax in fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        f"frame {i}" for i in range(5)]
    assert len(fig.legends) == 1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["cat", "car", "tree", "prediction", "ground truth"]
    out = save_png(fig, tmp_path / "gallery.png")
    assert Image.open(out).size == (800, round(fig.get_size_inches()[1] * 100))


def test_draw_frame_on_a_callers_axes_in_pixel_coordinates():
    from matplotlib.figure import Figure

    ax = Figure(figsize=(4, 3)).add_subplot()
    draw_frame(ax, _image(), _predictions(), show_scores=False)
    assert ax.get_xlim() == (0, WIDTH) and ax.get_ylim() == (HEIGHT, 0)
    assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0
    assert sorted(t.get_text() for t in ax.texts) == ["car", "cat", "tree"]
