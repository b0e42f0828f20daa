"""Export a run's final checkpoint as a SavedModel, with its label files beside it."""

from __future__ import annotations

import json
from pathlib import Path

from ...files import folder_written_aside
from ...label_files import write_label_files
from ...records import LabelMap
from ...runs import EXPORT, MODEL_JSON, SAVED_MODEL, Run


def export_run(run: Run, experiment, checkpoint: str, labels: tuple[str, ...]) -> None:
    """``RUN_DIR/export/``: ``saved_model/`` (uint8 images of any size in, detections
    out, through Model Garden's export library) plus ``label_map.pbtxt``,
    ``classes.csv``, ``label_map.json`` and ``model.json``."""
    from official.vision.serving import export_saved_model_lib

    size = list(experiment.task.model.input_size[:2])
    spec = run.spec()
    with folder_written_aside(run.path / EXPORT) as tmp:
        export_saved_model_lib.export_inference_graph(
            input_type="image_tensor", batch_size=None, input_image_size=size,
            params=experiment, checkpoint_path=checkpoint, export_dir=str(tmp),
            export_checkpoint_subdir="checkpoint", export_saved_model_subdir=SAVED_MODEL)
        write_label_files(LabelMap.from_names(labels), tmp)
        (tmp / MODEL_JSON).write_text(json.dumps({
            "model": spec["model"]["key"], "family": spec["model"]["family"],
            "input_size": size, "labels": list(labels), "checkpoint": Path(checkpoint).name,
            "input": "uint8 images [batch, height, width, 3], any size (resized inside)",
            "outputs": "detection_boxes (pixels of the resized input: divide by image_info "
                       "row 2), detection_classes (1-based), detection_scores, "
                       "num_detections",
        }, indent=2) + "\n")
