"""What to annotate next: frames ranked by the model's uncertainty, and the loop that
bench/active.py measures against a random choice (annotated frames, a pool, the picks)."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
from helpers import folded
from PIL import Image

from cvatkit import open_export
from cvatkit.cli import main
from cvatkit.cvat import write_cvat_xml
from cvatkit.inference import load_detector, rank_frames
from cvatkit.inference.ranking import FrameRank, _disagreement, _doubt, _weighted
from cvatkit.records import Frame, Shape


def box(label, x, score, size=20):
    return Shape(kind="rectangle", label=label, points=(x, 10, x + size, 10 + size),
                 score=score)


def test_doubt_peaks_at_the_threshold():
    assert _doubt(0.5, 0.5) == 1.0
    assert _doubt(0.0, 0.5) == _doubt(1.0, 0.5) == 0.0
    assert _doubt(0.25, 0.5) == pytest.approx(0.5)
    assert _doubt(0.85, 0.7) == pytest.approx(0.5)
    assert _doubt(0.04, 0.5) == 0.0  # below the floor: noise


def test_disagreement_between_a_frame_and_its_mirror_image():
    def disagreement(plain, mirror):
        return sum(_disagreement(plain, mirror, width=200, height=100).values())

    same = [box("cat", 0, 0.9), box("dog", 50, 0.6)]
    assert disagreement(same, same) == 0.0
    assert disagreement(same, same + [box("cat", 100, 0.4)]) == pytest.approx(0.4)
    assert disagreement([box("cat", 0, 0.9)], [box("cat", 0, 0.7)]) == pytest.approx(0.2)
    shifted = disagreement([box("cat", 0, 0.9)], [box("cat", 4, 0.9)])
    assert shifted == pytest.approx(1 - 16 / 24)  # IoU of boxes 4 px apart: 320 / 480
    # another label in the same place is another object: both count, each for its label
    assert _disagreement([box("cat", 0, 0.9)], [box("dog", 0, 0.8)], width=200,
                         height=100) == pytest.approx({"cat": 0.9, "dog": 0.8})
    assert disagreement([], []) == 0.0
    # boxes are compared within the frame: what sticks out of it does not count
    # (IoU 300 / 400 of the parts in the frame, 300 / 500 of the whole boxes)
    assert disagreement([box("cat", 185, 0.9)], [box("cat", 180, 0.9)]) == \
        pytest.approx(1 - 300 / 400)


def test_every_label_weighs_the_same_over_the_frames_ranked():
    """A model that doubts its squares ten times as much as its circles would pick only
    squares: weighted, the labels' totals are equal and a frame of circles can win."""
    def rank(index, **by_label):
        return FrameRank(frame=Frame(index=index, name=f"{index}.jpg", width=9, height=9),
                         uncertainty=0, doubt=0, disagreement=0, by_label=by_label)

    ranks = _weighted([rank(0, square=(6.0, 2.0)), rank(1, square=(10.0, 2.0)),
                       rank(2, circle=(1.0, 1.0)), rank(3, circle=(0.5, 0.0), square=(0, 0))])
    totals = {"square": ranks[0].uncertainty + ranks[1].uncertainty,
              "circle": ranks[2].uncertainty + ranks[3].uncertainty}
    assert totals["square"] == pytest.approx(totals["circle"]) == pytest.approx(11.25)
    assert ranks[2].uncertainty > ranks[0].uncertainty  # 2 of 2.5 circles vs 8 of 20 squares
    for r in ranks:
        assert r.uncertainty == pytest.approx(r.doubt + r.disagreement)
    assert ranks[2].doubt == pytest.approx(ranks[2].disagreement)
    assert _weighted([rank(0, square=(0.0, 0.0))])[0].uncertainty == 0.0


@pytest.fixture(scope="module")
def partial(sample_cvat, tmp_path_factory):
    """The sample task with its first 20 frames annotated and the other 20 not yet."""
    source = open_export(sample_cvat)
    try:
        frames = [f if f.index < 20 else replace(f, shapes=()) for f in source.frames()]
        dest = tmp_path_factory.mktemp("partial") / "partial.zip"
        write_cvat_xml(dest, frames, source.labels, task_name="partial",
                       images=source.read_image)
    finally:
        source.close()
    return dest


def test_frames_not_yet_annotated_are_ranked_most_uncertain_first(trained, partial):
    source = open_export(partial)
    try:
        ranking, shown = rank_frames(load_detector(trained.path), source, keep_images=3)
    finally:
        source.close()
    assert sorted(r.frame.index for r in ranking.frames) == list(range(20, 40))
    assert ranking.skipped_annotated == 20
    values = [r.uncertainty for r in ranking.frames]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    for r in ranking.frames:
        assert r.uncertainty == pytest.approx(r.doubt + r.disagreement)
        assert all(s.score >= 0.5 for s in r.frame.shapes)
    assert [p.frame.index for p in shown] == [r.frame.index for r in ranking.frames[:3]]
    assert shown[0].image.shape == (128, 160, 3)


def test_cli_rank_writes_the_ranking_and_draws_the_top(trained, partial, tmp_path, capsys):
    out, gallery = tmp_path / "rank.csv", tmp_path / "next.png"
    assert main(["rank", str(trained.path), str(partial), "--out", str(out), "--gallery",
                 str(gallery), "--top", "4"]) == 0
    printed = capsys.readouterr().out
    assert "20 frames ranked, most uncertain first (20 annotated frames left out)" in printed
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["rank"]) for r in rows] == list(range(1, 21))
    assert f"    1 {int(rows[0]['frame']):>7}" in printed
    with Image.open(gallery) as img:
        assert img.format == "PNG" and img.size[0] > 400
    # every frame when asked, annotated or not
    assert main(["rank", str(trained.path), str(partial), "--out", str(out),
                 "--include-annotated"]) == 0
    assert len(out.read_text().splitlines()) == 41
    # mistakes get messages, not tracebacks, and nothing is written
    assert main(["rank", str(trained.path), str(partial), "--top", "0"]) == 2
    assert "--top 0: give the number of frames to pick" in folded(capsys.readouterr().err)
    assert main(["rank", str(trained.path), str(partial), "--out", str(tmp_path)]) == 2
    assert main(["rank", str(trained.path), str(partial), "--tag", "next"]) == 2
    assert "give the task as cvat://TASK_ID" in folded(capsys.readouterr().err)


def test_a_pool_ranked_and_the_frames_picked_written_as_exports(trained, sample_cvat,
                                                                 tmp_path):
    """The loop bench/active.py measures, its training left out: some frames annotated
    (an export of their own), the task as a pool with only those annotations, the pool
    ranked, and the picked frames added to an export of the annotated ones."""
    from cvatkit.cvat import write_subset

    source = open_export(sample_cvat)
    original = {f.index: f for f in source.frames()}
    chosen = sorted(random.Random(3).sample(sorted(original), 10))
    annotated = write_subset(source, tmp_path / "annotated.zip", chosen)
    pool = write_subset(source, tmp_path / "pool.zip", chosen, rest_unannotated=True,
                        task_name="pool")
    got = list(open_export(annotated).frames())
    assert [f.name for f in got] == [original[i].name for i in chosen]
    assert all(f.shapes == original[f.index].shapes for f in got)
    pooled = open_export(pool)
    assert pooled.summary().name == "pool"
    pooled = {f.name: f for f in pooled.frames()}
    assert sorted(pooled) == sorted(f.name for f in original.values())
    assert sum(1 for f in pooled.values() if f.shapes) == sum(
        1 for i in chosen if original[i].shapes)
    assert all(not pooled[original[i].name].shapes for i in original if i not in chosen)

    ranking_csv = tmp_path / "ranking.csv"
    assert main(["rank", str(trained.path), str(pool), "--out", str(ranking_csv)]) == 0
    with open(ranking_csv, newline="") as f:
        ranked = [int(row["frame"]) for row in csv.DictReader(f)][:5]
    assert len(ranked) == 5 and not set(ranked) & set(chosen)  # annotated ones left out
    grown = write_subset(source, tmp_path / "ranked.zip", chosen + ranked)
    frames = list(open_export(grown).frames())
    assert sorted(f.name for f in frames) == sorted(original[i].name for i in chosen + ranked)
    assert all(f.shapes == original[f.index].shapes for f in frames)
    source.close()


class _LeftEyed:
    """A detector that finds a cat where a frame's red square is, but only when the
    square lies in the left half: on the mirror image of a frame with the square on the
    right it finds it too, on that of a frame with the square on the left it does not."""

    info = type("Info", (), {"batch_size": None})()

    def detect(self, images, *, threshold=0.5, max_detections=100, polygons=False):
        out = []
        for image in images:
            red = np.argwhere((image[..., 0] > 200) & (image[..., 2] < 50))
            if not len(red):
                out.append([])
                continue
            (y0, x0), (y1, x1) = red.min(0), red.max(0) + 1
            left = x1 <= image.shape[1] / 2
            out.append([Shape(kind="rectangle", label="cat", points=(x0, y0, x1, y1),
                              score=0.95)] if left else [])
        return out


def test_the_ranking_weighs_what_the_model_sees_in_the_mirror_image(tmp_path):
    """A frame whose object the model finds in it but not in its mirror image is the
    uncertain one: their disagreement, not the confident score, puts it first."""
    paths = []
    for name, x in (("right.png", 100), ("left.png", 10), ("middle-left.png", 40),
                    ("nothing.png", None)):
        img = Image.new("RGB", (160, 60), (0, 0, 200))
        if x is not None:
            img.paste((255, 0, 0), (x, 20, x + 20, 40))
        img.save(tmp_path / name)
        paths.append(str(tmp_path / name))
    ranking, _ = rank_frames(_LeftEyed(), paths)
    by_name = {Path(r.frame.name).name: r for r in ranking.frames}
    # on the left: found in the frame (0.95), not in its mirror: a disagreement of 0.95
    assert by_name["left.png"].disagreement > 0.5
    assert by_name["middle-left.png"].disagreement > 0.5
    # on the right: not found in the frame, found in the mirror: the same disagreement
    assert by_name["right.png"].disagreement > 0.5
    assert all(r.doubt < 0.2 for r in ranking.frames)  # each box is confident
    assert by_name["nothing.png"].disagreement == 0.0  # nothing, in either
    assert Path(ranking.frames[-1].frame.name).name == "nothing.png"
