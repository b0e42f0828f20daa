"""The inference stage: a trained detector loaded, run over frames, drawn, and scored
against a task's annotations."""

from .detector import Detector, ModelInfo, check_threshold
from .drawing import frame_figure, gallery_figure, label_colors, save_png
from .evaluation import SCORE_FLOOR, ClassFigures, Evaluation, evaluate
from .loader import load_detector
from .predictions import (IMAGE_SUFFIXES, Prediction, image_files, open_frames,
                          predict, prediction_record, save_predictions)

__all__ = ["ClassFigures", "Detector", "Evaluation", "IMAGE_SUFFIXES", "ModelInfo",
           "Prediction", "SCORE_FLOOR", "check_threshold", "evaluate",
           "frame_figure", "gallery_figure", "image_files", "label_colors", "load_detector",
           "open_frames", "predict", "prediction_record", "save_png", "save_predictions"]
