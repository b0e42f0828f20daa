"""Benchmark: training steps/s with the run monitor attached and redrawing vs headless.

The same tiny run trains in its own process (``start_run``, as the dashboard starts it),
alternately headless (this process only waits for the end) and with a ``RunMonitor``
attached in this process, polling as often as the dashboard's monitor does (every
0.5 s; ``--poll`` to change it), its redraws bounded by 2 Hz and by a 2% CPU budget
(the CPU its canvases' renders took). There is no browser: a stand-in for ipympl's front end answers
each canvas's ``draw`` request as the browser would, so every redraw really renders the
figure (Agg) and encodes the PNG diff. steps/s is (last step - first step) /
(time of last - time of first) over the step events in events.jsonl, so start-up, the
first loop (tf.function tracing) and export are left out. Then the Voila dashboard's time
to first paint in headless Chromium. See bench/README.md.

    .venv/bin/python bench/ui_overhead.py [--steps 200] [--log-interval 5] [--repeats 2]
        [--paints 3] [--work bench/work/ui]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "ssd-mobilenet-v2"
BATCH = 8
MINUTE_MS = 60_000
POLL_SECONDS = 0.5  # what the dashboard's run monitor uses (cvatkit/widgets/monitor.py)


def hparams_text(steps: int, log_interval: int) -> str:
    return (f"num-steps={steps};batch-size={BATCH};image-size=128;"
            f"log-interval={log_interval};checkpoint-interval={steps};warmup-steps=0")


def prepare_data(work: Path, frames: int) -> Path:
    """The sample task, prepared without a validation split: the trainer then never
    evaluates, which would only add time after the last step."""
    import cvatkit

    data = work / "data"
    if (data / "dataset.json").is_file():
        return data
    task = cvatkit.write_sample(work / "sample", frames=frames, test_frames=0, overwrite=True)
    source = cvatkit.open_source(task.task)
    try:
        cvatkit.prepare(source, data, val_fraction=0.0, overwrite=True)
    finally:
        source.close()
    return data


def rate(points: list[tuple[int, float]]) -> dict:
    """steps/s between the first and the last (step, time) point: the loops after the
    first one."""
    (s0, t0), (s1, t1) = points[0], points[-1]
    sps = (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")
    return {"steps": s1 - s0, "seconds": t1 - t0, "steps_per_sec": sps}


class Frontend:
    """Stands in for the browser side of ipympl's canvases.

    ``draw_idle()`` only sends a ``draw`` event to the front end; the browser answers with
    a ``draw`` request, on which the kernel renders the figure with Agg and sends the PNG
    diff. This answers the same way, at once, and counts the renders and PNG bytes."""

    def __init__(self) -> None:
        self.renders = 0
        self.png_bytes = 0

    def connect(self, canvas) -> None:
        sent = canvas.send

        def send(content, buffers=None):
            sent(content, buffers)
            message = json.loads(content.get("data", "{}"))
            if message.get("type") == "draw":
                self.renders += 1
                canvas._handle_message(canvas, {"type": "draw"}, [])
            elif buffers:
                self.png_bytes += sum(len(b) for b in buffers)

        canvas.send = send
        canvas._handle_message(canvas, {"type": "initialized"}, [])  # as a browser does


def wait_for_end(run, *, every: float, timeout: float,
                 cpu_samples: list[tuple[float, float]]) -> str:
    """Poll the run's status until it ends; its final state. Appends (wall time, this
    process's CPU time) at each poll to ``cpu_samples``."""
    from cvatkit.runs import TERMINAL

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cpu_samples.append((time.time(), time.process_time()))
        state = run.status().state
        if state in TERMINAL:
            return state
        if run.status().pid and not run.is_alive():
            return "lost"
        time.sleep(every)
    return "timeout"


def cpu_between(samples: list[tuple[float, float]], t0: float, t1: float) -> float:
    """This process's CPU seconds from wall time t0 to t1, from the samples (the CPU
    clock read at the first sample at or after each)."""
    def at(t: float) -> float:
        return next((cpu for wall, cpu in samples if wall >= t), samples[-1][1])

    return at(t1) - at(t0)


def wait_for_exit(pid: int | None, timeout: float = 120) -> None:
    """Reap the trainer (this process's child): it still tears TensorFlow down for a
    while after writing ``completed``."""
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # not our child, or already reaped
            return
        time.sleep(0.2)


def train(plan, run_dir: Path, *, ui: bool, poll: float, timeout: float) -> dict:
    """One run of the plan in its own process; with ``ui`` a RunMonitor in this process
    follows it and redraws. steps/s from the step events in events.jsonl."""
    from cvatkit.runs import Run
    from cvatkit.training import start_run

    shutil.rmtree(run_dir, ignore_errors=True)
    t0, cpu0 = time.time(), time.process_time()
    run = start_run(plan, run_dir)
    monitor = frontend = None
    if ui:
        from cvatkit.widgets import MonitorState, RunMonitor

        state = MonitorState(runs_root=str(run_dir.parent))
        state.attach(run_dir)
        monitor = RunMonitor(state, poll_seconds=poll, autopoll=False)
        frontend = Frontend()
        for fig in (monitor.loss_fig, monitor.lr_fig, monitor.ap_fig):
            frontend.connect(fig.canvas)
        monitor.refresh(force=True)
        monitor.start_polling()  # its own poller thread: refresh() every `poll` s
    samples: list[tuple[float, float]] = []
    end = wait_for_end(run, every=2.0, timeout=timeout, cpu_samples=samples)
    wall = time.time() - t0
    wait_for_exit(run.status().pid)  # the next run starts on idle cores
    if monitor is not None:
        deadline = time.monotonic() + 10
        while monitor.polling and time.monotonic() < deadline:  # the last events drawn
            time.sleep(0.1)
        monitor.close()
    cpu = time.process_time() - cpu0
    points = [(e.step, e.time) for e in Run(run_dir).events() if e.kind == "step"]
    steps = plan.hparams.num_steps
    if end != "completed" or len(points) < 2 or points[-1][0] != steps:
        raise SystemExit(f"run {run_dir} ended {end} at step "
                         f"{points[-1][0] if points else 0}; see {run_dir}/trainer.log")
    window = points[-1][1] - points[0][1]
    out = {**rate(points), "wall_s": wall, "bench_cpu_s": cpu, "points": points,
           "window_cpu_s": cpu_between(samples, points[0][1], points[-1][1]),
           "window_s": window}
    if monitor is not None:
        out.update(redraws=monitor.redraws, renders=frontend.renders,
                   png_bytes=frontend.png_bytes, monitor_error=monitor.state.error)
    return out


def first_paint(work: Path, times: int) -> list[float]:
    """Seconds from opening the Voila dashboard to its tab bar being visible, each time in
    a fresh headless Chromium against one Voila server (each load starts its own kernel)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import chromium_page, voila

    out = []
    with tempfile.TemporaryDirectory(prefix="cvatkit-ui-") as tmp:
        notebook = Path(tmp) / "dashboard.ipynb"
        shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", notebook)
        env = {"CVATKIT_WORKDIR": tmp, "CVATKIT_CPU_REPLICAS": ""}
        with voila(notebook, env=env, log=work / "voila.log") as url:
            for k in range(times):
                with chromium_page() as page:
                    started = time.monotonic()
                    page.goto(url, timeout=2 * MINUTE_MS)
                    page.locator(".lm-TabBar-tab").first.wait_for(timeout=2 * MINUTE_MS)
                    out.append(time.monotonic() - started)
                print(f"  dashboard load {k + 1}/{times}: {out[-1]:.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="training steps per run")
    ap.add_argument("--log-interval", type=int, default=5,
                    help="steps per compiled loop, and between step events")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each kind (median counts)")
    ap.add_argument("--frames", type=int, default=200, help="frames of the sample task")
    ap.add_argument("--poll", type=float, default=POLL_SECONDS,
                    help="the monitor's poll interval, s (default: the dashboard's)")
    ap.add_argument("--paints", type=int, default=3, help="dashboard loads (0: none)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    ap.add_argument("--work", type=Path, default=Path("bench/work/ui"))
    args = ap.parse_args()
    if args.steps < 2 * args.log_interval:
        ap.error("--steps must be at least 2 loops (2 x --log-interval)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = args.work.resolve()
    (work / "runs").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    data = prepare_data(work, args.frames)

    from cvatkit.training import plan_run

    hp = hparams_text(args.steps, args.log_interval)
    plan = plan_run(data, MODEL, hp.replace(";", "\n"))
    runs: dict[str, list[dict]] = {"headless": [], "monitor": []}
    for k in range(args.repeats):
        for kind in runs:
            print(f"run {k + 1}/{args.repeats}: {kind}, {args.steps} steps", flush=True)
            r = train(plan, work / "runs" / f"{kind}-{k + 1}", ui=kind == "monitor",
                      poll=args.poll, timeout=args.timeout)
            runs[kind].append(r)
            extra = (f", {r['redraws']} redraws ({r['renders']} renders, "
                     f"{r['png_bytes'] / 1e6:.1f} MB of PNG), {r['bench_cpu_s']:.1f} s CPU "
                     f"in the monitor's process ({r['window_cpu_s']:.2f} s of it while the "
                     f"steps were timed, {r['window_s']:.0f} s)" if kind == "monitor" else "")
            print(f"  {r['steps_per_sec']:.2f} steps/s over {r['steps']} steps, "
                  f"{r['wall_s']:.0f} s in all{extra}", flush=True)
    median = {kind: statistics.median(r["steps_per_sec"] for r in rs)
              for kind, rs in runs.items()}
    ratio = median["monitor"] / median["headless"]
    print(f"\n{'run':<10}{'steps/s (median)':>18}  each run")
    for kind, rs in runs.items():
        each = ", ".join(f"{r['steps_per_sec']:.2f}" for r in rs)
        print(f"{kind:<10}{median[kind]:>18.2f}  {each}")
    print("redraws per monitored run: "
          + ", ".join(f"{r['redraws']} in {r['wall_s']:.0f} s" for r in runs["monitor"]))
    share = statistics.median(r["window_cpu_s"] / r["window_s"] for r in runs["monitor"])
    cores = os.cpu_count() or 1
    print(f"the monitor's CPU while the steps were timed: {100 * share:.2f}% of one core "
          f"(median), {100 * share / cores:.2f}% of the {cores} cores training uses: what "
          f"it takes from training leaves a ratio of at least {1 - share / cores:.3f}x")
    pairs = [m["steps_per_sec"] / h["steps_per_sec"]
             for h, m in zip(runs["headless"], runs["monitor"])]
    print("monitor / headless, pair by pair (run k monitored vs run k headless): "
          + ", ".join(f"{r:.2f}" for r in pairs)
          + f"; median {statistics.median(pairs):.2f}, range {min(pairs):.2f} to "
          f"{max(pairs):.2f}")

    paints = first_paint(work, args.paints) if args.paints else []
    if paints:
        print(f"dashboard first paint: {statistics.median(paints):.2f} s "
              f"(median of {len(paints)})")
    out = work / "ui-results.json"
    out.write_text(json.dumps({
        "model": MODEL, "hparams": hp, "repeats": args.repeats, "frames": args.frames,
        "poll_s": args.poll, "cpus": os.cpu_count(), "runs": runs, "median": median,
        "ratio": ratio, "pair_ratios": pairs, "monitor_cpu_share": share,
        "first_paint_s": paints,
        "elapsed_s": time.monotonic() - started}, indent=2))
    print(f"results: {out} ({time.monotonic() - started:.0f} s in all)")
    print(f"training with the run monitor attached / headless: {ratio:.2f}x "
          f"(medians of {args.repeats} runs each; target >= 0.98x: "
          f"{'met' if ratio >= 0.98 else 'NOT met'})")


if __name__ == "__main__":
    main()
