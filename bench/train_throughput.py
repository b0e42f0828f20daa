"""Benchmark: training steps/s of cvatkit's trainer against Model Garden's own trainer.

Both train the same ExperimentConfig (the one cvatkit builds from the hyperparameters) on
the same prepared sample data, each in its own process, alternating. Only the training
loops count: steps/s is (last step - first step) / (time of last - time of first), taken
at the end of each compiled loop of --log-interval steps, so the first loop (tf.function
tracing), start-up, evaluation and export are left out. See bench/README.md.

    .venv/bin/python bench/train_throughput.py [--steps 300] [--log-interval 50]
        [--repeats 2] [--work bench/work/train]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CVATKIT = [sys.executable, "-m", "cvatkit"]
MODEL = "ssd-mobilenet-v2"
BATCH = 8


def hparams_text(steps: int, log_interval: int) -> str:
    return (f"num-steps={steps};batch-size={BATCH};image-size=128;"
            f"log-interval={log_interval};checkpoint-interval={steps};warmup-steps=0")


def rate(points: list[tuple[int, float]]) -> dict:
    """steps/s between the first and the last (step, time) point: the loops after the
    first one."""
    (s0, t0), (s1, t1) = points[0], points[-1]
    sps = (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")
    return {"steps": s1 - s0, "seconds": t1 - t0, "steps_per_sec": sps,
            "examples_per_sec": sps * BATCH, "points": points}


def child_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONUNBUFFERED": "1"}


def prepare_data(work: Path, frames: int) -> Path:
    data = work / "data"
    if (data / "dataset.json").is_file():
        return data
    for cmd in (["sample", str(work / "sample"), "--frames", str(frames), "--test-frames", "0"],
                ["prepare", str(work / "sample" / "task.zip"), str(data), "--overwrite"]):
        subprocess.run(CVATKIT + cmd, check=True, env=child_env())
    return data


def run_cvatkit(data: Path, run_dir: Path, hp: str, steps: int) -> dict:
    """`cvatkit train` in the foreground, to the end (evaluation and export included);
    steps/s comes from the step events in events.jsonl."""
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.time()
    with open(run_dir.parent / f"{run_dir.name}.log", "wb") as log:
        subprocess.run(CVATKIT + ["train", "--data", str(data), "--model", MODEL, "--run-dir",
                                  str(run_dir), "--hparams", hp],
                       check=True, stdout=log, stderr=subprocess.STDOUT, env=child_env())
    wall = time.time() - t0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    points = [(e["step"], e["time"]) for e in events if e.get("kind") == "step"]
    state = json.loads((run_dir / "status.json").read_text())["state"]
    if state != "completed" or not points or points[-1][0] != steps:
        raise SystemExit(f"cvatkit run {run_dir} ended {state} at step "
                         f"{points[-1][0] if points else 0}; see {run_dir}/trainer.log")
    after = max(e["time"] for e in events) - points[-1][1]
    return {**rate(points), "wall_s": wall, "after_last_step_s": after,
            "loop_steps_per_sec": [e["steps_per_sec"] for e in events if e["kind"] == "step"]}


def run_model_garden(data: Path, model_dir: Path, hp: str, steps: int) -> dict:
    """This script's --mg-worker mode in a child process, which writes timings.json."""
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    t0 = time.time()
    with open(model_dir.parent / f"{model_dir.name}.log", "wb") as log:
        subprocess.run([sys.executable, __file__, "--mg-worker", "--data", str(data),
                        "--model-dir", str(model_dir), "--hparams", hp],
                       check=True, stdout=log, stderr=subprocess.STDOUT, env=child_env())
    wall = time.time() - t0
    points = [tuple(p) for p in json.loads((model_dir / "timings.json").read_text())]
    if not points or points[-1][0] != steps:
        raise SystemExit(f"Model Garden run {model_dir} did not reach step {steps}")
    return {**rate(points), "wall_s": wall}


def mg_worker(data: str, model_dir: str, hp_text: str) -> None:
    """Model Garden's train_lib.run_experiment on cvatkit's ExperimentConfig. An orbit
    train action records the time after each loop of steps_per_loop steps."""
    from cvatkit.training.model_garden import build_experiment
    from cvatkit.training import plan_run

    plan = plan_run(data, MODEL, hp_text.replace(";", "\n"))
    exp = build_experiment(plan.spec, plan.hparams, plan.data)
    loop = exp.trainer.steps_per_loop = min(plan.hparams.log_interval, plan.hparams.num_steps)
    exp.trainer.summary_interval = loop
    exp.trainer.checkpoint_interval = 10 ** 9

    from official.core import task_factory, train_lib

    import cvatkit.training.model_garden.backbones  # noqa: F401  (registers them)
    from cvatkit.training.model_garden.loop import make_strategy

    strategy = make_strategy(plan.hparams.num_clones)  # the strategy cvatkit would use
    with strategy.scope():
        task = task_factory.get_task(exp.task, logging_dir=model_dir)
    points: list[tuple[int, float]] = []

    def after_loop(_output) -> None:  # orbit calls train actions after every train loop
        step = min((len(points) + 1) * loop, exp.trainer.train_steps)
        points.append((step, time.time()))

    train_lib.run_experiment(distribution_strategy=strategy, task=task, mode="train",
                             params=exp, model_dir=model_dir, train_actions=[after_loop])
    import tensorflow as tf

    last = tf.train.latest_checkpoint(model_dir)  # saved at the end: its number is the step
    if not last or int(last.rsplit("-", 1)[1]) != points[-1][0]:
        raise SystemExit(f"the last checkpoint {last} does not match step {points[-1][0]}")
    Path(model_dir, "timings.json").write_text(json.dumps(points))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps per run")
    ap.add_argument("--log-interval", type=int, default=50,
                    help="steps per compiled loop (cvatkit log-interval, MG steps_per_loop)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each trainer (best counts)")
    ap.add_argument("--frames", type=int, default=200, help="frames of the sample task")
    ap.add_argument("--work", type=Path, default=Path("bench/work/train"))
    ap.add_argument("--mg-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--hparams", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mg_worker:
        return mg_worker(args.data, args.model_dir, args.hparams)
    if args.steps < 2 * args.log_interval:
        ap.error("--steps must be at least 2 loops (2 x --log-interval)")
    work = args.work.resolve()
    (work / "runs").mkdir(parents=True, exist_ok=True)
    data = prepare_data(work, args.frames)
    hp = hparams_text(args.steps, args.log_interval)
    runners = {"cvatkit": run_cvatkit, "Model Garden": run_model_garden}
    runs: dict[str, list[dict]] = {name: [] for name in runners}
    for k in range(args.repeats):
        for name, runner in runners.items():
            print(f"run {k + 1}/{args.repeats}: {name}, {args.steps} steps", flush=True)
            slug = "cvatkit" if name == "cvatkit" else "mg"
            r = runner(data, work / "runs" / f"{slug}-{k + 1}", hp, args.steps)
            runs[name].append(r)
            print(f"  {r['steps_per_sec']:.2f} steps/s over {r['steps']} steps, "
                  f"{r['wall_s']:.0f} s in all", flush=True)
    best = {name: max(rs, key=lambda r: r["steps_per_sec"]) for name, rs in runs.items()}
    print(f"\n{'trainer':<14}{'steps measured':>15}{'seconds':>10}{'steps/s':>10}"
          f"{'examples/s':>12}")
    for name, r in best.items():
        print(f"{name:<14}{r['steps']:>15}{r['seconds']:>10.1f}{r['steps_per_sec']:>10.2f}"
              f"{r['examples_per_sec']:>12.1f}")
    ratio = best["cvatkit"]["steps_per_sec"] / best["Model Garden"]["steps_per_sec"]
    print(f"\nratio cvatkit / Model Garden = {ratio:.2f}x (target >= 1.0x)")
    out = work / "train-results.json"
    out.write_text(json.dumps({
        "model": MODEL, "hparams": hp, "steps": args.steps, "log_interval": args.log_interval,
        "repeats": args.repeats, "frames": args.frames, "cpus": os.cpu_count(),
        "best": best, "runs": runs, "ratio": ratio}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
