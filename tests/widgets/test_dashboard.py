"""The Voila dashboard in a real browser (Debian's headless Chromium, driven by Playwright):
the whole job through the app, as a person would do it. Screenshots of each step are kept
in build/test-artifacts/dashboard/."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from browser import chromium_page, voila
from helpers import MODEL, ROOT, SAMPLE_FRAMES
from playwright.sync_api import expect

from cvatkit.training import get_model

ARTIFACTS = ROOT / "build" / "test-artifacts" / "dashboard"
HPARAMS = ("num-steps=60\nbatch-size=8\nimage-size=128\nlog-interval=5\n"
           "checkpoint-interval=10\neval-interval=60")
MINUTE = 60_000


@pytest.fixture
def dashboard(tmp_path, s3_env):
    """The dashboard served by Voila, its work files and AWS settings in a test folder."""
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", tmp_path / "dashboard.ipynb")
    env = {"CVATKIT_WORKDIR": str(tmp_path / "work"), "CVATKIT_CPU_REPLICAS": ""}
    log = tmp_path / "voila.log"
    with voila(tmp_path / "dashboard.ipynb", env=env, log=log) as url:
        yield url, tmp_path
    assert s3_secret(s3_env) not in log.read_text(errors="replace")


def s3_secret(server) -> str:
    import configparser

    cp = configparser.ConfigParser()
    cp.read(server.folder / "credentials")
    return cp["cvatkit-local"]["aws_secret_access_key"]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_tab(page, name: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=name).click()


def watch_plot(plot, status, *, want: int, seconds: float) -> list[tuple[int, int]]:
    """Screenshots of ``plot`` once a second: the (step before, step after) of each time
    it changed as the step in ``status`` went up (a change without a new step, such as
    its first paint or the toolbar fading, is not counted)."""
    updates: list[tuple[int, int]] = []
    last_frame, last_step = None, None
    deadline = time.monotonic() + seconds
    while len(updates) < want and time.monotonic() < deadline:
        text = status.inner_text()
        frame = plot.screenshot()
        step = int(re.search(r"step (\d+) /", text).group(1)) if "step" in text else None
        if last_frame is not None and frame != last_frame and step is not None and \
                last_step is not None and step > last_step:
            updates.append((last_step, step))
        if last_frame is None or frame != last_frame:
            last_frame, last_step = frame, step
        time.sleep(1.0)
    return updates


def test_the_whole_job_in_the_browser(dashboard, s3_env, sample_cvat):
    url, tmp = dashboard
    with chromium_page() as page:
        page.goto(url, timeout=2 * MINUTE)  # how fast it paints: bench/ui_overhead.py
        page.locator(".lm-TabBar-tab").first.wait_for(timeout=2 * MINUTE)
        shot(page, "0-first-paint")

        # 1. a CVAT export (the session's sample task) and its report
        page.get_by_role("button", name="CVAT export").click()
        page.get_by_placeholder("a CVAT export: task.zip or its folder").fill(str(sample_cvat))
        page.get_by_role("button", name="Open export").click()
        page.get_by_text(re.compile(rf"frames: {SAMPLE_FRAMES} ")).wait_for(timeout=2 * MINUTE)
        # the report's pictures: frames with their annotations, labels, box sizes
        pictures = page.locator(".widget-image img:visible, img.widget-image:visible")
        expect(pictures).to_have_count(3, timeout=2 * MINUTE)
        shot(page, "1-data")

        # 2. the tests' model instead of the default (it would download COCO weights),
        # a small number of steps
        open_tab(page, "2. Model")
        picker = page.locator("select:visible").first
        assert picker.input_value().startswith("retinanet-spinenet-mobile-coco")
        picker.select_option(f"{MODEL}: {get_model(MODEL).title}")
        page.get_by_text("Starts from none: random initialisation").wait_for(timeout=MINUTE)
        page.locator("textarea").first.fill(HPARAMS)
        expect(page.get_by_label("Steps", exact=True)).to_have_value("60")  # form in step
        shot(page, "2-model")

        # 3. start, watch the loss plot move on with the steps while the run goes on
        open_tab(page, "3. Train")
        page.get_by_role("button", name="Start").click()
        status = page.get_by_text(re.compile(r"(running|completed) · step \d+ / 60"))
        status.wait_for(timeout=4 * MINUTE)
        plot = page.locator(".jupyter-matplotlib-figure").first
        updates = watch_plot(plot, status, want=2, seconds=180)
        shot(page, "3-training")
        assert len(updates) >= 2, f"the loss plot moved on {len(updates)} times: {updates}"
        picker = page.locator("select:visible").first  # the run being watched, named
        assert "running" in picker.locator("option:checked").inner_text()
        page.get_by_role("button", name="Stop").click()
        page.get_by_text(re.compile(r"^stopped")).wait_for(timeout=3 * MINUTE)
        shot(page, "3-stopped")
        page.get_by_role("button", name="Resume").click()
        page.get_by_text(re.compile(r"(running|completed) · step \d+ / 60")).wait_for(
            timeout=3 * MINUTE)

        # closing the page (its kernel goes) does not stop training: a new page attaches
        page.reload(timeout=2 * MINUTE)
        page.locator(".lm-TabBar-tab").first.wait_for(timeout=2 * MINUTE)
        open_tab(page, "3. Train")
        picker = page.locator("select:visible").first
        assert picker.locator("option").count() == 1
        assert re.search(r"\((running|stopping|completed)",
                         picker.locator("option").first.inner_text())
        picker.select_option(index=0)
        page.get_by_role("button", name="Attach").click()
        page.get_by_text(re.compile(r"^completed · step 60 / 60")).wait_for(timeout=6 * MINUTE)
        shot(page, "3-completed")

        # 4. the inference gallery of the held-out frames
        open_tab(page, "4. Inference")
        page.get_by_role("button", name="Run").click()
        page.get_by_text(re.compile("COCO AP")).first.wait_for(timeout=3 * MINUTE)
        shown = page.locator(".widget-image img:visible, img.widget-image:visible")
        expect(shown).to_have_count(3, timeout=MINUTE)  # the gallery, PR curves, confusion
        assert shown.first.bounding_box()["width"] > 300
        shot(page, "4-inference")

        # 5. publish to the S3 server
        open_tab(page, "5. Publish")
        page.locator("input[placeholder='s3://bucket/prefix or a local folder']:visible").fill(
            "s3://models/ui")
        page.locator("input[placeholder='e.g. lab']:visible").fill("ui")
        page.get_by_text("create the bucket if missing").click()
        page.get_by_role("button", name="Publish").click()
        page.get_by_text(re.compile(r"s3://models/ui/ui/models/")).first.wait_for(
            timeout=3 * MINUTE)
        assert page.get_by_text(re.compile(r"([\d.]+) MB of \1 MB")).count() == 1  # all sent
        shot(page, "5-published")
        assert s3_secret(s3_env) not in page.content()
    runs = list((tmp / "work" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "export" / "saved_model").is_dir()
    spec = json.loads((runs[0] / "run.json").read_text())
    assert spec["model"]["key"] == MODEL and spec["weights"] == "none"  # the app's choice
