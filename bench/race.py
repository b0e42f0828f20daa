"""Benchmark: COCO AP against CPU-seconds, cvatkit vs Ultralytics YOLO, side by side.

Both tools train from random weights on the same 400 frames of the built-in sample on the
CPU, and both models are scored by the same pycocotools evaluation (COCO AP and AP@0.5,
boxes, every detection each model gives) on the same 60 held-out frames. A run's cost is
the CPU-seconds (user + system) of its processes, from start to the trained model: for
cvatkit, planning the run and its trainer (`cvatkit worker`: start-up, tracing, steps,
checkpoints, its final evaluation, the export); for YOLO, its `train` (start-up, epochs,
its final validation). Predicting the held-out frames is not counted for either. Each
tool runs at its budgets (cvatkit: training steps of its recipe for small tasks,
ssd-mobilenet-v2-small with `demo/sample.hparams`; YOLO: epochs, 128 px, batch 16). The
tools run at the same time, each on a CPU core of its own (one compute thread each).

Ultralytics lives in its own venv, bench/.venv-ultralytics (made on first use from
bench/requirements-ultralytics.txt); the model comes from its yaml, nothing is downloaded.

    .venv/bin/python bench/race.py [--steps 700,1100,2400] [--epochs 20,40,90]
        [--model KEY] [--hparams FILE] [--yolo yolo11n.yaml] [--yolo-imgsz 128]
        [--work bench/work/race] [--one-after-the-other]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
YOLO_VENV = BENCH / ".venv-ultralytics"
YOLO_PY = YOLO_VENV / "bin" / "python"
MODEL = "ssd-mobilenet-v2-small"
RECIPE = ROOT / "demo" / "sample.hparams"
IMAGE_SIZE = 128
BATCH = 16


def cpu_seconds_of(cmd: list[str], *, log: Path, env: dict[str, str] | None = None,
                   core: int | None = None) -> float:
    """Run ``cmd`` to its end (on CPU ``core`` only, if given); the CPU-seconds (user +
    system) of it and of the processes it waited for."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pin,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own, whatever runs beside
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed; see {log}")
    return usage.ru_utime + usage.ru_stime


# -- the data --------------------------------------------------------------------------------

def make_data(work: Path) -> dict[str, Path]:
    """The sample (400 frames + 60 held out) as cvatkit prepares it (all 400 to train,
    the 60 to evaluate) and as a YOLO dataset of the same frames and boxes."""
    from cvatkit import open_export, prepare, write_sample

    sample = work / "sample"
    if not (sample / "test.zip").exists():
        shutil.rmtree(sample, ignore_errors=True)
        write_sample(sample, frames=400, test_frames=60)
    paths = {"train": work / "train-data", "test": work / "test-data", "yolo": work / "yolo"}
    for key, zip_name, val in (("train", "task.zip", 0.0), ("test", "test.zip", 1.0)):
        if not (paths[key] / "dataset.json").exists():
            shutil.rmtree(paths[key], ignore_errors=True)
            source = open_export(sample / zip_name)
            try:
                prepare(source, paths[key], val_fraction=val)
            finally:
                source.close()
    if not (paths["yolo"] / "data.yaml").exists():
        names = None
        for split, zip_name in (("train", "task.zip"), ("val", "test.zip")):
            source = open_export(sample / zip_name)
            try:
                names = list(source.labels.names)
                images, labels = paths["yolo"] / "images" / split, \
                    paths["yolo"] / "labels" / split
                images.mkdir(parents=True, exist_ok=True)
                labels.mkdir(parents=True, exist_ok=True)
                for f in source.frames():
                    stem = Path(f.name).stem
                    (images / f"{stem}.jpg").write_bytes(source.read_image(f))
                    rows = []
                    for s in f.shapes:
                        x0, y0, x1, y1 = s.bbox()
                        rows.append(f"{names.index(s.label)} {(x0 + x1) / 2 / f.width:.6f} "
                                    f"{(y0 + y1) / 2 / f.height:.6f} "
                                    f"{(x1 - x0) / f.width:.6f} {(y1 - y0) / f.height:.6f}")
                    (labels / f"{stem}.txt").write_text("\n".join(rows) + "\n")
            finally:
                source.close()
        (paths["yolo"] / "data.yaml").write_text(
            f"path: {paths['yolo']}\ntrain: images/train\nval: images/val\nnames:\n"
            + "".join(f"  {i}: {n}\n" for i, n in enumerate(names)))
    return paths


# -- the two tools ---------------------------------------------------------------------------

def hparams(steps: int, recipe: Path) -> str:
    lines = [line.strip() for line in recipe.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    kept = [line for line in lines if not line.startswith(("num-steps=",
                                                            "checkpoint-interval="))]
    return "\n".join(kept + [f"num-steps={steps}", f"checkpoint-interval={steps}"])


def run_cvatkit(steps: int, data: dict[str, Path], work: Path, *, model: str = MODEL,
                recipe: Path = RECIPE, core: int | None = None) -> dict:
    run = work / f"cvatkit-{steps}"
    shutil.rmtree(run, ignore_errors=True)
    plan = ("from cvatkit.training import plan_run, start_run; "
            f"p = plan_run({str(data['train'])!r}, {model!r}, {hparams(steps, recipe)!r}, "
            f"weights='none', eval_data={str(data['test'])!r}); "
            f"start_run(p, {str(run)!r}, launch=False)")
    t0 = time.monotonic()
    cpu = cpu_seconds_of([sys.executable, "-c", plan], log=work / f"cvatkit-{steps}-plan.log",
                         core=core)
    cpu += cpu_seconds_of([sys.executable, "-m", "cvatkit", "worker", str(run)],
                          log=work / f"cvatkit-{steps}.log", core=core)
    wall = time.monotonic() - t0
    spec = json.loads((run / "run.json").read_text())
    return {"tool": "cvatkit", "budget": f"{steps} steps", "cpu": cpu, "wall": wall,
            "export": str(run / "export"), "model": spec["model"]["key"],
            "image_size": spec["hparams"]["image-size"],
            "costs": spec.get("costs", {}).get("cpu_s", {})}


def cvatkit_detections(export: Path, test: Path) -> list[dict]:
    from cvatkit import open_export
    from cvatkit.inference import SCORE_FLOOR, load_detector, predict

    out = []
    source = open_export(test.parent / "sample" / "test.zip")
    try:
        for p in predict(load_detector(export), source, threshold=SCORE_FLOOR):
            for s in p.frame.shapes:
                x0, y0, x1, y1 = s.bbox()
                out.append({"file_name": p.frame.name, "label": s.label,
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s.score})
    finally:
        source.close()
    return out


def ensure_yolo_venv() -> None:
    if YOLO_PY.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(YOLO_VENV)], check=True)
    subprocess.run([str(YOLO_PY), "-m", "pip", "install", "-q", "-r",
                    str(BENCH / "requirements-ultralytics.txt")], check=True)


def run_yolo(epochs: int, model: str, data: dict[str, Path], work: Path, *,
             imgsz: int = IMAGE_SIZE, core: int | None = None) -> dict:
    out = work / f"yolo-{epochs}"
    shutil.rmtree(out, ignore_errors=True)
    env = {"YOLO_CONFIG_DIR": str(work / "yolo-settings"), "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    cpu = cpu_seconds_of([str(YOLO_PY), str(BENCH / "race_yolo.py"), "train",
                          str(data["yolo"] / "data.yaml"), str(out), "--model", model,
                          "--epochs", str(epochs), "--imgsz", str(imgsz), "--batch",
                          str(BATCH), "--threads", "1"], log=work / f"yolo-{epochs}.log",
                         env=env, core=core)
    wall = time.monotonic() - t0
    found = work / f"yolo-{epochs}-detections.json"
    cpu_seconds_of([str(YOLO_PY), str(BENCH / "race_yolo.py"), "predict",
                    str(out / "weights" / "last.pt"), str(data["yolo"] / "images" / "val"),
                    str(found), "--imgsz", str(imgsz)],
                   log=work / f"yolo-{epochs}-predict.log", env=env, core=core)
    return {"tool": "YOLO", "budget": f"{epochs} epochs", "cpu": cpu, "wall": wall,
            "model": model, "image_size": imgsz,
            "detections": json.loads(found.read_text())}


# -- one evaluation for both -----------------------------------------------------------------

def coco_ap(detections: list[dict], test: Path) -> tuple[float, float]:
    """COCO AP and AP@0.5 (pycocotools, boxes) of ``detections`` on the held-out frames."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(test / "val_coco.json"))
    image_id = {img["file_name"]: img["id"] for img in gt.dataset["images"]}
    category = {c["name"]: c["id"] for c in gt.dataset["categories"]}
    results = [{"image_id": image_id[d["file_name"]], "category_id": category[d["label"]],
                "bbox": [float(v) for v in d["bbox"]], "score": float(d["score"])}
               for d in detections]
    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def versions() -> str:
    from importlib import metadata

    yolo = subprocess.run([str(YOLO_PY), "-c", "from importlib import metadata as m; "
                           "print(m.version('ultralytics'), m.version('torch'))"],
                          capture_output=True, text=True).stdout.split()
    return (f"cvatkit {metadata.version('cvatkit-train')} (TensorFlow "
            f"{metadata.version('tensorflow')}, tf-models-official "
            f"{metadata.version('tf-models-official')}); Ultralytics {yolo[0]} (torch "
            f"{yolo[1]})" if len(yolo) == 2 else "Ultralytics: not found")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="700,1100,2400", help="cvatkit's budgets (steps)")
    p.add_argument("--epochs", default="20,40,90", help="YOLO's budgets (epochs)")
    p.add_argument("--yolo", default="yolo11n.yaml", help="the YOLO model's yaml")
    p.add_argument("--model", default=MODEL, help="cvatkit's model (a catalog key)")
    p.add_argument("--hparams", type=Path, default=RECIPE,
                   help="cvatkit's hyperparameters (num-steps and checkpoint-interval are "
                        "the budget's)")
    p.add_argument("--yolo-imgsz", type=int, default=IMAGE_SIZE,
                   help="YOLO's input size (a multiple of 32)")
    p.add_argument("--work", type=Path, default=BENCH / "work" / "race")
    p.add_argument("--one-after-the-other", action="store_true",
                   help="run the tools in turn on every core instead of side by side, each "
                        "on a core of its own")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ensure_yolo_venv()
    data = make_data(args.work)
    steps = [int(s) for s in args.steps.split(",") if s]
    epochs = [int(e) for e in args.epochs.split(",") if e]
    side_by_side = not args.one_after_the_other and len(os.sched_getaffinity(0)) >= 2
    cores = sorted(os.sched_getaffinity(0))[:2] if side_by_side else [None, None]

    def cvatkit_runs() -> list[dict]:
        return [run_cvatkit(n, data, args.work, model=args.model, recipe=args.hparams,
                            core=cores[0]) for n in steps]

    def yolo_runs() -> list[dict]:
        return [run_yolo(n, args.yolo, data, args.work, imgsz=args.yolo_imgsz,
                         core=cores[1]) for n in epochs]

    if side_by_side:  # at the same time, each tool on a core of its own (one thread each)
        with ThreadPoolExecutor(2) as pool:
            ours, theirs = pool.submit(cvatkit_runs), pool.submit(yolo_runs)
            rows = ours.result() + theirs.result()
    else:
        rows = cvatkit_runs() + yolo_runs()
    for r in rows:  # after the timed runs: predicting does not run beside them
        if r["tool"] == "cvatkit":
            r["detections"] = cvatkit_detections(Path(r.pop("export")), data["test"])
        r["ap"], r["ap50"] = coco_ap(r.pop("detections"), data["test"])
    print(f"side by side, each tool on CPU core {cores[0]} and {cores[1]}" if side_by_side
          else "one tool after the other, on every core")
    print(versions())
    print(f"{'tool':<8} {'model':<24} {'px':>4} {'budget':<11} {'CPU s':>7} {'wall s':>7} "
          f"{'COCO AP':>8} {'AP@0.5':>7}")
    for r in rows:
        print(f"{r['tool']:<8} {r['model']:<24} {r['image_size']:>4} {r['budget']:<11} "
              f"{r['cpu']:7.0f} {r['wall']:7.0f} {r['ap']:8.3f} {r['ap50']:7.3f}")
    series = {tool: sorted((r for r in rows if r["tool"] == tool), key=lambda r: r["cpu"])
              for tool in ("cvatkit", "YOLO")}
    for tool, other in (("cvatkit", "YOLO"), ("YOLO", "cvatkit")):
        for r in series[tool]:
            peer = _at(series[other], r["cpu"])
            print(f"{tool} {r['budget']}: AP {r['ap']:.3f} in {r['cpu']:.0f} CPU s; {other} "
                  + (f"at the same CPU s (interpolated): {peer:.3f} (difference "
                     f"{r['ap'] - peer:+.3f})" if peer is not None
                     else "has no runs on both sides of it"))
    for r in series["cvatkit"]:
        if r.get("costs"):
            print(f"cvatkit {r['budget']}, its CPU s: " + ", ".join(
                f"{k} {v:.0f}" for k, v in r["costs"].items()))
    (args.work / "results.json").write_text(json.dumps(rows, indent=1))


def _at(series: list[dict], cpu: float) -> float | None:
    """The AP of ``series`` (sorted by CPU s) at ``cpu``, linearly between its runs;
    None outside them."""
    for a, b in zip(series, series[1:]):
        if a["cpu"] <= cpu <= b["cpu"]:
            t = (cpu - a["cpu"]) / max(b["cpu"] - a["cpu"], 1e-9)
            return a["ap"] + t * (b["ap"] - a["ap"])
    return None


if __name__ == "__main__":
    main()
