"""The Ultralytics side of bench/race.py, run in bench/.venv-ultralytics (not the
project's venv): train YOLO from its yaml (no downloaded weights), or predict the held-out
frames with a trained one as COCO detections.

    python race_yolo.py train DATA_YAML OUT_DIR --model yolo11n.yaml --epochs 40
        --imgsz 128 --batch 16 --threads 1
    python race_yolo.py predict WEIGHTS IMAGES_DIR OUT_JSON --imgsz 128
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def offline() -> None:
    """No downloads: Ultralytics' telemetry (``sync``) off; its settings folder is the
    bench's (YOLO_CONFIG_DIR); fonts are never fetched (plots off), nor AMP's check model
    (amp off)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.utils import SETTINGS

    SETTINGS.update({k: False for k in ("sync", "hub") if k in SETTINGS})


def train(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    offline()
    from ultralytics import YOLO

    model = YOLO(args.model)  # a yaml: random initial weights
    model.train(data=args.data, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                device="cpu", workers=0, pretrained=False, amp=False, plots=False,
                val=False, project=str(Path(args.out).parent), name=Path(args.out).name,
                exist_ok=True, seed=args.seed, deterministic=False, verbose=False)


def predict(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    offline()
    from ultralytics import YOLO

    model = YOLO(args.weights)
    out = []
    images = sorted(p for p in Path(args.images).iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"))
    for path in images:
        (r,) = model.predict(str(path), imgsz=args.imgsz, conf=0.001, iou=0.7, max_det=100,
                             device="cpu", verbose=False)
        for (x0, y0, x1, y1), cls, score in zip(r.boxes.xyxy.tolist(), r.boxes.cls.tolist(),
                                                r.boxes.conf.tolist()):
            out.append({"file_name": path.name, "label": r.names[int(cls)],
                        "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score})
    Path(args.out).write_text(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(required=True)
    t = sub.add_parser("train")
    t.add_argument("data")
    t.add_argument("out")
    t.add_argument("--model", default="yolo11n.yaml")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--imgsz", type=int, default=128)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=train)
    q = sub.add_parser("predict")
    q.add_argument("weights")
    q.add_argument("images")
    q.add_argument("out")
    q.add_argument("--imgsz", type=int, default=128)
    q.add_argument("--threads", type=int, default=1)
    q.set_defaults(func=predict)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
