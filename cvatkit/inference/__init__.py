"""The inference stage: a trained detector loaded, run over frames, drawn, and scored
against a task's annotations."""

from .detector import Detector, ModelInfo, check_threshold
from .drawing import frame_figure, gallery_figure, label_colors, save_png
from .evaluation import SCORE_FLOOR, ClassFigures, Evaluation, evaluate
from .loader import load_detector
from .predictions import (IMAGE_SUFFIXES, Prediction, image_files, open_frames,
                          predict, prediction_record, save_predictions)
from .review import KINDS, SUSPECT_KINDS, Finding, FrameReview, Review, review

__all__ = ["ClassFigures", "Detector", "Evaluation", "Finding", "FrameReview",
           "IMAGE_SUFFIXES", "KINDS", "ModelInfo", "Prediction", "Review", "SCORE_FLOOR",
           "SUSPECT_KINDS", "check_threshold", "evaluate", "review",
           "frame_figure", "gallery_figure", "image_files", "label_colors", "load_detector",
           "open_frames", "predict", "prediction_record", "save_png", "save_predictions"]
