"""Benchmark for a GPU machine: training steps/s at num-clones 1 and at all GPUs, each in
float32 and in mixed precision (float16), and predict frames/s of an export.

No GPU machine was lent to this project, so no figures of it exist yet: this script is
prepared for one. ``--tiny`` checks it end to end on the CPU (two CPU replicas stand in for
two GPUs, as in the tests; those figures say nothing about GPUs).

Every run is `cvatkit train` in its own process on the built-in sample task, prepared
once in --work, for --steps steps from random weights (``weights=none``: no download),
with --batch-per-gpu frames per GPU (the global batch grows with num-clones). steps/s is
(last step - first step) / (time of last - time of first), from the step events at the end
of each compiled loop of --log-interval steps: start-up, the first loop (tracing; with
--xla, XLA's compilation), evaluation and export are left out; the first loop's seconds
are printed apart. Then the export of the first run predicts the sample's frames:
frames/s of `predict()` end to end and of the bare model call, after one warm-up call.

    .venv/bin/python bench/gpu.py [--model ssd-mobilenet-v2] [--steps 300]
        [--log-interval 50] [--batch-per-gpu 16] [--image-size 320] [--frames 400]
        [--predict-batch 16] [--xla] [--work bench/work/gpu]
    .venv/bin/python bench/gpu.py --tiny      # the CPU check
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

import numpy as np

CVATKIT = [sys.executable, "-m", "cvatkit"]
TINY = {"steps": 6, "log_interval": 2, "batch_per_gpu": 2, "image_size": 128, "frames": 24,
        "predict_batch": 4}
"""--tiny: a few steps of a small batch at 128 px, enough for two loops after the first."""
TINY_REPLICAS = 2


def child_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONUNBUFFERED": "1"}


def gpu_names() -> list[str]:
    """``name (compute capability)`` of each GPU nvidia-smi lists; none without it."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [f"{name.strip()} ({cap.strip()})" for name, _, cap in
            (line.partition(",") for line in out.splitlines() if line.strip())]


def prepare_data(work: Path, frames: int) -> tuple[Path, Path]:
    """The sample task (--frames frames, 40 held out) prepared once: (data, test.zip)."""
    sample, data = work / f"sample-{frames}", work / f"data-{frames}"
    if not (data / "dataset.json").is_file():
        for cmd in (["sample", str(sample), "--frames", str(frames), "--test-frames", "40",
                     "--overwrite"],
                    ["prepare", str(sample / "task.zip"), str(data), "--overwrite"]):
            subprocess.run(CVATKIT + cmd, check=True, env=child_env(),
                           stdout=subprocess.DEVNULL)
    return data, sample / "test.zip"


def train(data: Path, run_dir: Path, model: str, hparams: dict) -> dict:
    """One `cvatkit train` to its end; its rate from the step events."""
    shutil.rmtree(run_dir, ignore_errors=True)
    text = ";".join(f"{k}={v}" for k, v in hparams.items())
    t0 = time.time()
    with open(run_dir.parent / f"{run_dir.name}.log", "wb") as log:
        code = subprocess.run(CVATKIT + ["train", "--data", str(data), "--model", model,
                                         "--run-dir", str(run_dir), "--weights", "none",
                                         "--hparams", text],
                              stdout=log, stderr=subprocess.STDOUT, env=child_env()).returncode
    wall = time.time() - t0
    if code:
        raise SystemExit(f"`cvatkit train` exited {code}: see {run_dir.parent}/"
                         f"{run_dir.name}.log and {run_dir}/trainer.log")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [e for e in events if e.get("kind") == "step"]
    started = next(e["time"] for e in events if e.get("kind") == "status")
    (s0, t_0), (s1, t_1) = (steps[0]["step"], steps[0]["time"]), (steps[-1]["step"],
                                                                  steps[-1]["time"])
    sps = (s1 - s0) / (t_1 - t_0)
    return {"run": str(run_dir), "hparams": text, "steps_measured": s1 - s0,
            "steps_per_sec": sps, "examples_per_sec": sps * hparams["batch-size"],
            "first_loop_s": t_0 - started, "wall_s": wall,
            "final_loss": steps[-1]["total_loss"]}


def predict_rate(export: Path, test: Path, batch: int) -> dict:
    """frames/s of predict() end to end over the test frames, and of the bare call on the
    same frames decoded beforehand; each after one warm-up."""
    from cvatkit import open_export
    from cvatkit.images import decode_rgb
    from cvatkit.inference import load_detector, predict

    detector = load_detector(export)
    source = open_export(test)
    images = [decode_rgb(source.read_image(f), f.name) for f in source.frames()]
    n = len(images)
    for size in sorted({min(batch, n - i) for i in range(0, n, batch)}):
        detector.call(np.stack(images[:size]))
    list(predict(detector, source, threshold=0.5, batch_size=batch, limit=batch))
    t0 = time.perf_counter()
    predictions = list(predict(detector, source, threshold=0.5, batch_size=batch))
    e2e = time.perf_counter() - t0
    source.close()
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        detector.call(np.stack(images[i:i + batch]))
    bare = time.perf_counter() - t0
    return {"frames": n, "batch": batch, "e2e_fps": len(predictions) / e2e,
            "bare_fps": n / bare,
            "shapes": sum(len(p.frame.shapes) for p in predictions)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ssd-mobilenet-v2", help="catalog key")
    ap.add_argument("--steps", type=int, default=300, help="training steps per run")
    ap.add_argument("--log-interval", type=int, default=50, help="steps per compiled loop")
    ap.add_argument("--batch-per-gpu", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=320)
    ap.add_argument("--frames", type=int, default=400, help="frames of the sample task")
    ap.add_argument("--predict-batch", type=int, default=16)
    ap.add_argument("--xla", action="store_true",
                    help="also each configuration with jit-compile=true")
    ap.add_argument("--tiny", action="store_true",
                    help="a few steps at 128 px: checks the script on the CPU")
    ap.add_argument("--work", type=Path, default=Path("bench/work/gpu"))
    args = ap.parse_args()
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    if args.steps < 2 * args.log_interval:
        ap.error("--steps must be at least 2 loops (2 x --log-interval)")

    from cvatkit.training import count_gpus
    from cvatkit.training.devices import CPU_REPLICAS_ENV

    names = gpu_names()
    gpus = count_gpus()
    if not gpus and not args.tiny:
        raise SystemExit("no GPU here (CUDA_VISIBLE_DEVICES, /proc/driver/nvidia/gpus): this "
                         "benchmark is for a GPU machine; --tiny checks it on the CPU")
    if not gpus:
        os.environ[CPU_REPLICAS_ENV] = str(TINY_REPLICAS)  # the children's "GPUs"
        gpus = TINY_REPLICAS
        print(f"--tiny without a GPU: {TINY_REPLICAS} CPU replicas stand in for GPUs (a "
              "check of the script, not a measurement)", flush=True)
    work = args.work.resolve()
    (work / "runs").mkdir(parents=True, exist_ok=True)
    data, test = prepare_data(work, args.frames)
    clones = sorted({1, gpus})
    configs = [(c, p, x) for c in clones for p in ("float32", "float16")
               for x in ((False, True) if args.xla else (False,))]
    print(f"{args.model}, {args.steps} steps of {args.batch_per_gpu} frames per GPU at "
          f"{args.image_size} px; GPUs: {', '.join(names) or 'none'}; counted: {gpus}",
          flush=True)
    results = []
    for n, (c, precision, xla) in enumerate(configs, start=1):
        hp = {"num-steps": args.steps, "batch-size": args.batch_per_gpu * c,
              "image-size": args.image_size, "num-clones": c, "mixed-precision": precision,
              "jit-compile": str(xla).lower(), "log-interval": args.log_interval,
              "checkpoint-interval": args.steps, "warmup-steps": 0, "eval-interval": 0}
        slug = f"clones{c}-{precision}" + ("-xla" if xla else "")
        print(f"run {n}/{len(configs)}: {slug}", flush=True)
        r = train(data, work / "runs" / slug, args.model, hp)
        results.append({"clones": c, "precision": precision, "xla": xla, **r})
        print(f"  {r['steps_per_sec']:.2f} steps/s, {r['examples_per_sec']:.1f} frames/s; "
              f"first loop {r['first_loop_s']:.0f} s; {r['wall_s']:.0f} s in all", flush=True)
    pred = predict_rate(Path(results[0]["run"]) / "export", test, args.predict_batch)

    print(f"\n{'clones':>6} {'precision':<9} {'xla':<5} {'batch':>5} {'steps/s':>8} "
          f"{'frames/s':>9} {'first loop s':>13} {'loss':>7}")
    for r in results:
        batch = args.batch_per_gpu * r["clones"]
        print(f"{r['clones']:>6} {r['precision']:<9} {str(r['xla']).lower():<5} {batch:>5} "
              f"{r['steps_per_sec']:>8.2f} {r['examples_per_sec']:>9.1f} "
              f"{r['first_loop_s']:>13.0f} {r['final_loss']:>7.3f}")
    by = {(r["clones"], r["precision"], r["xla"]): r["examples_per_sec"] for r in results}
    for c in clones:
        print(f"float16 / float32 at num-clones={c}: "
              f"{by[(c, 'float16', False)] / by[(c, 'float32', False)]:.2f}x frames/s")
    if len(clones) > 1:
        print(f"num-clones={gpus} / 1 (float32): "
              f"{by[(gpus, 'float32', False)] / by[(1, 'float32', False)]:.2f}x frames/s")
    print(f"predict, export of the first run, {pred['frames']} frames in batches of "
          f"{pred['batch']}: {pred['e2e_fps']:.1f} frames/s end to end, "
          f"{pred['bare_fps']:.1f} bare call ({pred['shapes']} shapes at 0.5)")
    out = work / ("gpu-results-tiny.json" if args.tiny else "gpu-results.json")
    out.write_text(json.dumps({
        "model": args.model, "gpus": names, "counted": gpus, "tiny": args.tiny,
        "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()},
        "training": results, "predict": pred}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
