"""The dataset stage: a task checked, split and written as TFRecords for training."""

from .checks import Report
from .folder import (DATASET_JSON, VAL_COCO_JSON, Dataset, dataset_folder_name, is_dataset,
                     load_dataset)
from .preparation import check, check_frames, prepare
from .split import DEFAULT_VAL_FRACTION
from .training_data import TrainingData, prepare_training_data, training_dataset_name

__all__ = ["DATASET_JSON", "DEFAULT_VAL_FRACTION", "Dataset", "Report", "TrainingData",
           "VAL_COCO_JSON", "check", "check_frames", "dataset_folder_name", "is_dataset",
           "load_dataset", "prepare", "prepare_training_data",
           "training_dataset_name"]
