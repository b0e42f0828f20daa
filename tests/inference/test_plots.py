"""Charts of a task and of an evaluation: their numbers are the task's and the
evaluation's own (read from the figures' artists, not from pixels)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.lines import Line2D
from PIL import Image

from cvatkit import open_export
from cvatkit.dataset import check_frames
from cvatkit.errors import UsageError
from cvatkit.inference import (RECALL_POINTS, SMALL, Prediction, annotated_frames_figure,
                               box_sizes, confusion_figure, evaluate, labels_figure,
                               pr_curves_figure, review, save_evaluation_plots, sizes_figure)
from cvatkit.records import Frame, Shape

UNSEEN = "unseen"
"""A label of the model that the task never annotates."""


@pytest.fixture(scope="module")
def task(sample_cvat):
    """The sample task's checked frames and report."""
    source = open_export(sample_cvat)
    try:
        return check_frames(source)
    finally:
        source.close()


def _predictions(frames, seed=0):
    """Predictions made up from the annotations: boxes moved a little, some labelled
    wrong, some left out, some false, with scores that do not sort them by quality."""
    rng = np.random.default_rng(seed)
    labels = sorted({s.label for f in frames for s in f.shapes})
    out = []
    for f in frames:
        shapes = []
        for s in f.shapes:
            if rng.random() < 0.15:
                continue  # missed
            x0, y0, x1, y1 = np.asarray(s.bbox()) + rng.normal(0, 2.5, 4)
            label = s.label if rng.random() < 0.85 else labels[int(rng.integers(len(labels)))]
            shapes.append(Shape(kind="rectangle", label=label, points=(x0, y0, x1, y1),
                                score=float(rng.uniform(0.05, 1))))
        if rng.random() < 0.4:
            shapes.append(Shape(kind="rectangle", label=labels[int(rng.integers(len(labels)))],
                                points=(2.0, 2.0, 30.0, 30.0), score=float(rng.uniform(0, 1))))
        out.append(Prediction(frame=replace(f, shapes=tuple(shapes)), ground_truth=f.shapes))
    return out


def test_each_pr_curve_is_the_evaluation_that_gives_ap50(task):
    frames, report = task
    ev = evaluate(_predictions(frames), [*report.labels, UNSEEN], threshold=0.5)
    assert len(RECALL_POINTS) == 101 and RECALL_POINTS[0] == 0 and RECALL_POINTS[-1] == 1
    assert set(ev.pr_curves) == {*report.labels, UNSEEN}
    assert ev.pr_curves[UNSEEN] == ()  # no annotated object: no curve, as no AP
    aps = []
    for c in ev.per_class:
        if c.label == UNSEEN:
            assert c.ap50 == -1
            continue
        curve = np.asarray(ev.pr_curves[c.label])
        assert curve.shape == (101,)
        defined = curve[curve > -1]
        assert defined.mean() == pytest.approx(c.ap50, abs=1e-6)
        aps.append(c.ap50)
    assert 0.2 < min(aps) and max(aps) < 0.95  # curves with something to show

    fig = pr_curves_figure(ev)
    (ax,) = fig.axes
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 101]
    assert [ln.get_label() for ln in lines] == [
        f"{c.label}  AP@0.5 {c.ap50:.3f}" for c in ev.per_class if c.label != UNSEEN]
    for ln, name in zip(lines, report.labels):
        assert np.allclose(ln.get_ydata(), ev.pr_curves[name])
        assert np.allclose(ln.get_xdata(), RECALL_POINTS)
    dots = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    first = ev.per_class[0]
    assert (dots[0].get_xdata()[0], dots[0].get_ydata()[0]) == pytest.approx(
        (first.found / first.annotated, first.found / (first.found + first.false)))
    assert "no annotated objects: unseen" in [t.get_text() for t in fig.texts]

    data = json.loads(json.dumps(ev.to_dict()))
    assert data["pr_recall"] == pytest.approx(list(RECALL_POINTS))
    assert data["pr_curves"][UNSEEN] == []
    for name in report.labels:
        assert data["pr_curves"][name] == pytest.approx(ev.pr_curves[name], abs=1e-4)


def test_without_boxes_the_curves_are_flat_and_without_annotations_there_are_none():
    frame = Frame(index=0, name="f.jpg", width=100, height=100)
    cat = Shape(kind="rectangle", label="cat", points=(10, 10, 40, 40))
    nothing_found = evaluate([Prediction(frame=frame, ground_truth=(cat,))], ["cat", "dog"])
    assert nothing_found.pr_curves == {"cat": (0.0,) * 101, "dog": ()}
    assert nothing_found.per_class[0].ap50 == 0

    guess = replace(cat, score=0.9)
    unannotated = evaluate([Prediction(frame=replace(frame, shapes=(guess,)))], ["cat"])
    assert unannotated.ap == -1 and unannotated.pr_curves == {}
    (ax,) = pr_curves_figure(unannotated).axes
    assert [t.get_text() for t in ax.texts] == [
        "no annotated objects: no precision-recall curves"]
    assert ax.get_legend() is None


def _review():
    def box(label, x, score=None):
        return Shape(kind="rectangle", label=label, points=(x, 10, x + 20, 30), score=score)

    truth = [box("cat", 0), box("dog", 40), box("cat", 80), box("dog", 120), box("cat", 160)]
    preds = [box("cat", 1, 0.9), box("cat", 40, 0.7), box("cat", 90, 0.6),
             box("dog", 100, 0.55), box("dog", 160, 0.3)]
    frame = Frame(index=0, name="f.jpg", width=200, height=100, shapes=tuple(preds))
    return review([Prediction(frame=frame, ground_truth=tuple(truth))], ["cat", "dog"],
                  threshold=0.5)


def test_the_confusion_picture_shows_the_matrix_and_names_its_edges():
    r = _review()
    assert r.confusion.sum() > 0 and (r.confusion[:-1, -1] > 0).any()
    fig = confusion_figure(r)
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    n = len(r.labels) + 1
    expected = {(i, j): str(r.confusion[i, j]) for i in range(n) for j in range(n)
                if (i, j) != (n - 1, n - 1)}  # a false box is never missed
    assert cells == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "false"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "missed"]
    assert ax.get_ylabel() == "annotated" and ax.get_xlabel() == "predicted"
    assert np.array_equal(ax.images[0].get_array(), r.confusion)


def test_evaluation_plots_are_written_as_pngs_and_a_file_is_refused(task, tmp_path):
    frames, report = task
    predictions = _predictions(frames[:10], seed=1)
    ev = evaluate(predictions, report.labels)
    r = review(predictions, report.labels)
    out = tmp_path / "new" / "plots"
    written = save_evaluation_plots(ev, r, out)
    assert written == [out / "pr_curves.png", out / "confusion.png"]
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "pr_curves.png"]
    for path in written:
        with Image.open(path) as img:
            img.verify()
            assert img.format == "PNG"
    again = save_evaluation_plots(ev, r, out)  # a folder that is there is written into
    assert again == written

    blocker = tmp_path / "plots.txt"
    blocker.write_text("keep me")
    with pytest.raises(UsageError, match=f"{blocker} is a file; give a folder"):
        save_evaluation_plots(ev, r, blocker)
    assert blocker.read_text() == "keep me"


def test_the_label_chart_counts_the_tasks_shapes(sample_cvat, task):
    frames, report = task
    source = open_export(sample_cvat)
    try:
        held = Counter(s.label for f in source.frames() for s in f.shapes)
    finally:
        source.close()
    counts = {n: report.shapes_per_label[n] for n in report.labels}
    assert counts == {n: held[n] for n in report.labels}
    (ax,) = labels_figure({**counts, "empty": 0}).axes
    assert [p.get_width() for p in ax.patches] == [*counts.values(), 0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [*counts, "empty"]
    assert ax.get_yticklabels()[-1].get_color() == "#b00020"  # nothing to learn from
    assert [t.get_text() for t in ax.texts if t.get_text()] == [
        str(v) for v in counts.values()] + ["0"]


def test_the_size_histogram_counts_every_shape_and_the_small_ones(task):
    frames, _ = task
    sizes = box_sizes(frames)
    assert len(sizes) == sum(len(f.shapes) for f in frames)
    clipped = Frame(index=0, name="f.jpg", width=50, height=50, shapes=(
        Shape(kind="rectangle", label="a", points=(40, 10, 60, 30)),        # 10 x 20 inside
        Shape(kind="polygon", label="a", points=(0, 0, 8, 0, 0, 8))))       # area 32
    assert box_sizes([clipped]) == pytest.approx([math.sqrt(200), math.sqrt(32)])

    fig = sizes_figure(sizes)
    (ax,) = fig.axes
    (bars,) = ax.containers
    assert sum(p.get_height() for p in bars) == len(sizes)
    small = sum(s < SMALL for s in sizes)
    assert 0 < small < len(sizes)  # the sample has both
    assert ax.get_title() == (f"object sizes: {small} of {len(sizes)} small "
                              f"({100 * small / len(sizes):.0f}%)")
    assert SMALL in [ln.get_xdata()[0] for ln in ax.get_lines()]
    (empty,) = sizes_figure([]).axes
    assert [t.get_text() for t in empty.texts] == ["no shapes"]


def test_the_frame_grid_draws_each_frames_annotations(sample_cvat, task):
    frames, report = task
    shown = frames[:5]
    source = open_export(sample_cvat)
    try:
        fig = annotated_frames_figure(source, shown, columns=4)
    finally:
        source.close()
    tiles = [ax for ax in fig.axes if ax.get_visible()]
    assert len(tiles) == 5 and len(fig.axes) == 8
    for ax, frame in zip(tiles, shown):
        n = len(frame.shapes)
        assert ax.get_title() == f"{frame.name}: {n} shape{'' if n == 1 else 's'}"
        assert len(ax.patches) == 2 * n  # each annotation: white under coloured dashes
        assert ax.images[0].get_array().shape[:2] == (frame.height, frame.width)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-1] == "ground truth" and "prediction" not in legend
    assert isinstance(fig.legends[0].legend_handles[0], Line2D)
