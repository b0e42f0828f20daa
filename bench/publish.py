"""Benchmark: `cvatkit publish` against `aws s3 cp --recursive`, uploading one model folder.

A synthetic completed run (random, incompressible bytes, sized like a real detector:
SavedModel variables, a checkpoint and ~20 small files) is written once into the work
folder. cvatkit's own SeaweedFS helper serves S3 on 127.0.0.1; each tool runs as a child
process against it, alternating, each run into a new prefix. Wall time is from Popen to
exit; throughput is the bytes found under the run's prefix afterwards over that time.
See bench/README.md.

    .venv/bin/python bench/publish.py [--size-mb 500] [--repeats 2] [--work bench/work/publish]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3

from cvatkit.runs import EvalEvent, Run
from cvatkit.store.s3_server import serve

BENCH = Path(__file__).resolve().parent
CVATKIT = BENCH.parent / ".venv" / "bin" / "cvatkit"
AWS_VENV = BENCH / ".venv-awscli"
AWS = AWS_VENV / "bin" / "aws"
BUCKET, NAMESPACE, MODEL_KEY = "bench", "bench", "ssd-mobilenet-v2"
GEN_VERSION = 1  # bump when the generated run changes, to invalidate the cache
CHUNK = 8 << 20


def write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for off in range(0, size, CHUNK):
            f.write(rng.randbytes(min(CHUNK, size - off)))


def make_run(work: Path, size_mb: int) -> Path:
    """A completed run directory like the trainer leaves it, about `size_mb` MB in all."""
    path = work / f"run-{size_mb}mb-v{GEN_VERSION}"
    if (path / "status.json").is_file():
        return path
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"writing {path} ...", flush=True)
    rng, mb = random.Random(0), size_mb * 10**6
    run = Run(tmp)
    tmp.mkdir(parents=True)
    # what publishing reads of run.json: these fields, as the file has them
    (tmp / "run.json").write_text(json.dumps({
        "created": "2026-11-20T10:00:00Z", "model": {"key": MODEL_KEY},
        "labels": ["cat", "dog"], "hparams": {"num-steps": 5000},
        "data": {"path": "/nowhere"}}))
    run.append(EvalEvent(step=5000, time=0, ap=0.5, ap50=0.9, per_class={"cat": 0.4,
                                                                         "dog": 0.6}))
    sm, ck = tmp / "export" / "saved_model", tmp / "checkpoints"
    big = {sm / "variables" / "variables.data-00000-of-00001": mb * 60 // 100,
           ck / "ckpt-5000.data-00000-of-00001": mb * 36 // 100,
           sm / "saved_model.pb": mb * 3 // 100}
    small = {sm / "variables" / "variables.index": 40_000, sm / "fingerprint.pb": 60,
             sm / "keras_metadata.pb": 300_000, ck / "ckpt-5000.index": 40_000}
    small.update({sm / "assets" / f"asset-{i:02d}.bin": 1_000 << i for i in range(10)})
    for p, n in {**big, **small}.items():
        write_random(p, n, rng)
    (ck / "checkpoint").write_text('model_checkpoint_path: "ckpt-5000"\n')
    for name, text in (("classes.csv", "labels\ncat\ndog\n"),
                       ("label_map.json", '{"label_map": {"1": "cat", "2": "dog"}}'),
                       ("label_map.pbtxt", "item {\n  id: 1\n  name: 'cat'\n}\n")):
        (tmp / "export" / name).write_text(text)
    run.set_status("completed", step=5000, total_steps=5000)
    tmp.rename(path)
    return path


def files_of(run_dir: Path) -> dict[str, Path]:
    """Every file of the folder by relative path: what `aws s3 cp --recursive` uploads."""
    return {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*"))
            if p.is_file()}


def published_files(run_dir: Path) -> dict[str, Path]:
    """The files `cvatkit publish` uploads, by key below the version folder (it adds
    metrics.json, run.json and manifest.json of its own)."""
    labels = ("export/label_map.pbtxt", "export/classes.csv", "export/label_map.json")
    return {rel.removeprefix("export/"): p for rel, p in files_of(run_dir).items()
            if rel.startswith(("export/saved_model/", "checkpoints/")) or rel in labels}


def ensure_awscli() -> None:
    if not AWS.exists():
        print(f"creating {AWS_VENV} ...", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(AWS_VENV)], check=True)
        subprocess.run([str(AWS_VENV / "bin" / "pip"), "install", "-q", "-r",
                        str(BENCH / "requirements-awscli.txt")], check=True)
    subprocess.run([str(AWS), "--version"], check=True, stdout=subprocess.DEVNULL)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process so far (the S3 server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], log: Path, env: dict, server_pid: int) -> dict:
    """Run `cmd`; its wall time, its CPU time and the S3 server's CPU time meanwhile."""
    server0 = proc_cpu_s(server_pid)
    with open(log, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed; see {log}:\n" + log.read_text()[-3000:])
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
            "server_cpu_s": proc_cpu_s(server_pid) - server0}


def stored(s3, prefix: str) -> dict[str, int]:
    """The objects under `prefix` in the bucket: key below the prefix -> size."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update({o["Key"][len(prefix):]: o["Size"] for o in page.get("Contents", [])})
    return out


def run_once(tool: str, k: int, run_dir: Path, work: Path, server, s3) -> dict:
    prefix = f"{tool}-{k}/"
    if tool == "cvatkit":
        cmd = [str(CVATKIT), "publish", str(run_dir), "--store", f"s3://{BUCKET}/{tool}-{k}",
               "--store-namespace", NAMESPACE]
    else:
        cmd = [str(AWS), "s3", "cp", "--recursive", "--only-show-errors", str(run_dir),
               f"s3://{BUCKET}/{prefix}"]
    r = measure(cmd, work / f"{tool}-{k}.log", {**os.environ, **server.env()}, server.pid)
    objects = stored(s3, prefix)
    if tool == "cvatkit":  # one version folder: the run's files plus publish's own three
        version_dir = min(key.rsplit("/", 1)[0] for key in objects) if objects else ""
        expected = {f"{version_dir}/{key}": p.stat().st_size
                    for key, p in published_files(run_dir).items()}
        extra = {f"{version_dir}/{n}" for n in ("metrics.json", "run.json", "manifest.json")}
    else:
        expected = {key: p.stat().st_size for key, p in files_of(run_dir).items()}
        extra = set()
    got = {key: n for key, n in objects.items() if key not in extra}
    if got != expected or not extra <= objects.keys():
        sys.exit(f"{tool} run {k}: the bucket under {prefix} does not hold the expected files")
    r.update(tool=tool, prefix=prefix, cmd=cmd, files=len(objects), bytes=sum(objects.values()))
    r["mb_per_s"] = r["bytes"] / 1e6 / r["wall_s"]
    print(f"  {tool:<8} {r['bytes'] / 1e6:7.1f} MB {r['wall_s']:6.2f} s {r['mb_per_s']:6.1f} MB/s"
          f"  CPU {r['cpu_s']:5.2f} s, server CPU {r['server_cpu_s']:5.2f} s", flush=True)
    return r


def sha256_seconds(run_dir: Path) -> float:
    """How long hashing the published files takes here (publish does it before uploading)."""
    t0 = time.perf_counter()
    for path in published_files(run_dir).values():
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=500, help="size of the model folder, MB")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each tool (best counts)")
    ap.add_argument("--work", type=Path, default=BENCH / "work" / "publish")
    args = ap.parse_args()
    work = args.work.resolve()
    ensure_awscli()
    run_dir = make_run(work, args.size_mb)
    shutil.rmtree(work / "s3", ignore_errors=True)  # a fresh store: no prefix already there
    server = serve(work / "s3")
    try:
        os.environ.update(server.env())
        s3 = boto3.session.Session().client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="warm-up", Body=b"x")  # the bucket's volumes exist
        runs: dict[str, list[dict]] = {"cvatkit": [], "awscli": []}
        for k in range(1, args.repeats + 1):
            for tool in runs:
                print(f"run {k}/{args.repeats}: {tool}", flush=True)
                runs[tool].append(run_once(tool, k, run_dir, work, server, s3))
    finally:
        server.stop()
        shutil.rmtree(work / "s3" / "data", ignore_errors=True)
    hash_s = sha256_seconds(run_dir)

    best = {t: max(rs, key=lambda r: r["mb_per_s"]) for t, rs in runs.items()}
    print(f"\n{'tool':<8} {'MB':>7} {'seconds':>8} {'MB/s':>7} {'CPU s':>6} {'server CPU s':>12}")
    for tool, r in best.items():
        print(f"{tool:<8} {r['bytes'] / 1e6:>7.1f} {r['wall_s']:>8.2f} {r['mb_per_s']:>7.1f} "
              f"{r['cpu_s']:>6.2f} {r['server_cpu_s']:>12.2f}")
    ratio = best["cvatkit"]["mb_per_s"] / best["awscli"]["mb_per_s"]
    print(f"\nratio cvatkit / awscli throughput = {ratio:.2f}x (target >= 1.0x)")
    print(f"SHA-256 of the published files in this process: {hash_s:.2f} s")
    results = {"size_mb": args.size_mb, "repeats": args.repeats, "cpus": os.cpu_count(),
               "run_dir": str(run_dir), "runs": runs, "best": best,
               "cvatkit_over_awscli_throughput": ratio, "sha256_s": hash_s}
    (work / "publish-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {work / 'publish-results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
