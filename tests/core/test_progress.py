"""The progress protocol and its adapters, driven by hand as a job would drive them."""

from __future__ import annotations

import io
import threading

from fakes.progress import Recorder
from traitlets import Float, HasTraits, Int, Unicode

from cvatkit.progress import BYTES, FRAMES, Progress, ProgressBar, no_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_null_progress_and_the_adapters_are_progresses():
    from cvatkit.widgets import TraitProgress

    no_progress.start("anything", 3)
    no_progress.advance(2)
    for progress in (no_progress, ProgressBar(), TraitProgress(_Shown()), Recorder()):
        assert isinstance(progress, Progress)
    assert not isinstance(print, Progress)  # a bare callback is not one


def test_a_bar_per_part_of_the_job_on_a_terminal():
    out = _Terminal()
    with ProgressBar(file=out) as bar:
        bar.start("downloading a.tar.gz", 2_000_000, unit=BYTES)
        bar.advance(1_000_000)
        bar.advance(1_000_000)
        bar.start("downloading b.h5", None, unit=BYTES)
        bar.advance(5_000)
    text = out.getvalue()
    assert "downloading a.tar.gz: 100%" in text and "2.00M/2.00M" in text
    assert "downloading b.h5: 5.00kB" in text


def test_no_bar_when_the_output_is_not_a_terminal():
    out = io.StringIO()
    with ProgressBar(file=out) as bar:
        bar.start("predicting", 4)
        bar.advance(4)
    assert out.getvalue() == ""


def test_lines_for_a_log_or_a_notebook():
    lines: list[str] = []
    with ProgressBar(say=lines.append, every=0) as bar:
        bar.start("writing TFRecords", 3, unit=FRAMES)
        for _ in range(3):
            bar.advance(1)
        bar.advance(0)  # a refresh with nothing new: no line of its own
    assert lines[0].startswith("writing TFRecords:   0%")
    assert lines[-1].startswith("writing TFRecords: 100%") and "3/3" in lines[-1]
    assert len(lines) == len(set(lines)) == 4
    assert not any("\r" in line or "\n" in line for line in lines)


def test_a_job_that_never_says_what_it_does_still_counts():
    lines: list[str] = []
    with ProgressBar(say=lines.append, every=0) as bar:
        bar.advance(7)
    assert lines[-1].startswith("7frame")


def test_advances_from_many_threads_all_count():
    lines: list[str] = []
    bar = ProgressBar(say=lines.append, every=3600)
    bar.start("uploading", 8000, unit=BYTES)
    threads = [threading.Thread(target=lambda: [bar.advance(1) for _ in range(1000)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    assert "8.00k/8.00k" in lines[-1]


class _Shown(HasTraits):
    status = Unicode("")
    done = Int(0)
    total = Int(0)
    share = Float(0.0)


def test_a_widget_state_shows_the_download():
    from cvatkit.widgets import TraitProgress

    shown = _Shown()
    progress = TraitProgress(shown, "status", done="done", total="total", fraction="share",
                             every=0)
    progress.start("downloading w.tar.gz", 20_000_000, unit=BYTES)
    assert (shown.status, shown.total, shown.share) == (
        "downloading w.tar.gz: 0.0 of 20.0 MB", 20_000_000, 0.0)
    progress.advance(5_000_000)
    assert shown.status == "downloading w.tar.gz: 5.0 of 20.0 MB"
    assert (shown.done, shown.share) == (5_000_000, 0.25)
    progress.start("downloading w.h5", None, unit=BYTES)  # size not known
    progress.advance(1_500_000)
    assert (shown.status, shown.total, shown.share) == ("downloading w.h5: 1.5 MB", 0, 0.0)


def test_a_widget_state_changes_a_bounded_number_of_times():
    from cvatkit.widgets import TraitProgress

    shown = _Shown()
    changes: list[int] = []
    shown.observe(lambda c: changes.append(c.new), names="done")
    with TraitProgress(shown, "status", done="done", prefix="task 7: ",
                       every=3600) as progress:
        progress.start("predicting", 1000)
        for _ in range(1000):
            progress.advance(1)
    assert changes == list(range(10, 1001, 10))  # each hundredth, the last one included
    assert shown.status == "task 7: predicting: 1000 of 1000 frames"

    changes.clear()
    with TraitProgress(shown, "status", done="done", every=3600) as progress:
        progress.start("predicting")  # how many is not known: only the start and the end
        for _ in range(50):
            progress.advance(1)
        assert shown.done == 0 and shown.status == "predicting: 0 frames"
    assert changes == [0, 50] and shown.status == "predicting: 50 frames"


def test_cvat_sdk_reports_into_a_progress():
    from cvatkit.annotate.driver import _reporter

    seen = Recorder()
    reporter = _reporter(seen, "task 7 on http://cvat")
    with reporter.task(total=3, unit="samples"):
        assert list(reporter.iter("abc")) == ["a", "b", "c"]
    with reporter.task(total=10, desc="uploading"):
        reporter.report_status(4)
        reporter.report_status(10)
    assert seen.starts == [("predicting task 7 on http://cvat", 3, "frame"),
                           ("uploading", 10, "frame")]
    assert seen.advances == [1, 1, 1, 4, 6]
