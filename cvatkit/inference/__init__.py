"""The inference stage: a trained detector loaded, run over frames, drawn, and scored
against a task's annotations.

The names below are imported on first use: loading a detector (cvat-cli's function
module, a serverless function) does not load the drawing and plotting libraries."""

from ..lazy import lazy_names

_EXPORTS = {
    "ClassFigures": "evaluation", "Detector": "detector", "Evaluation": "evaluation",
    "Evaluated": "predicted", "Predicted": "predicted", "predict_frames": "predicted",
    "Finding": "disagreements", "FrameMatch": "frame_match", "FrameRank": "ranking",
    "FrameReview": "disagreements",
    "IMAGE_SUFFIXES": "predictions", "KINDS": "disagreements", "ModelInfo": "detector",
    "Prediction": "predictions", "RECALL_POINTS": "evaluation", "Ranking": "ranking",
    "Review": "disagreements", "SCORE_FLOOR": "evaluation", "SMALL": "plots",
    "SUSPECT_KINDS": "disagreements", "annotated_frames_figure": "plots", "box_sizes": "plots",
    "check_threshold": "detector", "confusion_figure": "plots", "evaluate": "evaluation",
    "frame_figure": "drawing", "frame_pixels": "predictions", "gallery_figure": "drawing",
    "image_files": "predictions", "label_colors": "drawing", "labels_figure": "plots",
    "load_detector": "loader", "match_frame": "frame_match", "open_frames": "predictions",
    "pr_curves_figure": "plots",
    "predict": "predictions", "prediction_record": "pictures", "rank_frames": "ranking",
    "review": "disagreements", "save_evaluation_plots": "plots", "save_png": "drawing",
    "picture_title": "pictures", "save_predictions": "pictures", "sizes_figure": "plots",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
