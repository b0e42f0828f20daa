"""Benchmark: COCO AP against CPU-seconds and wall seconds, cvatkit vs Ultralytics YOLO,
on any pair of CVAT exports (train, test).

Both tools train from random weights on the training export's frames on the CPU, at the
same input size (the one cvatkit's recipe fits to the task), at three or more budgets
each, and one evaluation (cvatkit's: pycocotools boxes, every detection of score 0.01 or
more, at most 100 per frame) scores both on the test export's frames: COCO AP, AP@0.5, AP
per label, and what pre-annotating would leave a person to correct at the threshold
`cvatkit evaluate` recommends (the fewest missed objects plus false boxes).

cvatkit runs its default: the model given (`ssd-mobilenet-v2-small`, the catalog's pick
for a task trained without internet) with no hyperparameters, so the recipe is the one
fitted to the task; its budgets are that recipe's steps times each of `--scales`. YOLO runs
`yolo11n.yaml` with its own defaults, except the input size and `pretrained=False`, for the
same passes over the frames (epochs = steps x batch / frames) or the epochs given. A run's
cost is the CPU-seconds (user + system) of its processes from start to the trained model (for
cvatkit, planning and `cvatkit worker`: start-up, tracing, steps, checkpoints, final
evaluation, export; for YOLO, `train`), and its wall seconds: the tools run one after the
other, each free to use every core (what a user waits for). Predicting the test frames
counts for neither.

Ultralytics lives in its own venv, bench/.venv-ultralytics (made on first use from
bench/requirements-ultralytics.txt); the model comes from its yaml, nothing is downloaded.

    .venv/bin/python bench/race.py [--train TRAIN_EXPORT --test TEST_EXPORT]
        [--model KEY] [--hparams FILE] [--scales 0.5,1,2] [--yolo-epochs 15,30,60]
        [--yolo yolo11n.yaml] [--work bench/work/race] [--reuse]

Without --train/--test: the built-in sample, 400 frames to train and 60 held out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
YOLO_VENV = BENCH / ".venv-ultralytics"
YOLO_PY = YOLO_VENV / "bin" / "python"
MODEL = "ssd-mobilenet-v2-small"
YOLO_BATCH = 16
"""Ultralytics' default batch."""


def cpu_seconds_of(cmd: list[str], *, log: Path, env: dict[str, str] | None = None) -> float:
    """Run ``cmd`` to its end; the CPU-seconds (user + system) of it and of the processes
    it waited for."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed; see {log}")
    return usage.ru_utime + usage.ru_stime


# -- the data --------------------------------------------------------------------------------

def sample_exports(work: Path) -> tuple[Path, Path]:
    from cvatkit import write_sample

    sample = work / "sample"
    if not (sample / "test.zip").exists():
        shutil.rmtree(sample, ignore_errors=True)
        write_sample(sample, frames=400, test_frames=60)
    return sample / "task.zip", sample / "test.zip"


def make_data(train: Path, test: Path, work: Path) -> dict[str, Path]:
    """Both exports as cvatkit prepares them (all training frames to train, every test
    frame to evaluate) and as one YOLO dataset; made again when the exports change."""
    from cvatkit import open_export, prepare

    key = hashlib.sha256(json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime]
                                     for p in (train, test)]).encode()).hexdigest()[:12]
    data = work / f"data-{key}"
    paths = {"train": data / "train", "test": data / "test", "yolo": data / "yolo",
             "test_export": test}
    if (data / "done").exists():
        return paths
    shutil.rmtree(data, ignore_errors=True)
    for which, export, val in (("train", train, 0.0), ("test", test, 1.0)):
        source = open_export(export)
        try:
            prepare(source, paths[which], val_fraction=val)
        finally:
            source.close()
    names = None
    for split, export in (("train", train), ("val", test)):
        source = open_export(export)
        try:
            names = list(source.labels.names)
            images, labels = paths["yolo"] / "images" / split, paths["yolo"] / "labels" / split
            images.mkdir(parents=True)
            labels.mkdir(parents=True)
            for i, f in enumerate(source.frames()):
                stem = f"{i:06d}"
                suffix = Path(source.image_name(f)).suffix.lower() or ".jpg"
                (images / f"{stem}{suffix}").write_bytes(source.read_image(f))
                rows = []
                for s in f.shapes:
                    x0, y0, x1, y1 = s.bbox()
                    x0, y0 = max(0.0, x0), max(0.0, y0)
                    x1, y1 = min(float(f.width), x1), min(float(f.height), y1)
                    if x1 <= x0 or y1 <= y0 or s.label not in names:
                        continue
                    rows.append(f"{names.index(s.label)} {(x0 + x1) / 2 / f.width:.6f} "
                                f"{(y0 + y1) / 2 / f.height:.6f} "
                                f"{(x1 - x0) / f.width:.6f} {(y1 - y0) / f.height:.6f}")
                (labels / f"{stem}.txt").write_text("".join(r + "\n" for r in rows))
                if split == "val":
                    with open(data / "val-names.tsv", "a") as out:
                        out.write(f"{stem}{suffix}\t{f.name}\n")
        finally:
            source.close()
    (paths["yolo"] / "data.yaml").write_text(
        f"path: {paths['yolo']}\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names)))
    (data / "done").write_text("")
    return paths


# -- the two tools ---------------------------------------------------------------------------

def fitted_plan(data: dict[str, Path], model: str, hparams: str):
    """cvatkit's plan of the default run (from random weights): the recipe fitted to the
    training data, and its notes."""
    from cvatkit.training import plan_run

    return plan_run(data["train"], model, hparams, weights="none",
                    eval_data=data["test"], fetch=False)


def kept(work: Path, name: str, train, *, reuse: bool) -> dict:
    """The row of run ``name``: trained now (and kept in ``NAME.row.json``), or, with
    ``reuse``, the one a finished earlier run kept."""
    row_file = work / f"{name}.row.json"
    if reuse and row_file.is_file():
        return json.loads(row_file.read_text())
    row = train()
    row_file.write_text(json.dumps(row, indent=1))
    return row


def run_cvatkit(steps: int, default_steps: int, data: dict[str, Path], work: Path, *,
                model: str, hparams: str) -> dict:
    run = work / f"cvatkit-{steps}"
    shutil.rmtree(run, ignore_errors=True)
    text = hparams if steps == default_steps else (
        hparams + f"\nnum-steps={steps}")
    plan = ("from cvatkit.training import plan_run, start_run; "
            f"p = plan_run({str(data['train'])!r}, {model!r}, {text!r}, weights='none', "
            f"eval_data={str(data['test'])!r}); start_run(p, {str(run)!r}, launch=False)")
    t0 = time.monotonic()
    cpu = cpu_seconds_of([sys.executable, "-c", plan], log=work / f"cvatkit-{steps}-plan.log")
    cpu += cpu_seconds_of([sys.executable, "-m", "cvatkit", "worker", str(run)],
                          log=work / f"cvatkit-{steps}.log")
    wall = time.monotonic() - t0
    from cvatkit.training import read_record

    record = read_record(run)
    return {"tool": "cvatkit", "budget": f"{steps} steps", "cpu": cpu, "wall": wall,
            "export": str((run / "export").resolve()), "model": record.model.key,
            "image_size": record.hparams.image_size,
            "costs": record.costs.cpu_s if record.costs is not None else {}}


def ensure_yolo_venv() -> None:
    if YOLO_PY.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(YOLO_VENV)], check=True)
    subprocess.run([str(YOLO_PY), "-m", "pip", "install", "-q", "-r",
                    str(BENCH / "requirements-ultralytics.txt")], check=True)


def run_yolo(epochs: int, model: str, data: dict[str, Path], work: Path, *, imgsz: int,
             threads: int) -> dict:
    out = work / f"yolo-{epochs}"
    shutil.rmtree(out, ignore_errors=True)
    env = {"YOLO_CONFIG_DIR": str(work / "yolo-settings"), "OMP_NUM_THREADS": str(threads)}
    t0 = time.monotonic()
    cpu = cpu_seconds_of([str(YOLO_PY), str(BENCH / "race_yolo.py"), "train",
                          str(data["yolo"] / "data.yaml"), str(out), "--model", model,
                          "--epochs", str(epochs), "--imgsz", str(imgsz), "--batch",
                          str(YOLO_BATCH), "--threads", str(threads)],
                         log=work / f"yolo-{epochs}.log", env=env)
    wall = time.monotonic() - t0
    found = work / f"yolo-{epochs}-detections.json"
    cpu_seconds_of([str(YOLO_PY), str(BENCH / "race_yolo.py"), "predict",
                    str(out / "weights" / "last.pt"), str(data["yolo"] / "images" / "val"),
                    str(found), "--imgsz", str(imgsz), "--threads", str(threads)],
                   log=work / f"yolo-{epochs}-predict.log", env=env)
    return {"tool": "YOLO", "budget": f"{epochs} epochs", "cpu": cpu, "wall": wall,
            "model": model, "image_size": imgsz, "detections": str(found)}


# -- one evaluation for both -----------------------------------------------------------------

def score(row: dict, data: dict[str, Path]) -> None:
    """COCO AP, AP@0.5, AP per label and the fewest corrections of ``row``'s model on the
    test frames, by cvatkit's evaluation (the same for both tools)."""
    from dataclasses import replace

    from cvatkit import open_export
    from cvatkit.inference import SCORE_FLOOR, Prediction, evaluate, load_detector, predict
    from cvatkit.records import Shape

    source = open_export(data["test_export"])
    try:
        names = list(source.labels.names)
        if row["tool"] == "cvatkit":
            predictions = list(predict(load_detector(Path(row.pop("export"))), source,
                                       threshold=SCORE_FLOOR))
        else:
            frame_of = dict(line.split("\t") for line in (
                data["yolo"].parent / "val-names.tsv").read_text().splitlines())
            by_frame: dict[str, list[Shape]] = {}
            for d in json.loads(Path(row.pop("detections")).read_text()):
                if d["score"] < SCORE_FLOOR:
                    continue
                x, y, w, h = d["bbox"]
                by_frame.setdefault(frame_of[d["file_name"]], []).append(
                    Shape(kind="rectangle", label=d["label"], points=(x, y, x + w, y + h),
                          score=d["score"]))
            predictions = [Prediction(frame=replace(f, shapes=tuple(by_frame.get(f.name, ()))),
                                      ground_truth=f.shapes) for f in source.frames()]
    finally:
        source.close()
    ev = evaluate(predictions, names)
    row.update(ap=ev.ap, ap50=ev.ap50, per_label={c.label: c.ap for c in ev.per_class},
               annotated=ev.annotated, frames=ev.frames)
    if ev.fewest:
        at, found, false = ev.fewest
        row.update(threshold=at, found=found / ev.annotated, false_per_frame=false / ev.frames)


def versions() -> str:
    from importlib import metadata

    yolo = subprocess.run([str(YOLO_PY), "-c", "from importlib import metadata as m; "
                           "print(m.version('ultralytics'), m.version('torch'))"],
                          capture_output=True, text=True).stdout.split()
    return (f"cvatkit {metadata.version('cvatkit-train')} (TensorFlow "
            f"{metadata.version('tensorflow')}, tf-models-official "
            f"{metadata.version('tf-models-official')}); Ultralytics {yolo[0]} (torch "
            f"{yolo[1]})" if len(yolo) == 2 else "Ultralytics: not found")


def table(rows: list[dict], labels: list[str]) -> list[str]:
    """The results as a markdown table."""
    head = (["tool", "model", "px", "budget", "CPU s", "wall s", "COCO AP", "AP@0.5"]
            + [f"AP {n}" for n in labels] + ["at", "found", "false/frame"])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["tool"], r["model"], str(r["image_size"]), r["budget"], f"{r['cpu']:.0f}",
                 f"{r['wall']:.0f}", f"{r['ap']:.3f}", f"{r['ap50']:.3f}",
                 *(f"{r['per_label'].get(n, -1):.3f}" for n in labels),
                 f"{r.get('threshold', 0):g}", f"{100 * r.get('found', 0):.0f}%",
                 f"{r.get('false_per_frame', 0):.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out


def comparisons(rows: list[dict]) -> list[str]:
    """Each run against the other tool's curve at the same CPU-seconds, and the
    CPU-seconds cvatkit needs for each YOLO run's AP."""
    series = {tool: sorted((r for r in rows if r["tool"] == tool), key=lambda r: r["cpu"])
              for tool in ("cvatkit", "YOLO")}
    out = []
    for tool, other in (("cvatkit", "YOLO"), ("YOLO", "cvatkit")):
        for r in series[tool]:
            peer = _at(series[other], r["cpu"], "cpu", "ap")
            out.append(f"{tool} {r['budget']}: AP {r['ap']:.3f} in {r['cpu']:.0f} CPU s; "
                       f"{other} at the same CPU s (interpolated): " +
                       (f"{peer:.3f} ({tool} {r['ap'] - peer:+.3f})" if peer is not None
                        else "outside its runs"))
    for r in series["YOLO"]:
        need = _at(series["cvatkit"], r["ap"], "ap", "cpu")
        out.append(f"YOLO {r['budget']}: AP {r['ap']:.3f} in {r['cpu']:.0f} CPU s; cvatkit "
                   "reaches it in " + (f"{need:.0f} CPU s ({need / r['cpu']:.2f}x)"
                                       if need is not None else "none of its runs' range"))
    return out


def _at(series: list[dict], x: float, xkey: str, ykey: str) -> float | None:
    """``ykey`` of ``series`` at ``xkey`` = ``x``, linearly between its runs (sorted by
    ``xkey``); None outside them."""
    points = sorted(series, key=lambda r: r[xkey])
    for a, b in zip(points, points[1:]):
        if a[xkey] <= x <= b[xkey]:
            t = (x - a[xkey]) / max(b[xkey] - a[xkey], 1e-9)
            return a[ykey] + t * (b[ykey] - a[ykey])
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=Path, help="the CVAT export to train on")
    p.add_argument("--test", type=Path, help="the CVAT export to score on")
    p.add_argument("--model", default=MODEL, help="cvatkit's model (a catalog key)")
    p.add_argument("--hparams", type=Path,
                   help="cvatkit's hyperparameters (none: the recipe fitted to the task)")
    p.add_argument("--scales", default="0.5,1,2",
                   help="the budgets: the fitted num-steps times each (YOLO: as many passes)")
    p.add_argument("--yolo-epochs", default="",
                   help="YOLO's budgets in epochs (default: as many passes as cvatkit's)")
    p.add_argument("--yolo", default="yolo11n.yaml", help="the YOLO model's yaml")
    p.add_argument("--work", type=Path, default=BENCH / "work" / "race")
    p.add_argument("--reuse", action="store_true",
                   help="keep the runs an earlier race in the same work folder finished")
    args = p.parse_args()
    args.work = args.work.resolve()  # Ultralytics puts a relative folder under its own runs/
    if (args.train is None) != (args.test is None):
        p.error("give both --train and --test, or neither (the built-in sample)")
    args.work.mkdir(parents=True, exist_ok=True)
    ensure_yolo_venv()
    train, test = (args.train, args.test) if args.train else sample_exports(args.work)
    data = make_data(train, test, args.work)
    hparams = args.hparams.read_text() if args.hparams else ""
    plan = fitted_plan(data, args.model, hparams)
    size, steps, batch = plan.hparams.image_size, plan.hparams.num_steps, \
        plan.hparams.batch_size
    frames = plan.data.train_frames
    scales = [float(s) for s in args.scales.split(",") if s]
    budgets = [max(50, round(steps * s / 50) * 50) for s in scales]
    epochs = ([int(e) for e in args.yolo_epochs.split(",") if e] if args.yolo_epochs else
              [max(1, round(b * batch / frames)) for b in budgets])
    threads = len(os.sched_getaffinity(0))
    print(f"{train.name}: {frames} training frames; {test.name}: {plan.eval_data.val_frames} "
          f"test frames; both tools at {size} px")
    for note in plan.notes:
        print(f"  cvatkit's recipe: {note}")
    rows = [kept(args.work, f"cvatkit-{b}", lambda b=b: run_cvatkit(
        b, steps, data, args.work, model=args.model, hparams=hparams), reuse=args.reuse)
        for b in budgets]
    rows += [kept(args.work, f"yolo-{e}", lambda e=e: run_yolo(
        e, args.yolo, data, args.work, imgsz=size, threads=threads), reuse=args.reuse)
        for e in epochs]
    for r in rows:  # after the timed runs: predicting does not run beside them
        score(r, data)
    labels = list(plan.data.labels.names)
    lines = [f"{train} -> {test}, one tool after the other on {threads} cores",
             versions(), "", *table(rows, labels), "", *comparisons(rows)]
    for r in rows:
        if r.get("costs"):
            lines.append(f"cvatkit {r['budget']}, its CPU s: " + ", ".join(
                f"{k} {v:.0f}" for k, v in r["costs"].items()))
    print("\n".join(lines))
    (args.work / "results.md").write_text("\n".join(lines) + "\n")
    (args.work / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
