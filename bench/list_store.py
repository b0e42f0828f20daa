"""Benchmark: listing a model store of 1,000 versions, before and after.

A local SeaweedFS server (cvatkit's helper, 127.0.0.1) holds one namespace with N versions
over 4 model keys, each version laid out as `cvatkit publish` leaves it (14 objects: the
SavedModel, label files, checkpoint files, metrics.json, run.json, manifest.json), plus a
few versions without a manifest (publishes that broke off). The store is written once in
the work folder and reused. Then, alternating, in one process:

- **before**: the listing as it was: every object under the namespace listed, then each
  manifest read with one GET at a time;
- **after**: `cvatkit.store.list_models` (the folders listed level by level, manifests read
  16 at a time);
- **first page**: `model_pages(..., page=50)` up to its first page (what the app shows
  first);

and `cvatkit list` as a whole command (start-up included). Both listings must give the same
versions. See bench/README.md.

    .venv/bin/python bench/list_store.py [--versions 1000] [--repeats 3] [--work bench/work/list]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cvatkit.store import MANIFEST, list_models, model_pages, open_store
from cvatkit.store.s3_server import serve
from cvatkit.store.versions import _manifest, _version

BENCH = Path(__file__).resolve().parent
CVATKIT = Path(sys.executable).parent / "cvatkit"
BUCKET, NAMESPACE = "bench-list", "lab"
KEYS = ("ssd-mobilenet-v2", "frcnn-resnet50-coco", "retinanet-spinenet49-coco",
        "maskrcnn-resnet50-coco")
FILES = ("saved_model/saved_model.pb", "saved_model/variables/variables.index",
         "saved_model/variables/variables.data-00000-of-00001", "label_map.pbtxt",
         "classes.csv", "label_map.json", "model.json", "checkpoints/checkpoint",
         "checkpoints/ckpt-600.index", "checkpoints/ckpt-600.data-00000-of-00001",
         "metrics.json", "run.json")


def fill(store, versions: int) -> None:
    """N versions (every 50th without its manifest) of small objects."""
    def one(i: int) -> int:
        key = KEYS[i % len(KEYS)]
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1.7e9 + 3600 * i))
        version = "".join(c for c in created if c.isdigit())[:14] + f"-{i:010x}"
        prefix = f"{NAMESPACE}/models/{key}/{version}/"
        for name in FILES:
            store.put_bytes(prefix + name, b"x" * 64)
        if i % 50 != 49:
            store.put_bytes(prefix + MANIFEST, json.dumps({
                "format": 1, "namespace": NAMESPACE, "model_key": key, "version": version,
                "created": created, "labels": ["cat", "dog"], "metrics": {"ap": 0.5, "ap50": 0.9},
                "files": [{"path": n, "size": 64, "sha256": "0" * 64} for n in FILES],
            }).encode())
        return i

    with ThreadPoolExecutor(max_workers=16) as pool:
        for done, _ in enumerate(pool.map(one, range(versions)), start=1):
            if done % 200 == 0:
                print(f"  {done}/{versions} versions written", flush=True)


def list_before(store) -> list:
    """The listing as it was: every object, then one manifest GET at a time."""
    out = []
    for obj in store.list(f"{NAMESPACE}/models/"):
        if obj.key.endswith("/" + MANIFEST):
            data = store.get_bytes(obj.key)
            if data is not None:
                out.append(_version(store, obj.key[: -len(MANIFEST)], _manifest(data, obj.key)))
    return sorted(out, key=lambda v: (v.created, v.version), reverse=True)


def first_page(store) -> list:
    return next(iter(model_pages(store, NAMESPACE, page=50)))


def cli_list(uri: str, env: dict) -> int:
    done = subprocess.run([str(CVATKIT), "list", "--store", uri, "--store-namespace", NAMESPACE],
                          capture_output=True, text=True, env=env, check=True)
    return len([line for line in done.stdout.splitlines() if "/models/" in line])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=BENCH / "work" / "list")
    args = ap.parse_args()
    work = args.work.resolve()
    server = serve(work / f"s3-{args.versions}")
    try:
        env = {**os.environ, **server.env()}
        os.environ.update(server.env())
        uri = f"s3://{BUCKET}/store"
        store = open_store(uri, create_bucket=True)
        complete = args.versions - args.versions // 50
        if len(store.folders(f"{NAMESPACE}/models/")) < len(KEYS) or \
                len(list_models(store, NAMESPACE)) != complete:
            print(f"writing {args.versions} versions to {uri} (once) ...", flush=True)
            fill(store, args.versions)
        ways = {"before": lambda: list_before(store),
                "after": lambda: list_models(store, NAMESPACE),
                "first page": lambda: first_page(store),
                "cvatkit list": lambda: cli_list(uri, env)}
        times: dict[str, list[float]] = {w: [] for w in ways}
        found: dict[str, object] = {}
        for k in range(args.repeats):
            for name, fn in ways.items():
                t0 = time.perf_counter()
                found[name] = fn()
                times[name].append(time.perf_counter() - t0)
            print(f"  round {k + 1}: " + ", ".join(f"{w} {times[w][-1]:.2f} s" for w in ways),
                  flush=True)
        before, after = found["before"], found["after"]
        if [v.uri for v in before] != [v.uri for v in after]:
            raise SystemExit("the two listings disagree")
        if found["cvatkit list"] != complete or len(after) != complete:
            raise SystemExit(f"expected {complete} versions, listed {len(after)} "
                             f"(CLI: {found['cvatkit list']})")
        med = {w: statistics.median(t) for w, t in times.items()}
        print(f"\n{args.versions} versions ({complete} complete) on SeaweedFS, "
              f"{os.cpu_count()} CPUs; median of {args.repeats}")
        for w, t in med.items():
            print(f"  {w:<13}{t:7.2f} s")
        print(f"after / before: {med['before'] / med['after']:.1f}x faster; "
              f"`cvatkit list` {med['cvatkit list']:.2f} s (target < 3 s); first page of 50 "
              f"in {med['first page']:.2f} s")
        (work / "list-results.json").write_text(json.dumps(
            {"versions": args.versions, "complete": complete, "seconds": times,
             "median": med}, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
