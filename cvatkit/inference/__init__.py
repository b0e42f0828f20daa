"""The inference stage: a trained detector loaded, run over frames, drawn, and scored
against a task's annotations."""

from .detector import Detector, ModelInfo, check_threshold
from .drawing import frame_figure, gallery_figure, label_colors, save_png
from .evaluation import RECALL_POINTS, SCORE_FLOOR, ClassFigures, Evaluation, evaluate
from .loader import load_detector
from .plots import (SMALL, annotated_frames_figure, box_sizes, confusion_figure, labels_figure,
                    pr_curves_figure, save_evaluation_plots, sizes_figure)
from .predictions import (IMAGE_SUFFIXES, Prediction, frame_pixels, image_files,
                          open_frames, predict, prediction_record, save_predictions)
from .ranking import FrameRank, Ranking, rank_frames
from .review import KINDS, SUSPECT_KINDS, Finding, FrameReview, Review, review

__all__ = ["ClassFigures", "Detector", "Evaluation", "Finding", "FrameRank", "FrameReview",
           "IMAGE_SUFFIXES", "KINDS", "ModelInfo", "Prediction", "RECALL_POINTS", "Ranking",
           "Review", "SCORE_FLOOR", "SMALL", "SUSPECT_KINDS", "annotated_frames_figure",
           "box_sizes", "check_threshold", "confusion_figure", "evaluate", "frame_figure",
           "frame_pixels", "gallery_figure", "image_files", "label_colors", "labels_figure",
           "load_detector", "open_frames", "pr_curves_figure", "predict", "prediction_record",
           "rank_frames", "review", "save_evaluation_plots", "save_png", "save_predictions",
           "sizes_figure"]
