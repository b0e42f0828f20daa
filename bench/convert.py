"""Benchmark: `cvatkit prepare` against datumaro's `datum convert` to TFRecords.

Both read the same "CVAT for images 1.1" export (640x480 JPEG frames, boxes and polygons),
unzipped once into the work folder, and write TF Object Detection API TFRecords with the
images inside. Each tool runs as a child process, twice, alternating; the best wall time
counts. Peak RSS is the child's ru_maxrss from os.wait4 (Linux reports there the larger of
the child's own peak and that of any descendant it reaped) and, sampled every 50 ms, the
summed VmRSS of the child's whole process tree. See bench/README.md.

    .venv/bin/python bench/convert.py [--frames 5000] [--small 1000] [--work bench/work]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cvatkit.records import Frame, LabelMap, Shape
from cvatkit.cvat import write_cvat_xml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CVATKIT = ROOT / ".venv" / "bin" / "cvatkit"
DM_VENV = BENCH / ".venv-datumaro"
DATUM = DM_VENV / "bin" / "datum"
W, H = 640, 480
GEN_VERSION = 1  # bump when the generated frames change, to invalidate the cache
LABELS = LabelMap.from_names(
    ["box", "panel", "triangle", "blob"],
    types={"box": "rectangle", "panel": "rectangle", "triangle": "polygon", "blob": "polygon"})
RGB = {"box": (220, 40, 60), "panel": (240, 180, 30), "triangle": (40, 170, 60),
       "blob": (60, 90, 210)}


# -- the input: a deterministic CVAT export --------------------------------------------

def layout(seed: int, i: int) -> Frame:
    """Frame i's shapes: 1-6 per frame, rectangles and polygons of 4 labels."""
    rng = np.random.default_rng([seed, i, 0])
    shapes = []
    for _ in range(int(rng.integers(1, 7))):
        label = LABELS.names[int(rng.integers(0, len(LABELS)))]
        w, h = rng.uniform(30, 200), rng.uniform(30, 200)
        x0, y0 = rng.uniform(0, W - w), rng.uniform(0, H - h)
        if LABELS.labels[LABELS.id_of(label) - 1].type == "rectangle":
            pts = (x0, y0, x0 + w, y0 + h)
            shapes.append(Shape(kind="rectangle", label=label,
                                points=tuple(round(v, 2) for v in pts)))
            continue
        n = 3 if label == "triangle" else int(rng.integers(5, 13))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.6, 1.0, n) if label == "blob" else np.ones(n)
        cx, cy = x0 + w / 2, y0 + h / 2
        pts = [(cx + r * w / 2 * math.cos(a), cy + r * h / 2 * math.sin(a))
               for a, r in zip(angles, radii)]
        shapes.append(Shape(kind="polygon", label=label,
                            points=tuple(round(v, 2) for p in pts for v in p)))
    return Frame(index=i, name=f"frame_{i:06d}.jpg", width=W, height=H, shapes=tuple(shapes))


def render(seed: int, frame: Frame) -> bytes:
    """The frame's JPEG: a noisy gradient background with its shapes filled in."""
    rng = np.random.default_rng([seed, frame.index, 1])
    base = rng.uniform(120, 235, size=3)
    gx = np.linspace(-1, 1, W)[None, :, None] * rng.uniform(-30, 30, size=3)
    gy = np.linspace(-1, 1, H)[:, None, None] * rng.uniform(-30, 30, size=3)
    noise = rng.normal(0, 8, size=(H, W, 3))
    img = Image.fromarray(np.clip(base + gx + gy + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for s in frame.shapes:
        color = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in RGB[s.label])
        if s.kind == "rectangle":
            draw.rectangle(list(s.points), fill=color)
        else:
            draw.polygon(list(zip(s.points[0::2], s.points[1::2])), fill=color)
    buf = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(0.6)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def export_dir(work: Path, frames: int, seed: int = 0) -> Path:
    """The unzipped export of `frames` frames, made once and cached in `work`."""
    name = f"cvat-{W}x{H}-{frames}-v{GEN_VERSION}"
    folder, zpath = work / name, work / f"{name}.zip"
    if (folder / "annotations.xml").is_file():
        return folder
    if not zpath.is_file():
        print(f"generating {zpath} ({frames} frames, not timed)...", flush=True)
        zpath.parent.mkdir(parents=True, exist_ok=True)
        metas = [layout(seed, i) for i in range(frames)]
        write_cvat_xml(zpath, metas, LABELS, task_name=f"bench {frames}",
                       images=lambda f: render(seed, f))
    tmp = work / f"{name}.unzipping"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp)
    tmp.rename(folder)
    return folder


# -- running and measuring a child -----------------------------------------------------

def _tree_rss_kb(root: int) -> tuple[int, int]:
    """(summed VmRSS in kB, process count) of `root` and its descendants."""
    procs: dict[int, tuple[int, int]] = {}  # pid: (ppid, rss kB)
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        procs[int(d)] = (int(fields["PPid"]), int(fields.get("VmRSS", "0 kB").split()[0]))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in tree:
            tree.add(pid)
            todo.extend(p for p, (pp, _) in procs.items() if pp == pid)
    return sum(procs[p][1] for p in tree), len(tree)


def measure(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run `cmd`; its wall time, ru_maxrss and sampled process-tree peak RSS."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = {"kb": 0, "procs": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                kb, n = _tree_rss_kb(p.pid)
                peak["kb"], peak["procs"] = max(peak["kb"], kb), max(peak["procs"], n)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with exit code {p.returncode}; see {log}:\n"
                 + log.read_text()[-3000:])
    return {"wall_s": wall, "maxrss_mb": ru.ru_maxrss / 1024, "tree_peak_mb": peak["kb"] / 1024,
            "max_procs": peak["procs"], "cpu_s": ru.ru_utime + ru.ru_stime}


def records(out: Path):
    """The records of every *.tfrecord under `out`, read by the TFRecord framing:
    uint64 length, uint32 crc of the length, data, uint32 crc of the data."""
    for path in sorted(out.rglob("*.tfrecord")):
        with open(path, "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                yield f.read(length)
                f.seek(4, os.SEEK_CUR)


def count_objects(out: Path) -> int:
    """Objects (class labels) in the records: run after the timed runs, as it imports TF."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return sum(len(tf.train.Example.FromString(r).features.feature[
        "image/object/class/label"].int64_list.value) for r in records(out))


def ensure_datumaro() -> None:
    if not DATUM.exists():
        print(f"creating {DM_VENV} ...", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(DM_VENV)], check=True)
        subprocess.run([str(DM_VENV / "bin" / "pip"), "install", "-q", "-r",
                        str(BENCH / "requirements-datumaro.txt")], check=True)
    subprocess.run([str(DATUM), "convert", "--help"], check=True, stdout=subprocess.DEVNULL)


def command(tool: str, src: Path, out: Path) -> list[str]:
    if tool == "cvatkit":
        # What `make demo` and the app prepare for the default model: boxes only (it reads
        # no masks), the same kind of output as datumaro's.
        return [str(CVATKIT), "prepare", str(src), str(out), "--val-split", "0.1",
                "--model", "ssd-mobilenet-v2"]
    if tool == "cvatkit-masks":
        # What a mask model gets: an instance mask (PNG) for every polygon as well.
        return [str(CVATKIT), "prepare", str(src), str(out), "--val-split", "0.1",
                "--masks", "auto"]
    # --save-media puts the images into the records (image/encoded), as cvatkit does.
    return [str(DATUM), "convert", "-if", "cvat", "-i", str(src), "-f", "tf_detection_api",
            "-o", str(out), "--", "--save-media"]


def run_tool(tool: str, src: Path, out: Path, log: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    r = measure(command(tool, src, out), log, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    r["records"] = sum(1 for _ in records(out))
    print(f"  {tool:<13} {r['wall_s']:7.1f} s  ru_maxrss {r['maxrss_mb']:6.0f} MB  "
          f"tree peak {r['tree_peak_mb']:6.0f} MB ({r['max_procs']} process(es))  "
          f"records {r['records']}", flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=5000, help="frames of the main run")
    ap.add_argument("--small", type=int, default=1000,
                    help="frames of the cvatkit-only run that shows RSS is flat")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--runs", type=int, default=2, help="runs of each tool (best counts)")
    args = ap.parse_args()
    work = args.work.resolve()
    ensure_datumaro()
    src, small_src = export_dir(work, args.frames), export_dir(work, args.small)
    tools = ("cvatkit", "cvatkit-masks", "datumaro")
    outs = {t: work / f"out-{t}" for t in tools + ("cvatkit-small",)}
    for tool in tools:
        print(f"{tool}: {' '.join(command(tool, src, outs[tool]))}")

    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for k in range(args.runs):
        for tool in tools:
            print(f"run {k + 1}/{args.runs}: {tool} on {args.frames} frames", flush=True)
            runs[tool].append(run_tool(tool, src, outs[tool], work / f"{tool}.log"))
    print(f"cvatkit alone on {args.small} frames", flush=True)
    small = run_tool("cvatkit", small_src, outs["cvatkit-small"], work / "cvatkit-small.log")

    # Not timed: what went into the records, against what the export annotates.
    shapes = {n: sum(len(layout(0, i).shapes) for i in range(n))
              for n in (args.frames, args.small)}
    best = {t: min(rs, key=lambda r: r["wall_s"]) for t, rs in runs.items()}
    rows = [(args.frames, t, best[t], outs[t]) for t in best]
    rows.append((args.small, "cvatkit", small, outs["cvatkit-small"]))
    print(f"\n{'frames':>6}  {'tool':<13} {'wall s':>7} {'CPU s':>6} {'frames/s':>9} "
          f"{'peak RSS MB':>11} {'records':>7} {'objects':>15}")
    for n, tool, r, out in rows:
        r["objects"] = count_objects(out)
        print(f"{n:>6}  {tool:<13} {r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} "
              f"{n / r['wall_s']:>9.1f} {r['tree_peak_mb']:>11.0f} {r['records']:>7} "
              f"{r['objects']:>7} of {shapes[n]:<6}")
    speedup = best["datumaro"]["wall_s"] / best["cvatkit"]["wall_s"]
    speedup_masks = best["datumaro"]["wall_s"] / best["cvatkit-masks"]["wall_s"]
    rss_ratio = best["cvatkit"]["tree_peak_mb"] / small["tree_peak_mb"]
    print(f"\ndatumaro wall / cvatkit wall, the demo's prepare (boxes, as datumaro writes) = "
          f"{speedup:.2f}x (target >= 5x)")
    print(f"datumaro wall / cvatkit wall, cvatkit also writing polygon masks = "
          f"{speedup_masks:.2f}x (target >= 2x)")
    print(f"cvatkit peak RSS (all its processes): {best['cvatkit']['tree_peak_mb']:.0f} MB at "
          f"{args.frames} frames, {small['tree_peak_mb']:.0f} MB at {args.small} frames "
          f"(ratio {rss_ratio:.2f})")
    for n, tool, r, _ in rows:
        if r["records"] != n:
            print(f"WARNING: {tool} wrote {r['records']} records for {n} frames")

    results = {
        "frames": args.frames, "small": args.small, "image_size": [W, H],
        "cpus": os.cpu_count(), "annotated_shapes": shapes,
        "commands": {t: command(t, src, outs[t]) for t in tools},
        "runs": runs, "best": best, "small_cvatkit": small,
        "datumaro_over_cvatkit_wall": speedup,
        "datumaro_over_cvatkit_masks_wall": speedup_masks,
        "cvatkit_rss_ratio_vs_small": rss_ratio,
    }
    (work / "convert-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {work / 'convert-results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
