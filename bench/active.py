"""Benchmark: annotating the frames `cvatkit rank` picks vs frames picked at random.

The loop a team runs: a model trained on the frames annotated so far ranks the frames not
yet annotated; the most uncertain are annotated next and the model is trained again.
Here, on the built-in sample (200 frames, 60 held out): for each seed, 40 frames chosen at
random are "annotated" and a first model is trained on them (800 steps: until it finds
most objects); it ranks the other 160 (their annotations hidden from it); then 40 more
frames are added, either the 40 it ranks most uncertain or 40 at random, and the first
model is fine-tuned on the 80 frames for the same steps in both arms. Both are evaluated
(COCO AP, pycocotools) on the 60 held-out frames. The target: the ranked choice beats the
random one on average over the seeds. See bench/README.md.

    .venv/bin/python bench/active.py [--seeds 0,1,2] [--steps 800] [--retrain-steps 200]
        [--work bench/work/active]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

CVATKIT = [sys.executable, "-m", "cvatkit"]
MODEL = "ssd-mobilenet-v2"
HPARAMS = ("batch-size=8;image-size=128;initial-learning-rate=0.08;warmup-steps=10;"
           "anchor-size=2;log-interval=50;eval-interval=0")


def cvatkit(*args: str, log: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        done = subprocess.run(CVATKIT + list(args), env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"cvatkit {' '.join(args)} failed; see {log}")


def split(task: Path, work: Path, initial: int, seed: int) -> tuple[Path, Path, list[int]]:
    """``initial`` frames of the sample ``task`` chosen at random (``seed``) as the frames
    annotated so far (``annotated.zip``), and the whole task with every other frame's
    annotations removed (``pool.zip``): what the first model ranks."""
    from cvatkit import open_export
    from cvatkit.cvat import write_subset

    source = open_export(task)
    try:
        indexes = [f.index for f in source.frames()]
        chosen = sorted(random.Random(seed).sample(indexes, initial))
        annotated = write_subset(source, work / "annotated.zip", chosen,
                                 task_name="annotated so far")
        pool = write_subset(source, work / "pool.zip", chosen, rest_unannotated=True)
    finally:
        source.close()
    return annotated, pool, chosen


def ranked_choice(ranking_csv: Path, count: int) -> list[int]:
    """The ``count`` most uncertain frames of a ``cvatkit rank --out`` CSV."""
    with open(ranking_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return [int(r["frame"]) for r in rows[:count]]


def random_choice(pool: list[int], count: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(pool, count))


def with_frames(task: Path, frames: list[int], dest: Path) -> Path:
    """The frames ``frames`` of ``task`` with their annotations, as an export at ``dest``."""
    from cvatkit import open_export
    from cvatkit.cvat import write_subset

    source = open_export(task)
    try:
        return write_subset(source, dest, frames)
    finally:
        source.close()


def train(export: Path, run_dir: Path, steps: int, weights: str, test_data: Path,
          frames: list[int]) -> dict:
    """Prepare ``export`` (the sample's ``frames``), train on it and evaluate on
    ``test_data``: the final AP. A completed run of this bench on the same frames, steps
    and start is reused."""
    key = {"frames": sorted(frames), "steps": steps, "weights": weights}
    done = run_dir.parent / f"{run_dir.name}-key.json"
    if done.is_file() and json.loads(done.read_text()) == key:
        return _result(run_dir)
    done.unlink(missing_ok=True)
    data = run_dir.parent / f"{run_dir.name}-data"
    shutil.rmtree(run_dir, ignore_errors=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    cvatkit("prepare", str(export), str(data), "--val-split", "0", "--overwrite",
            "--model", MODEL, log=log.with_suffix(".prepare.log"))
    cvatkit("train", "--model", MODEL, "--data", str(data), "--run-dir", str(run_dir),
            "--weights", weights, "--eval-data", str(test_data),
            "--hparams", f"num-steps={steps};{HPARAMS}", log=log)
    done.write_text(json.dumps(key))
    return _result(run_dir)


def _result(run_dir: Path) -> dict:
    """The AP of the run's last evaluation (of its last step, on the test frames)."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    last = [e for e in events if e.get("kind") == "eval"][-1]
    spent = events[-1]["time"] - events[0]["time"]
    return {"ap": last["ap"], "ap50": last["ap50"], "train_s": round(spent, 1)}


def one_seed(seed: int, args, sample: Path, test_data: Path) -> dict:
    work = args.work / f"seed-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    annotated, pool, chosen = split(sample / "task.zip", work, args.initial, seed)
    first = train(annotated, work / "first-run", args.steps, "none", test_data, chosen)
    ranking = work / "ranking.csv"
    cvatkit("rank", str(work / "first-run"), str(pool), "--out", str(ranking), "--top", "5",
            log=work / "rank.log")
    unannotated = sorted(set(range(args.frames)) - set(chosen))
    picks = {"ranked": ranked_choice(ranking, args.add),
             "random": random_choice(unannotated, args.add, seed + 1000)}
    row = {"seed": seed, "first": first}
    for arm, extra in picks.items():
        export = with_frames(sample / "task.zip", chosen + extra, work / f"{arm}.zip")
        row[arm] = train(export, work / f"{arm}-run", args.retrain_steps,
                         str((work / "first-run").resolve()), test_data, chosen + extra)
        row[arm]["frames"] = extra
    print(f"seed {seed}: first model {first['ap']:.3f}; +{args.add} ranked "
          f"{row['ranked']['ap']:.3f}, +{args.add} random {row['random']['ap']:.3f}",
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--test-frames", type=int, default=60)
    ap.add_argument("--initial", type=int, default=40)
    ap.add_argument("--add", type=int, default=40)
    ap.add_argument("--steps", type=int, default=800, help="the first model's steps")
    ap.add_argument("--retrain-steps", type=int, default=200,
                    help="steps of the fine-tuning on the grown set (both arms)")
    ap.add_argument("--work", type=Path, default=Path("bench/work/active"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sample = args.work / "sample"
    test_data = args.work / "test-data"
    if not (test_data / "dataset.json").is_file():
        cvatkit("sample", str(sample), "--frames", str(args.frames), "--test-frames",
                str(args.test_frames), "--overwrite", log=args.work / "sample.log")
        cvatkit("prepare", str(sample / "test.zip"), str(test_data), "--val-split", "1",
                "--overwrite", "--model", MODEL, log=args.work / "test-data.log")
    rows = [one_seed(int(s), args, sample, test_data) for s in args.seeds.split(",")]
    (args.work / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{args.initial} random frames annotated first ({args.steps} steps), then "
          f"{args.add} more, fine-tuned {args.retrain_steps} steps; COCO AP on "
          f"{args.test_frames} held-out frames")
    print(f"{'seed':>5} {'first':>7} {'ranked':>7} {'random':>7} {'diff':>7}")
    for r in rows:
        diff = r["ranked"]["ap"] - r["random"]["ap"]
        print(f"{r['seed']:>5} {r['first']['ap']:>7.3f} {r['ranked']['ap']:>7.3f} "
              f"{r['random']['ap']:>7.3f} {diff:>+7.3f}")
    ranked = sum(r["ranked"]["ap"] for r in rows) / len(rows)
    rand = sum(r["random"]["ap"] for r in rows) / len(rows)
    print(f"{'mean':>5} {'':>7} {ranked:>7.3f} {rand:>7.3f} {ranked - rand:>+7.3f}")
    print(f"target: ranked beats random on average: {'met' if ranked > rand else 'not met'}")


if __name__ == "__main__":
    main()
