"""TF Model Garden under cvatkit's training: experiment configs from a catalog entry,
the backbones it lacks, Mask R-CNN's stages, the training loop and the SavedModel export.
TensorFlow is imported by the functions that need it, not by this package."""

from .config import build_experiment

__all__ = ["build_experiment"]
