"""The Voila dashboard in a real browser (Debian's headless Chromium, driven by Playwright):
the whole job through the app, as a person would do it. Screenshots of each step are kept
in build/test-artifacts/dashboard/."""

from __future__ import annotations

import re
import shutil

import pacing
import pytest
from browser import chromium_page, voila
from helpers import MODEL, ROOT, SAMPLE_FRAMES
from playwright.sync_api import expect

from cvatkit.training import get_model, read_record
from cvatkit.training.multiworker import STOP_FILE

ARTIFACTS = ROOT / "build" / "test-artifacts" / "dashboard"
HPARAMS = ("num-steps=60\nbatch-size=8\nimage-size=128\nlog-interval=5\n"
           "checkpoint-interval=10\neval-interval=60")
MINUTE = 60_000
PATIENCE = 15 * MINUTE
"""How long a step of the job may take before the test fails (Playwright's milliseconds):
only a stuck job takes that long, so the test passes on a machine of any speed."""


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


def shown_step(status) -> int:
    """The step the run's status line shows."""
    found = re.search(r"step (\d+) /", status.inner_text())
    return int(found.group(1)) if found else 0


def watch_plot(page, plot, status, run, pid, *, rounds: int) -> list[tuple[int, int]]:
    """The trainer ``pid`` (held still) let go on a logged step at a time: after each,
    the step the status line shows goes up and the plot changes. Returns each (step
    before, step after). A change that is no new step (the first paint, say) happens once
    at most, so ``rounds`` changes hold ``rounds - 1`` moves with the steps."""
    page.mouse.move(0, 0)  # no toolbar fading in over the plot
    seen, step, moves = plot.screenshot(), 0, []
    for _ in range(rounds):
        before = step
        step = pacing.advance(run, [pid], past=step)
        pacing.until(f"the status line to show step {step}",
                     lambda: shown_step(status) >= step, poll=0.2)
        seen = pacing.until(f"the plot to change after step {step}",
                            lambda: (now := plot.screenshot()) != seen and now, poll=0.2)
        moves.append((before, step))
    return moves


@pytest.mark.slow  # a browser, a kernel, a server, training
def test_the_whole_job_in_the_browser(dashboard, s3_env, sample_cvat):
    url, tmp = dashboard
    with chromium_page() as page:
        page.goto(url, timeout=PATIENCE)  # how fast it paints: bench/ui_overhead.py
        page.locator(".lm-TabBar-tab").first.wait_for(timeout=PATIENCE)
        shot(page, "0-first-paint")

        # 1. a CVAT export (the session's sample task) and its report
        page.get_by_role("button", name="CVAT export").click()
        page.get_by_placeholder("a CVAT export: task.zip or its folder").fill(str(sample_cvat))
        page.get_by_role("button", name="Open export").click()
        page.get_by_text(re.compile(rf"frames: {SAMPLE_FRAMES} ")).wait_for(timeout=PATIENCE)
        # the report's pictures: frames with their annotations, labels, box sizes
        pictures = page.locator(".widget-image img:visible, img.widget-image:visible")
        expect(pictures).to_have_count(3, timeout=PATIENCE)
        shot(page, "1-data")

        # 2. the tests' model instead of the default (it would download COCO weights),
        # a small number of steps
        open_tab(page, "2. Model")
        picker = page.locator("select:visible").first
        assert picker.input_value().startswith("retinanet-spinenet-mobile-coco")
        picker.select_option(f"{MODEL}: {get_model(MODEL).title}")
        page.get_by_text("Starts from none: random initialisation").wait_for(timeout=PATIENCE)
        page.locator("textarea").first.fill(HPARAMS)
        expect(page.get_by_label("Steps", exact=True)).to_have_value("60")  # form in step
        shot(page, "2-model")

        # 3. start, watch the loss plot move on with the steps while the run goes on: the
        # trainer is held still from its start and let go a logged step at a time
        open_tab(page, "3. Train")
        page.get_by_role("button", name="Start").click()
        run, pid = pacing.held_trainer(tmp / "work" / "runs")
        status = page.get_by_text(re.compile(r"(starting|running) · step \d+ / 60"))
        status.wait_for(timeout=PATIENCE)
        plot = page.locator(".jupyter-matplotlib-figure").first
        moves = watch_plot(page, plot, status, run, pid, rounds=3)
        assert [after > before for before, after in moves] == [True] * 3, moves
        shot(page, "3-training")
        picker = page.locator("select:visible").first  # the run being watched, named
        assert "running" in picker.locator("option:checked").inner_text()
        page.get_by_role("button", name="Stop").click()
        pacing.until("the stop request", (run.path / STOP_FILE).exists)
        pacing.thaw([pid])  # it sees the request at its next logged step
        page.get_by_text(re.compile(r"^stopped")).wait_for(timeout=PATIENCE)
        assert run.status().step < 60  # stopped before its end
        shot(page, "3-stopped")
        page.get_by_role("button", name="Resume").click()
        page.get_by_text(re.compile(r"(running|completed) · step \d+ / 60")).wait_for(
            timeout=PATIENCE)

        # closing the page (its kernel goes) does not stop training: a new page attaches
        page.reload(timeout=PATIENCE)
        page.locator(".lm-TabBar-tab").first.wait_for(timeout=PATIENCE)
        open_tab(page, "3. Train")
        picker = page.locator("select:visible").first
        assert picker.locator("option").count() == 1
        assert re.search(r"\((running|stopping|completed)",
                         picker.locator("option").first.inner_text())
        picker.select_option(index=0)
        page.get_by_role("button", name="Attach").click()
        page.get_by_text(re.compile(r"^completed · step 60 / 60")).wait_for(timeout=PATIENCE)
        shot(page, "3-completed")

        # 4. the inference gallery of the held-out frames
        open_tab(page, "4. Inference")
        page.get_by_role("button", name="Run").click()
        page.get_by_text(re.compile("COCO AP")).first.wait_for(timeout=PATIENCE)
        shown = page.locator(".widget-image img:visible, img.widget-image:visible")
        expect(shown).to_have_count(3, timeout=PATIENCE)  # the gallery, PR curves, confusion
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
            timeout=PATIENCE)
        assert page.get_by_text(re.compile(r"([\d.]+) MB of \1 MB")).count() == 1  # all sent
        shot(page, "5-published")
        assert s3_secret(s3_env) not in page.content()
    runs = list((tmp / "work" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "export" / "saved_model").is_dir()
    record = read_record(runs[0])
    assert record.model.key == MODEL and record.weights == "none"  # the app's choice
