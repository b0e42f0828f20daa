"""Benchmark: frames/s of `cvatkit.inference.predict` end to end against the bare model call.

The same detector runs over the same 500 frames (the sample task's 160x128 JPEGs) in one
process, three ways, alternating within each round:

- **bare**: the frames are decoded to numpy first (not timed); then only
  `detector.call(np.stack(batch))` over the batches that `predict` would make is timed.
- **e2e zip**: `list(predict(detector, open_export(task.zip), threshold=0.5,
  batch_size=B))`: reading and decoding the frames (in predict's thread pool), batching,
  the model call and turning its outputs into shapes.
- **e2e folder**: the same over a folder of the 500 JPEG files extracted from the zip.

The model's export (``nms=batched``, cvatkit's default) is compared with the same
checkpoint exported with Model Garden's default NMS (``cvatkit export --nms v2``, what runs
were exported with before): its bare call, once per batch size, for reference.

Each batch shape is called once before timing (the first call of a shape is slow). The
median frames/s over --repeats rounds counts, and the ratio e2e / bare is printed for each
batch size. Then, untimed against the others, where an e2e frame's time goes: decoding
one frame, postprocessing one frame's outputs, and the call with fewer TF threads.
See bench/README.md.

    .venv/bin/python bench/predict.py [--model RUN_OR_EXPORT] [--batch-sizes 1,8]
        [--repeats 3] [--frames 500] [--train-steps 600] [--work bench/work/predict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CVATKIT = [sys.executable, "-m", "cvatkit"]
MODEL = "ssd-mobilenet-v2"
HPARAMS_FILE = ROOT / "demo" / "sample.hparams"
THRESHOLD = 0.5
TARGET = 0.9


def train_hparams(steps: int) -> str:
    """demo/sample.hparams with fewer steps."""
    pairs = {}
    for line in HPARAMS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = (s.strip() for s in line.split("=", 1))
            pairs[key] = value
    pairs.update({"num-steps": str(steps), "checkpoint-interval": str(steps),
                  "log-interval": str(min(50, steps))})
    return ";".join(f"{k}={v}" for k, v in pairs.items())


def child_env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def make_frames(work: Path, frames: int) -> tuple[Path, Path]:
    """WORK/sample-N/task.zip and the same JPEGs extracted into WORK/sample-N/jpg/."""
    from cvatkit.cvat import write_sample

    sample = work / f"sample-{frames}"
    task, jpg = sample / "task.zip", sample / "jpg"
    if not task.is_file():
        write_sample(sample, frames=frames, test_frames=0, overwrite=True)
    if not jpg.is_dir() or len(list(jpg.glob("*.jpg"))) != frames:
        tmp = sample / "jpg.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(task) as z:
            for name in z.namelist():
                if name.lower().endswith(".jpg"):
                    (tmp / Path(name).name).write_bytes(z.read(name))
        tmp.rename(jpg)
    return task, jpg


def make_model(work: Path, task: Path, steps: int) -> Path:
    """A run trained on the sample with demo/sample.hparams and `steps` steps, reused."""
    run = work / f"run-{steps}"
    status = run / "status.json"
    if status.is_file() and json.loads(status.read_text()).get("state") == "completed":
        return run
    data = work / "data"
    print(f"training a model for the benchmark ({steps} steps, once): {run}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(CVATKIT + ["prepare", str(task), str(data), "--overwrite"], check=True,
                   env=child_env(), stdout=subprocess.DEVNULL)
    if run.exists():
        import shutil

        shutil.rmtree(run)
    with open(work / f"run-{steps}.log", "wb") as log:
        subprocess.run(CVATKIT + ["train", "--data", str(data), "--model", MODEL,
                                  "--run-dir", str(run), "--hparams", train_hparams(steps)],
                       check=True, stdout=log, stderr=subprocess.STDOUT, env=child_env())
    state = json.loads(status.read_text()).get("state")
    if state != "completed":
        raise SystemExit(f"training ended {state}; see {run}/trainer.log")
    print(f"  trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return run


def v2_export(work: Path, model: Path) -> Path | None:
    """The run's checkpoint exported with NMS v2 (once, in WORK); None for a bare export."""
    if not (model / "run.json").is_file():
        return None
    out = work / f"{model.name}-export-v2"
    if not (out / "model.json").is_file():
        print(f"exporting {model} with NMS v2 for reference (once): {out}", flush=True)
        subprocess.run(CVATKIT + ["export", str(model), "--nms", "v2", "--out", str(out)],
                       check=True, env=child_env(), stdout=subprocess.DEVNULL)
    return out


def bare_rate(detector, images: list[np.ndarray], batch: int) -> dict:
    """frames/s of the bare call over all frames, one round (for the slow reference)."""
    n = len(images)
    for size in sorted({min(batch, n - i) for i in range(0, n, batch)}):
        detector.call(np.stack(images[:size]))
    shapes = 0

    def run():
        nonlocal shapes
        for i in range(0, n, batch):
            out = detector.call(np.stack(images[i:i + batch]))
            shapes += int((out["detection_scores"] >= THRESHOLD).sum())
        return n

    wall, cpu, _ = timed(run)
    return {"fps": n / wall, "cpu_ms_per_frame": 1000 * cpu / n, "shapes": shapes}


def timed(fn) -> tuple[float, float, object]:
    """(wall s, CPU s of this process, result) of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def measure(detector, task: Path, jpg: Path, images: list[np.ndarray], batch: int,
            repeats: int) -> dict:
    from cvatkit import open_export
    from cvatkit.inference import predict

    n = len(images)
    sizes = sorted({min(batch, n - i) for i in range(0, n, batch)})
    for size in sizes:  # the first call of each batch shape traces / optimises
        detector.call(np.stack(images[:size]))

    def bare():
        for i in range(0, n, batch):
            detector.call(np.stack(images[i:i + batch]))
        return n

    def e2e_zip():
        source = open_export(task)
        try:
            return list(predict(detector, source, threshold=THRESHOLD, batch_size=batch))
        finally:
            source.close()

    def e2e_folder():
        return list(predict(detector, [jpg], threshold=THRESHOLD, batch_size=batch))

    ways = {"bare": bare, "e2e zip": e2e_zip, "e2e folder": e2e_folder}
    # predict's own first-use costs (imports, the decode pool), on a few frames
    list(predict(detector, [jpg], threshold=THRESHOLD, batch_size=batch, limit=2 * batch))
    runs: dict[str, list[dict]] = {w: [] for w in ways}
    for k in range(repeats):
        for name, fn in ways.items():
            wall, cpu, out = timed(fn)
            frames = out if isinstance(out, int) else len(out)
            if frames != n:
                raise SystemExit(f"{name} gave {frames} frames, expected {n}")
            r = {"seconds": wall, "cpu_s": cpu, "fps": n / wall}
            if not isinstance(out, int):
                r["shapes"] = sum(len(p.frame.shapes) for p in out)
            runs[name].append(r)
        print(f"  batch {batch} round {k + 1}/{repeats}: " + ", ".join(
            f"{w} {runs[w][-1]['fps']:.0f}" for w in ways) + " frames/s", flush=True)
    med = {w: {"fps": statistics.median(r["fps"] for r in rs),
               "cpu_ms_per_frame": 1000 * statistics.median(r["cpu_s"] for r in rs) / n,
               "shapes": rs[0].get("shapes")}
           for w, rs in runs.items()}
    return {"batch": batch, "median": med, "runs": runs}


def profile(detector, task: Path, images: list[np.ndarray], batch: int) -> dict:
    """Per-frame costs of the parts of predict that bare leaves out, each on its own."""
    from cvatkit import open_export
    from cvatkit.images import decode_rgb

    source = open_export(task)
    try:
        frames = list(source.frames())
        t0 = time.perf_counter()
        blobs = [source.read_image(f) for f in frames]
        read_ms = 1000 * (time.perf_counter() - t0) / len(frames)
    finally:
        source.close()
    t0 = time.perf_counter()
    for i, data in enumerate(blobs):
        decode_rgb(data, str(i))
    decode_ms = 1000 * (time.perf_counter() - t0) / len(blobs)
    n = min(len(images), 64)  # the outputs of 64 frames, kept (the calls are not timed)
    outs = [(detector.call(np.stack(images[i:i + batch])), min(batch, n - i))
            for i in range(0, n, batch)]
    t0 = time.perf_counter()
    for out, size in outs:
        for j in range(size):
            detector._shapes(out, j, images[0].shape[1], images[0].shape[0], (1.0, 1.0),
                             THRESHOLD, 100, False)  # frames go in at their own size
    post_ms = 1000 * (time.perf_counter() - t0) / n
    return {"read_ms": read_ms, "decode_ms": decode_ms, "postprocess_ms": post_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path,
                    help="a run folder or export (default: train one, cached in --work)")
    ap.add_argument("--batch-sizes", default="1,8", help="comma-separated (default 1,8)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the median counts")
    ap.add_argument("--frames", type=int, default=500, help="frames of the sample task")
    ap.add_argument("--train-steps", type=int, default=600,
                    help="steps when training the default model")
    ap.add_argument("--work", type=Path, default=Path("bench/work/predict"))
    ap.add_argument("--no-v2-reference", dest="v2_reference", action="store_false",
                    help="skip the NMS v2 export's bare call (slow: ~70 ms a frame)")
    args = ap.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if not batch_sizes or min(batch_sizes) < 1 or args.repeats < 1:
        ap.error("batch sizes and --repeats must be at least 1")
    t_start = time.perf_counter()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    task, jpg = make_frames(work, args.frames)
    model = args.model or make_model(work, task, args.train_steps)

    from cvatkit import open_export
    from cvatkit.inference import load_detector
    from cvatkit.images import decode_rgb

    detector = load_detector(model)
    if detector.info.batch_size is not None:
        batch_sizes = [detector.info.batch_size]
        print(f"the model takes batches of {detector.info.batch_size} only", flush=True)
    source = open_export(task)
    images = [decode_rgb(source.read_image(f), f.name) for f in source.frames()]
    source.close()
    print(f"model {model} ({detector.info.kind}), {len(images)} frames of "
          f"{images[0].shape[1]}x{images[0].shape[0]}, {os.cpu_count()} CPUs", flush=True)

    results = [measure(detector, task, jpg, images, b, args.repeats) for b in batch_sizes]
    profiles = {r["batch"]: profile(detector, task, images, r["batch"]) for r in results}
    old = v2_export(work, model) if args.v2_reference else None
    if old is not None:
        slow = load_detector(old)
        for r in results:
            r["median"]["v2 bare"] = bare_rate(slow, images, r["batch"])
            print(f"  batch {r['batch']}: NMS v2 bare "
                  f"{r['median']['v2 bare']['fps']:.1f} frames/s", flush=True)

    print(f"\n{'batch':>5}  {'way':<11}{'frames/s':>9}{'CPU ms/frame':>14}{'shapes':>8}"
          f"{'e2e/bare':>10}")
    for r in results:
        bare = r["median"]["bare"]["fps"]
        for way, m in r["median"].items():
            ratio = "" if way in ("bare", "v2 bare") else f"{m['fps'] / bare:.2f}x"
            print(f"{r['batch']:>5}  {way:<11}{m['fps']:>9.1f}{m['cpu_ms_per_frame']:>14.2f}"
                  f"{m['shapes'] if m['shapes'] is not None else '':>8}{ratio:>10}")
    print("\nper frame, on its own: " + "; ".join(
        f"batch {b}: read {p['read_ms']:.3f} ms, decode {p['decode_ms']:.3f} ms, "
        f"postprocess {p['postprocess_ms']:.3f} ms" for b, p in profiles.items()))
    out = work / "predict-results.json"
    out.write_text(json.dumps({
        "model": str(model), "frames": len(images), "repeats": args.repeats,
        "cpus": os.cpu_count(), "results": results, "profile": profiles,
        "seconds": time.perf_counter() - t_start}, indent=2))
    print(f"results: {out} ({time.perf_counter() - t_start:.0f} s in all)")
    for r in results:
        bare = r["median"]["bare"]["fps"]
        print(f"predict end-to-end / bare call: "
              f"{r['median']['e2e zip']['fps'] / bare:.2f}x zip, "
              f"{r['median']['e2e folder']['fps'] / bare:.2f}x folder "
              f"(batch {r['batch']}; target >= {TARGET}x)")
        if "v2 bare" in r["median"]:
            print(f"bare call, this export / NMS v2 export: "
                  f"{bare / r['median']['v2 bare']['fps']:.1f}x (batch {r['batch']}; "
                  f"target >= 10x)")


if __name__ == "__main__":
    main()
