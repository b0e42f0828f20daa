"""Looking at a trained model's output: a gallery of test frames and its evaluation.

``InferenceState`` loads the detector and predicts the frames ONCE, at cvatkit's low score
floor (what COCO AP needs), keeping the pixels of the frames it shows. The score threshold
then only filters those predictions: moving the slider redraws the gallery and recounts
the found and false boxes, it never calls the model again. Frames come in the task's
order or mistakes first (``cvatkit.inference.disagreements``), optionally only those with one
kind of mistake; frames shown out of order have their pixels read again from the source.
``InferenceViewer`` lays out the inputs, the slider, the order and the filter, the
gallery (a PNG in an ``ipywidgets.Image``, which Voila shows as it is), the evaluation
table and the likely annotation mistakes; loading TensorFlow and predicting run in a
thread.
"""

from __future__ import annotations

import html
import io
import threading
from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import Bool, Bytes, Float, HasTraits, Instance, Int, List, Unicode, observe

from cvatkit import CvatkitError, UsageError
from cvatkit.cvat import TASK_ZIP, TEST_ZIP
from cvatkit.dataset import load_dataset
from cvatkit.inference import (KINDS, SUSPECT_KINDS, Detector, Evaluation, Predicted,
                               Prediction, Review, confusion_figure, frame_pixels,
                               gallery_figure, label_colors, load_detector, open_frames,
                               pr_curves_figure, predict_frames)
from cvatkit.training import read_record

from ._background import Background
from ._errors import error_html, error_text, log, reports_errors
from ._progress import TraitProgress

SHOWN = 12
"""Frames drawn in the gallery by default."""
COLUMNS = 4
PNG_DPI = 72
ORDERS = ("task", "mistakes")
"""The frames in the task's order, or the worst first."""
CACHED_IMAGES = 64
"""Pixels of frames shown out of the task's order, kept for redrawing."""


def run_frames(run_dir: str) -> str:
    """The frames to look at a run's model on: its evaluation data's task, else the
    held-out ``test.zip`` beside the sample task it trained on, else its training task
    (as a path or ``cvat://ID``); '' when the run does not say."""
    record = read_record(run_dir)
    for data in (record.eval_data, record.data):
        if data is None:
            continue
        source = data.source or _dataset_source(data.path)
        if source.startswith("cvat://"):
            return source.split(" ", 1)[0]  # "cvat://7 on https://host"
        path = Path(source)
        if data is record.data and path.name == TASK_ZIP and (path.parent / TEST_ZIP).is_file():
            return str(path.parent / TEST_ZIP)
        if source:
            return source
    return ""


def _dataset_source(path: Path) -> str:
    """The source of a dataset a run recorded without it (runs of older cvatkit)."""
    try:
        return load_dataset(path).source
    except CvatkitError:
        return ""


def figure_png(fig, *, dpi: int = PNG_DPI) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class InferenceState(HasTraits):
    """A model's predictions on some frames, filtered by a score threshold."""

    model = Unicode("", help="a run folder, its export/, a SavedModel folder or a "
                             "model-store version URI")
    model_choices = List(help="run folders and store versions to pick from")
    labels = Unicode("", help="a label file, for SavedModels that carry none")
    frames = Unicode("", help="a CVAT export (.zip or folder), cvat://TASK_ID, or an image "
                              "file or folder")
    frame_choices = List(help="frame sources to pick from (the sample's test.zip, ...)")
    count = Int(SHOWN, min=0, help="frames to show: kept with their pixels and drawn")
    limit = Int(0, min=0, help="frames to predict and evaluate (0: all of them)")
    threshold = Float(0.5, min=0.0, max=1.0, help="shapes scoring below it are not shown "
                                                  "nor counted")
    show_ground_truth = Bool(True, help="draw the frames' own annotations, dashed")
    order = Unicode("task", help="'task': frames in the task's order; 'mistakes': the "
                                 "frames where model and annotations disagree most first")
    kind = Unicode("", help="show only frames with this kind of mistake ('' for all): one "
                            "of cvatkit.inference.KINDS or SUSPECT_KINDS")
    review = Instance(Review, allow_none=True,
                      help="every frame's mistakes at threshold, worst first")
    busy = Bool(False, help="loading or predicting")
    status = Unicode("", help="what is going on, or what the last run did")
    frames_done = Int(0, help="frames predicted so far by the current run")
    evaluation = Instance(Evaluation, allow_none=True,
                          help="the predictions against the annotations, at threshold")
    evaluation_text = Unicode("", help="the evaluation as text (Evaluation.format())")
    gallery = Bytes(b"", help="the shown frames and their shapes, as a PNG")
    pr_picture = Bytes(b"", help="precision-recall curves per label at IoU 0.5, as a PNG")
    confusion_picture = Bytes(b"", help="the confusion matrix at threshold, as a PNG")
    shapes_drawn = Int(0, help="predicted shapes in the gallery (at threshold)")
    error = Unicode("", help="what went wrong last, as the user should read it")

    def __init__(self, *, client=None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        """A logged-in CVAT client for ``cvat://`` frames (the Data step's session)."""
        self.detector: Detector | None = None
        self._loaded_key: tuple[str, str] | None = None
        self.predicted: Predicted | None = None
        """The last prediction pass: every frame, with all shapes above the score floor."""
        self.predicted_with = ""
        """The model the predictions are from."""
        self._lock = threading.RLock()
        self._predicted_frames = ""
        self._images: dict[int, Any] = {}  # frame index -> pixels read again
        self._reader: Any = None  # the source the predictions came from, reopened

    # -- actions (buttons call these; errors land in .error) ------------------------------

    @reports_errors()
    def load(self) -> Detector:
        """Load the model (once per model and label file); its labels go to ``status``."""
        return self._load()

    @reports_errors()
    def run(self) -> int:
        """Predict the frames once (at the score floor) and show them; the number of
        frames predicted. Blocks: the viewer calls it in a thread."""
        if self.busy:
            raise UsageError("a run is going on; wait for it to finish")
        self.busy = True
        try:
            return self._run()
        finally:
            self.busy = False

    def _run(self) -> int:
        detector = self._load()
        self.frames_done = 0
        self.status = f"predicting {self.frames.strip()} ..."
        with TraitProgress(self, "status", done="frames_done") as progress:
            predicted = predict_frames(detector, self.frames, keep_images=self.count,
                                       limit=self.limit or None, progress=progress,
                                       client=self.client)
        with self._lock:
            self._close_reader()
            self.predicted = predicted
            self.predicted_with = self.model.strip()
            self._predicted_frames = self.frames
            self._refresh()
        self.status = (f"{len(predicted.predictions)} frames predicted by {self.predicted_with}"
                       f"{'' if self.evaluation else ' (no annotations: no evaluation)'}")
        return len(predicted.predictions)

    def _load(self) -> Detector:
        model = self.model.strip()
        if not model:
            raise UsageError("give the model: a run folder, its export/, a SavedModel folder "
                             "or a model-store version URI (s3://BUCKET/NS/models/KEY/V)")
        key = (model, self.labels.strip())
        if self.detector is None or self._loaded_key != key:
            self.status = f"loading {model} ..."
            self.detector = load_detector(model, labels=key[1] or None)
            self._loaded_key = key
        self.status = (f"model {model}: {len(self.detector.labels)} labels "
                       f"({', '.join(self.detector.labels.names)})")
        return self.detector

    # -- what the gallery and the table show ----------------------------------------------

    @property
    def predictions(self) -> tuple[Prediction, ...]:
        """The last prediction pass's frames."""
        return self.predicted.predictions if self.predicted is not None else ()

    @property
    def label_names(self) -> list[str]:
        """The model's labels, then the task's others: the colour order of the gallery."""
        if self.predicted is not None:
            return self.predicted.labels
        return list(self.detector.labels.names) if self.detector is not None else []

    def kept(self, prediction: Prediction) -> tuple:
        """A frame's predicted shapes at the current threshold."""
        return prediction.shapes_at(self.threshold)

    def shown_predictions(self) -> list[Prediction]:
        """The frames to show, in the chosen order and filter (all of them, not only the
        first ``count``)."""
        by_index = {p.frame.index: p for p in self.predictions}
        if self.review is None:
            return [] if self.kind else list(self.predictions)
        order = ([by_index[f.frame] for f in self.review.frames] if self.order == "mistakes"
                 else list(self.predictions))
        if not self.kind:
            return order
        wanted = {f.frame for f in self.review.frames if f.kinds[self.kind]}
        return [p for p in order if p.frame.index in wanted]

    def gallery_items(self) -> list[tuple]:
        """(image, shapes at threshold, ground truth or (), title) for each shown frame."""
        items = []
        frames = {f.frame: f for f in self.review.frames} if self.review else {}
        for p in self.shown_predictions():
            if len(items) >= self.count:
                break
            image = self._pixels(p)
            if image is None:
                continue
            shapes = self.kept(p)
            truth = tuple(p.ground_truth) if self.show_ground_truth else ()
            name, reviewed = Path(p.frame.name).name, frames.get(p.frame.index)
            if reviewed is None:
                title = f"{name}: {len(shapes)} found"
            else:  # found: the annotated objects a box matched, as the evaluation counts
                title = f"{name}: {reviewed.found} of {reviewed.annotated} found" + "".join(
                    f", {n} {k}" for k, n in reviewed.kinds.items())
            items.append((image, shapes, truth, title))
        return items

    def _pixels(self, p: Prediction):
        """A frame's pixels: kept from predicting, or read again from its source."""
        if p.image is not None:
            return p.image
        if p.frame.index in self._images:
            return self._images[p.frame.index]
        if self._reader is None:
            self._reader = open_frames(self._predicted_frames, client=self.client)
        if not hasattr(self._reader, "read_image"):
            return None
        image = frame_pixels(self._reader, p.frame)
        if len(self._images) >= CACHED_IMAGES:
            self._images.pop(next(iter(self._images)))
        self._images[p.frame.index] = image
        return image

    def _close_reader(self) -> None:
        if self._reader is not None and hasattr(self._reader, "close"):
            self._reader.close()
        self._reader = None
        self._images = {}

    def draw(self) -> bytes:
        """The gallery as PNG bytes (b'' when there is nothing to show)."""
        items = self.gallery_items()
        if not items:
            return b""
        fig = gallery_figure(items, colors=label_colors(self.label_names),
                             columns=min(COLUMNS, len(items)))
        return figure_png(fig)

    @observe("threshold", "show_ground_truth", "order", "kind")
    def _filter_changed(self, change) -> None:
        with self._lock:
            if self.predictions:
                self._refresh()

    def _refresh(self) -> None:
        """Re-filter the kept predictions: the evaluation and the gallery (no model call).
        Never raises: an observer's exception would escape into the slider."""
        try:
            if self.order not in ORDERS:
                raise UsageError(f"order {self.order!r}: choose {' or '.join(ORDERS)}")
            if self.kind and self.kind not in (*KINDS, *SUSPECT_KINDS):
                raise UsageError(f"kind {self.kind!r}: choose one of "
                                 f"{', '.join((*KINDS, *SUSPECT_KINDS))}")
            evaluated = None if self.predicted is None else \
                self.predicted.evaluate(self.threshold)
            ev = evaluated.evaluation if evaluated is not None else None
            mistakes = evaluated.review if evaluated is not None else None
            self.review = mistakes
            items = self.gallery_items()
            png = self.draw()
            pr = confusion = b""
            if ev is not None:
                pr = figure_png(pr_curves_figure(ev, colors=label_colors(self.label_names)))
                confusion = figure_png(confusion_figure(mistakes))
        except Exception as e:  # noqa: BLE001  (shown to the user)
            log.debug("inference refresh failed", exc_info=e)
            self.error = error_text(e)
            return
        with self.hold_trait_notifications():
            self.evaluation = ev
            self.evaluation_text = ev.format() if ev is not None else ""
            self.shapes_drawn = sum(len(shapes) for _, shapes, _, _ in items)
            self.gallery = png
            self.pr_picture, self.confusion_picture = pr, confusion


def evaluation_html(ev: Evaluation | None) -> str:
    """The summary line and a table per label, as HTML ('' for None)."""
    if ev is None:
        return ""

    def num(x: float) -> str:
        return f"{x:.3f}" if x >= 0 else "-"

    summary = (f"<p><b>COCO AP {ev.ap:.3f}</b> · AP@0.5 {ev.ap50:.3f} · AP@0.75 "
               f"{ev.ap75:.3f} on {ev.frames} frames<br>at score ≥ {ev.threshold:.2f}: "
               f"found {ev.found} of {ev.annotated} annotated objects "
               f"({100 * ev.found_share:.1f}%), {ev.false} false boxes "
               f"({ev.false_per_frame:.2f} per frame)</p>")
    head = "".join(f"<th style=\"text-align:{a};padding:0 8px\">{h}</th>" for h, a in (
        ("label", "left"), ("AP", "right"), ("AP@0.5", "right"), ("objects", "right"),
        ("found", "right"), ("false", "right")))
    rows = "".join(
        "<tr>" + "".join(f"<td style=\"text-align:{a};padding:0 8px\">{v}</td>" for v, a in (
            (html.escape(c.label), "left"), (num(c.ap), "right"), (num(c.ap50), "right"),
            (c.annotated, "right"), (c.found, "right"), (c.false, "right"))) + "</tr>"
        for c in ev.per_class)
    return f"{summary}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def mistakes_html(r: Review | None, *, top: int = 10) -> str:
    """The likely annotation mistakes, most confident first, as an HTML list."""
    if r is None:
        return ""
    suspects = r.suspects
    if not suspects:
        return ("<p><small>no likely annotation mistakes (no prediction at score ≥ "
                f"{r.confident:.2f} contradicts the annotations)</small></p>")
    items = "".join(f"<li>frame {f.frame} {html.escape(f.name)}: "
                    f"{html.escape(f.describe())}</li>" for f in suspects[:top])
    more = f"<li>... {len(suspects) - top} more</li>" if len(suspects) > top else ""
    return (f"<p><b>Likely annotation mistakes</b>: {len(suspects)} on "
            f"{len(r.suspect_frames())} frames (check them in CVAT; "
            f"<code>cvatkit evaluate --review-tag</code> tags them)</p><ul>{items}{more}</ul>")


class InferenceViewer(W.VBox):
    """Model and frames inputs, Run, a score-threshold slider, a ground-truth switch, the
    gallery and the evaluation table over an ``InferenceState``.

    ``background``: Run predicts in a thread so the page stays responsive (tests pass
    False, or call ``state.run()`` directly). ``run``: start predicting at once (a
    notebook that was given the model and the frames)."""

    def __init__(self, state: InferenceState | None = None, *, background: bool = True,
                 run: bool = False, **kwargs: Any) -> None:
        self.state = s = state if state is not None else InferenceState()
        self.actions = Background(background, "cvatkit-inference")
        wide = W.Layout(width="min(100%, 640px)")
        self.model = W.Combobox(description="Model", options=[], ensure_option=False,
                                layout=wide, placeholder="a run folder, a SavedModel folder "
                                "or s3://BUCKET/NS/models/KEY/VERSION")
        self.frames = W.Combobox(description="Frames", options=[], ensure_option=False,
                                 layout=wide, placeholder="test.zip, a CVAT export, "
                                 "cvat://ID, or an image folder")
        self.count = W.BoundedIntText(description="Show", min=0, max=64,
                                      layout=W.Layout(width="160px"))
        self.run_button = W.Button(description="Run", icon="play", button_style="primary")
        self.threshold = W.FloatSlider(description="Score ≥", min=0.0, max=1.0, step=0.01,
                                       readout_format=".2f", continuous_update=False)
        self.ground_truth = W.Checkbox(description="show ground truth (dashed)", indent=False)
        self.order = W.ToggleButtons(options=[("task order", "task"),
                                              ("mistakes first", "mistakes")],
                                     style={"button_width": "110px"})
        self.kind = W.Dropdown(description="Only", options=[("all frames", "")],
                               layout=W.Layout(width="300px"))
        self.mistakes = W.HTML()
        self._refilling = False
        self.pr_image = W.Image(format="png", layout=W.Layout(max_width="48%"))
        self.confusion_image = W.Image(format="png", layout=W.Layout(max_width="48%"))
        self.status = W.HTML()
        self.error = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.table = W.HTML()

        for name, control in (("model", self.model), ("frames", self.frames),
                              ("count", self.count), ("threshold", self.threshold),
                              ("show_ground_truth", self.ground_truth),
                              ("order", self.order)):
            W.link((s, name), (control, "value"))
        W.dlink((s, "gallery"), (self.image, "value"))
        W.dlink((s, "pr_picture"), (self.pr_image, "value"))
        W.dlink((s, "confusion_picture"), (self.confusion_image, "value"))
        self.run_button.on_click(lambda _b: self.start_run())
        s.observe(self._show_choices, names=["model_choices", "frame_choices"])
        s.observe(self._show_text, names=["status", "error", "busy", "evaluation"])
        s.observe(self._show_review, names=["review"])
        self.kind.observe(self._kind_picked, names="value")

        super().__init__([
            self.model, W.HBox([self.frames, self.count, self.run_button]),
            W.HBox([self.threshold, self.ground_truth]), W.HBox([self.order, self.kind]),
            self.status, self.error, self.image, self.table,
            W.HBox([self.pr_image, self.confusion_image]), self.mistakes], **kwargs)
        self._show_choices()
        self._show_text()
        self._show_review()
        if run:
            self.start_run()

    def start_run(self) -> None:
        """What Run does: ``state.run()``, in a thread when ``background``."""
        if self.state.busy:
            return
        if self.actions.enabled:
            self.state.status = "starting ..."
        self.actions.run(self.state.run)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background run to end (for scripts and tests)."""
        self.actions.wait(timeout)

    def _show_choices(self, _change=None) -> None:
        self.model.options = list(self.state.model_choices)
        self.frames.options = list(self.state.frame_choices)

    def _kind_picked(self, change) -> None:
        if change["new"] is not None and not self._refilling:
            self.state.kind = change["new"]

    def _show_review(self, _change=None) -> None:
        """The filter's choices with their counts, and the likely annotation mistakes."""
        r = self.state.review
        counts = r.counts() if r is not None else {}
        options = [("all frames", "")] + [
            (f"{k} ({counts[k]})", k) for k in (*KINDS, *SUSPECT_KINDS) if counts.get(k)]
        if self.state.kind and self.state.kind not in [v for _, v in options]:
            options.append((f"{self.state.kind} (0)", self.state.kind))
        self._refilling = True  # new options reset the value: not the user's choice
        try:
            self.kind.options = options
            self.kind.value = self.state.kind
        finally:
            self._refilling = False
        self.mistakes.value = mistakes_html(r)

    def _show_text(self, _change=None) -> None:
        s = self.state
        self.status.value = f"<small>{html.escape(s.status)}</small>" if s.status else ""
        self.error.value = error_html(s.error)
        self.run_button.disabled = s.busy
        self.table.value = evaluation_html(s.evaluation)
