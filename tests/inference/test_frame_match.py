"""One frame's predictions matched to its annotations: best score first, one annotation
per prediction, IoU of the boxes clipped to the frame, same label."""

from __future__ import annotations

import numpy as np
import pytest

from cvatkit.inference import FrameMatch, Prediction, match_frame, picture_title
from cvatkit.inference.frame_match import claim, match_prediction
from cvatkit.records import Frame, Shape


def box(label, x, y=10, size=20, score=None):
    return Shape(kind="rectangle", label=label, points=(x, y, x + size, y + size), score=score)


def match(predictions, annotations, iou=0.5) -> FrameMatch:
    return match_frame(predictions, annotations, width=200, height=100, iou=iou)


def test_the_best_score_takes_an_annotation_first():
    cat = box("cat", 0)
    weak, strong = box("cat", 2, score=0.6), box("cat", 4, score=0.9)
    m = match([weak, strong], [cat])
    # the stronger box takes the cat although the weaker one overlaps it more
    assert m.predictions == (strong, weak)
    assert m.matched == (0, None)
    assert m.found == (True,)
    assert m.matched_ious == (pytest.approx(16 * 20 / (2 * 400 - 16 * 20)), 0.0)
    assert m.counts() == {"cat": (1, 1, 1)}


def test_equal_scores_go_in_their_given_order():
    cat = box("cat", 0)
    first, second = box("cat", 4, score=0.7), box("cat", 2, score=0.7)
    assert match([first, second], [cat]).predictions == (first, second)
    assert match([first, second], [cat]).matched == (0, None)
    assert match([second, first], [cat]).matched == (0, None)
    assert match([second, first], [cat]).predictions == (second, first)


def test_a_shape_without_a_score_ranks_first():
    cat = box("cat", 0)
    plain, scored = box("cat", 4), box("cat", 0, score=0.99)
    assert match([scored, plain], [cat]).predictions == (plain, scored)
    assert match([scored, plain], [cat]).matched == (0, None)


def test_only_an_annotation_of_the_same_label_is_matched():
    dog, cat = box("dog", 0), box("cat", 0)
    m = match([box("cat", 0, score=0.9)], [dog, cat])
    assert m.matched == (1,) and m.found == (False, True)
    # the IoU with the other label is kept for whoever asks
    assert m.ious.tolist() == [[1.0, 1.0]]
    assert m.same_label.tolist() == [[False, True]]
    assert match([box("cat", 0, score=0.9)], [dog]).matched == (None,)
    assert match([box("cat", 0, score=0.9)], [dog]).counts() == {"dog": (1, 0, 0),
                                                                 "cat": (0, 0, 1)}


def test_a_prediction_on_two_annotations_takes_the_one_it_overlaps_most():
    left, right = box("cat", 0), box("cat", 12)
    between = box("cat", 7, score=0.9)   # IoU 13*20 / 540 with left, 15*20 / 500 with right
    m = match([between], [left, right], iou=0.3)
    assert m.matched == (1,) and m.found == (False, True)
    # a second box on both gets what is left, when it overlaps it enough
    m = match([between, box("cat", 3, score=0.8)], [left, right], iou=0.3)
    assert m.matched == (1, 0) and m.found == (True, True)
    # an annotation is taken once: a second box on it alone matches nothing
    assert match([between, box("cat", 11, score=0.8)], [left, right], iou=0.3).matched == \
        (1, None)


def test_boxes_are_compared_within_the_frame():
    # 30 px boxes sticking out of the right edge: IoU 600 / 1200 as drawn, 450 / 750 (the
    # parts in the frame) as matched
    annotated, predicted = box("cat", 175, size=30), box("cat", 185, size=30, score=0.9)
    m = match([predicted], [annotated], iou=0.55)
    assert m.ious[0, 0] == pytest.approx(0.6) and m.matched == (0,)


def test_the_iou_a_match_needs():
    cat, near = box("cat", 0), box("cat", 5, score=0.9)   # IoU 15*20 / 500 = 0.6
    assert match([near], [cat], iou=0.6).matched == (0,)
    assert match([near], [cat], iou=0.61).matched == (None,)


def test_no_annotations_or_no_predictions():
    m = match([box("cat", 0, score=0.9), box("dog", 50, score=0.4)], [])
    assert m.ious.shape == (2, 0) and m.matched == (None, None) and m.found == ()
    assert m.counts() == {"cat": (0, 0, 1), "dog": (0, 0, 1)}
    m = match([], [box("cat", 0)])
    assert m.ious.shape == (0, 1) and m.matched == () and m.found == (False,)
    assert m.counts() == {"cat": (1, 0, 0)}
    m = match([], [])
    assert m.ious.shape == (0, 0) and m.counts() == {}


def test_the_matching_at_a_threshold_is_the_same_as_matching_those_boxes_alone():
    cats = [box("cat", x) for x in (0, 40, 80)]
    boxes = [box("cat", 2, score=0.3), box("cat", 1, score=0.8), box("cat", 41, score=0.55),
             box("cat", 81, score=0.5), box("dog", 80, score=0.95), box("cat", 3, score=0.2)]
    every = match(boxes, cats)
    for threshold in (0.1, 0.25, 0.5, 0.55, 0.9, 0.99):
        at = every.at(threshold)
        alone = match([b for b in boxes if b.confidence >= threshold], cats)
        assert (at.predictions, at.matched, at.found) == \
            (alone.predictions, alone.matched, alone.found)
        assert at.ious.tolist() == alone.ious.tolist()
    assert every.at(0.5).counts() == {"cat": (3, 3, 0), "dog": (0, 0, 1)}
    assert every.at(0.6).counts() == {"cat": (3, 1, 0), "dog": (0, 0, 1)}
    assert every.at(0.1).counts() == {"cat": (3, 3, 2), "dog": (0, 0, 1)}


def test_the_iou_matrix_is_read_only():
    m = match([box("cat", 0, score=0.9), box("cat", 50, score=0.3)], [box("cat", 0)])
    with pytest.raises(ValueError, match="read-only"):
        m.ious[0, 0] = 0.0
    assert m.at(0.5).ious.shape == (1, 1)
    with pytest.raises(ValueError, match="read-only"):
        m.at(0.5).ious[0, 0] = 0.0


def test_a_predicted_frame_is_matched_with_its_annotations():
    frame = Frame(index=3, name="f.jpg", width=200, height=100,
                  shapes=(box("cat", 185, score=0.9),))
    p = Prediction(frame=frame, ground_truth=(box("cat", 190),))
    m = match_prediction(p, iou=0.5)
    # clipped to the frame: 15 x 20 and 10 x 20, IoU 10 / 15 (whole boxes: 15 / 25)
    assert m.ious[0, 0] == pytest.approx(10 / 15) and m.matched == (0,)
    assert match_prediction(p, iou=0.7).matched == (None,)


def test_claim_takes_the_best_allowed_column_in_a_range():
    ious = np.array([[0.9, 0.4, 0.2],
                     [0.8, 0.3, 0.35],
                     [0.1, 0.45, 0.0]])
    allowed = np.array([[True, True, True], [True, True, True], [False, True, False]])
    taken = np.zeros(3, dtype=bool)
    assert claim(ious, allowed, taken, low=0.5) == {0: 0}
    assert taken.tolist() == [True, False, False]
    # what is left, below 0.5 and from 0.3, for the rows asked about
    assert claim(ious, allowed, taken, low=0.3, high=0.5, rows=[1, 2]) == {1: 2, 2: 1}
    assert taken.tolist() == [True, True, True]
    assert claim(np.zeros((2, 0)), np.zeros((2, 0), bool), np.zeros(0, bool), low=0.0) == {}


def test_a_pictures_title_counts_what_the_evaluation_counts():
    truth = (box("cat", 0), box("dog", 100))
    drawn = (box("cat", 2, score=0.9),     # finds the cat
             box("dog", 0, score=0.8),     # a dog where the cat is: false
             box("cat", 160, score=0.7))   # on nothing: false
    frame = Frame(index=0, name="dir/f.jpg", width=200, height=100, shapes=drawn)
    assert picture_title(Prediction(frame=frame, ground_truth=truth)) == \
        "f.jpg: 1 of 2 found, 2 false"
    assert picture_title(Prediction(frame=frame)) == "f.jpg: 3 found"  # not annotated
    alone = Prediction(frame=Frame(index=0, name="f.jpg", width=200, height=100,
                                   shapes=drawn[:1]), ground_truth=truth)
    assert picture_title(alone) == "f.jpg: 1 of 2 found"
    # a model of other labels than the task's (COCO's person on pedestrians): no match to count
    assert picture_title(Prediction(frame=frame, ground_truth=truth),
                         labels=("person", "car")) == "f.jpg: 3 found"
    assert picture_title(Prediction(frame=frame, ground_truth=truth),
                         labels=("cat", "car")) == "f.jpg: 1 of 2 found, 2 false"
