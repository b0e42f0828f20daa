"""Benchmark: what starting from an earlier run's weights is worth on a small new task.

A source model is trained on the built-in sample task (seed 0, 400 frames). The new task
is another sample (another seed, other label names: box, wedge, disc) with 60 training
frames and 60 held-out ones. On it, runs of 50, 100, 200 and 400 steps start either from
the source run (`cvatkit train --weights SOURCE_RUN`) or from random weights
(`--weights none`), with the same hyperparameters; each is evaluated (COCO AP, AP@0.5,
pycocotools) on the new task's held-out frames. The target: the fine-tuned model at 100
steps beats the one from random weights at 400. See bench/README.md.

    .venv/bin/python bench/transfer.py [--steps 50,100,200,400] [--source-steps 600]
        [--work bench/work/transfer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

CVATKIT = [sys.executable, "-m", "cvatkit"]
MODEL = "ssd-mobilenet-v2"
RENAMED = {"square": "box", "triangle": "wedge", "circle": "disc"}
HPARAMS = ("batch-size=8;image-size=128;initial-learning-rate=0.04;warmup-steps=10;"
           "anchor-size=2;log-interval=25;eval-interval=0")


def cvatkit(*args: str, log: Path | None = None) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if log is None:
        subprocess.run(CVATKIT + list(args), check=True, env=env, stdout=subprocess.DEVNULL)
        return
    with open(log, "wb") as out:
        done = subprocess.run(CVATKIT + list(args), env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"cvatkit {' '.join(args)} failed; see {log}")


def rename_labels(export: Path) -> None:
    """The sample's labels under other names, in a CVAT export zip."""
    with zipfile.ZipFile(export) as z:
        members = {n: z.read(n) for n in z.namelist()}
    xml = members["annotations.xml"].decode()
    for old, new in RENAMED.items():
        xml = xml.replace(f"<name>{old}</name>", f"<name>{new}</name>")
        xml = xml.replace(f'label="{old}"', f'label="{new}"')
    members["annotations.xml"] = xml.encode()
    tmp = export.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    tmp.replace(export)


def datasets(work: Path, source_frames: int, new_frames: int) -> tuple[Path, Path, Path]:
    source, new = work / "source-sample", work / "new-sample"
    if not (work / "new-test" / "dataset.json").is_file():
        cvatkit("sample", str(source), "--frames", str(source_frames), "--test-frames", "0",
                "--overwrite")
        cvatkit("prepare", str(source / "task.zip"), str(work / "source-data"),
                "--val-split", "0", "--overwrite")
        cvatkit("sample", str(new), "--frames", str(new_frames), "--test-frames",
                str(new_frames), "--seed", "7", "--overwrite")
        for name in ("task.zip", "test.zip"):
            rename_labels(new / name)
        cvatkit("prepare", str(new / "task.zip"), str(work / "new-data"), "--val-split", "0",
                "--overwrite")
        cvatkit("prepare", str(new / "test.zip"), str(work / "new-test"), "--val-split", "1",
                "--overwrite")
    return work / "source-data", work / "new-data", work / "new-test"


def train(data: Path, run_dir: Path, steps: int, weights: str,
          eval_data: Path | None = None) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    args = ["train", "--model", MODEL, "--data", str(data), "--run-dir", str(run_dir),
            "--weights", weights, "--hparams", f"num-steps={steps};{HPARAMS}"]
    if eval_data is not None:
        args += ["--eval-data", str(eval_data)]
    t0 = time.time()
    cvatkit(*args, log=run_dir.parent / f"{run_dir.name}.log")
    wall = time.time() - t0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    evals = [e for e in events if e.get("kind") == "eval"]
    return {"steps": steps, "weights": weights, "wall_s": round(wall, 1),
            "ap": evals[-1]["ap"] if evals else None,
            "ap50": evals[-1]["ap50"] if evals else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="50,100,200,400",
                    help="run lengths on the new task, comma-separated")
    ap.add_argument("--source-steps", type=int, default=600)
    ap.add_argument("--source-frames", type=int, default=400)
    ap.add_argument("--new-frames", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path("bench/work/transfer"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source_data, new_data, new_test = datasets(args.work, args.source_frames, args.new_frames)
    source_run = args.work / "source-run"
    if not (source_run / "export" / "saved_model").is_dir():
        print(f"training the source model: {args.source_steps} steps on "
              f"{args.source_frames} frames of the sample", flush=True)
        train(source_data, source_run, args.source_steps, "none")
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        for weights, name in ((str(source_run), "fine-tuned"), ("none", "from scratch")):
            row = train(new_data, args.work / f"{name.replace(' ', '-')}-{steps}", steps,
                        weights, new_test)
            row["start"] = name
            rows.append(row)
            print(f"{name:>12} {steps:>4} steps: COCO AP {row['ap']:.3f}, AP@0.5 "
                  f"{row['ap50']:.3f} ({row['wall_s']:.0f} s)", flush=True)
    (args.work / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\nnew task: {args.new_frames} training frames, {args.new_frames} held-out "
          f"frames, labels {', '.join(RENAMED.values())}; COCO AP on the held-out frames")
    print(f"{'steps':>6} {'fine-tuned':>11} {'from scratch':>13} {'ratio':>6}")
    by = {(r["start"], r["steps"]): r["ap"] for r in rows}
    for steps in sorted({r["steps"] for r in rows}):
        tuned, scratch = by[("fine-tuned", steps)], by[("from scratch", steps)]
        ratio = tuned / scratch if scratch else float("inf")
        print(f"{steps:>6} {tuned:>11.3f} {scratch:>13.3f} {ratio:>5.2f}x")
    if ("fine-tuned", 100) in by and ("from scratch", 400) in by:
        a, b = by[("fine-tuned", 100)], by[("from scratch", 400)]
        print(f"target: fine-tuned at 100 steps {a:.3f} vs from scratch at 400 steps "
              f"{b:.3f}: {'met' if a > b else 'not met'}")


if __name__ == "__main__":
    main()
