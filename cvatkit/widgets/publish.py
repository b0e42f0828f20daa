"""Publishing a trained run to the model store.

``PublishState`` uploads a completed run to a store (S3 or a local folder) through
``cvatkit.store.publish``, its byte count flowing into traits for a progress bar.
Credentials are never fields here: the store uses the standard AWS configuration
(environment variables, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``), as boto3 reads it.
``PublishPanel`` lays out its controls.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import Bool, Float, HasTraits, Int, List, Unicode

from cvatkit import Run, UsageError
from cvatkit.store import open_store, publish, run_files

from ._background import Background
from ._errors import error_html, reports_errors
from ._progress import TraitProgress

CREDENTIALS_NOTE = ("S3 credentials come from the standard AWS configuration: "
                    "AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and "
                    "AWS_ENDPOINT_URL for S3-compatible servers")


def upload_size(run_dir: str | Path) -> int:
    """Bytes ``publish`` uploads for a run (its SavedModel, label files and checkpoints),
    for the progress bar."""
    return sum(path.stat().st_size for path, _ in run_files(Run(run_dir)))


def format_bytes(n: float) -> str:
    """``512 B``, ``3.4 MB``."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


class PublishState(HasTraits):
    """Which run to publish where, the upload's progress and the version it became."""

    run_dir = Unicode("", help="a completed run folder")
    run_choices = List(help="run folders to pick from")
    store = Unicode("", help="s3://BUCKET/PREFIX or a local folder")
    namespace = Unicode("", help="a team or project name inside the store")
    model_key = Unicode("", help="'' for the run's own model key")
    create_bucket = Bool(False, help="create the S3 bucket if it does not exist")
    total_bytes = Int(0, help="bytes to upload")
    sent_bytes = Int(0, help="bytes uploaded so far")
    progress = Float(0.0, help="sent_bytes / total_bytes, 0..1")
    busy = Bool(False)
    published_uri = Unicode("", help="the version's URI once published")
    status = Unicode("")
    error = Unicode("", help="what went wrong last, as the user should read it")

    @reports_errors()
    def publish(self) -> str:
        """Upload ``run_dir`` as a new version (or find the version it already is);
        its URI (also in ``published_uri``)."""
        run_dir, store_uri, namespace = (self.run_dir.strip(), self.store.strip(),
                                         self.namespace.strip())
        if not run_dir:
            raise UsageError("pick the run to publish (a completed run folder)")
        if not store_uri:
            raise UsageError("give the model store: s3://BUCKET/PREFIX or a local folder")
        if not namespace:
            raise UsageError("give a namespace (a team or project name, e.g. 'lab')")
        if self.busy:
            raise UsageError("a publish is going on; wait for it to finish")
        self.busy = True
        self.published_uri = ""
        try:
            store = open_store(store_uri, create_bucket=self.create_bucket)
            with self.hold_trait_notifications():
                self.total_bytes = upload_size(run_dir) if Path(run_dir).is_dir() else 0
                self.sent_bytes, self.progress = 0, 0.0
            self.status = f"uploading {format_bytes(self.total_bytes)} to {store.uri} ..."
            with TraitProgress(self, None, done="sent_bytes", total="total_bytes",
                               fraction="progress") as progress:
                version = publish(run_dir, store, namespace, self.model_key.strip() or None,
                                  progress=progress)
            with self.hold_trait_notifications():
                self.progress = 1.0
                self.published_uri = version.uri
            metrics = version.metrics
            score = (f", AP {metrics['ap']:.3f}, AP@0.5 {metrics['ap50']:.3f}"
                     if "ap" in metrics and "ap50" in metrics else "")
            self.status = (f"published {version.model_key} version {version.version} "
                           f"({', '.join(version.labels)}{score})")
            return version.uri
        finally:
            self.busy = False


class PublishPanel(W.VBox):
    """Run, store, namespace, a progress bar and the version's URI over a ``PublishState``.

    ``background``: publishing runs in a thread (tests pass False)."""

    def __init__(self, state: PublishState | None = None, *, background: bool = True,
                 **kwargs: Any) -> None:
        self.state = p = state if state is not None else PublishState()
        self.actions = Background(background, "cvatkit-publish")
        wide = W.Layout(width="min(100%, 640px)")
        self.run_dir = W.Combobox(description="Run", options=[], ensure_option=False,
                                  layout=wide, placeholder="a completed run folder")
        self.store = W.Text(description="Store", layout=wide,
                            placeholder="s3://bucket/prefix or a local folder")
        self.namespace = W.Text(description="Namespace", placeholder="e.g. lab")
        self.model_key = W.Text(description="Model key", placeholder="the run's model")
        self.create_bucket = W.Checkbox(description="create the bucket if missing",
                                        indent=False)
        self.publish_button = W.Button(description="Publish", icon="cloud-upload",
                                       button_style="primary")
        self.progress = W.FloatProgress(min=0.0, max=1.0, description="Upload")
        self.progress_text = W.HTML()
        self.published = W.HTML()
        self.publish_error = W.HTML()
        for name, control in (("run_dir", self.run_dir), ("store", self.store),
                              ("namespace", self.namespace), ("model_key", self.model_key),
                              ("create_bucket", self.create_bucket)):
            W.link((p, name), (control, "value"))
        W.dlink((p, "progress"), (self.progress, "value"))
        self.publish_button.on_click(lambda _b: self.actions.run(p.publish))
        p.observe(self._show_publish, names=["run_choices", "sent_bytes", "total_bytes",
                                             "published_uri", "status", "error", "busy"])

        super().__init__([
            W.HTML("<h4>Publish to the model store</h4>"), self.run_dir, self.store,
            W.HBox([self.namespace, self.model_key]), self.create_bucket,
            W.HTML(f"<small>{html.escape(CREDENTIALS_NOTE)}</small>"),
            W.HBox([self.publish_button, self.progress, self.progress_text]),
            self.published, self.publish_error], **kwargs)
        self._show_publish()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background publish to end (for scripts and tests)."""
        self.actions.wait(timeout)

    def _show_publish(self, _change=None) -> None:
        p = self.state
        self.run_dir.options = list(p.run_choices)
        self.progress_text.value = (
            f"<small>{format_bytes(p.sent_bytes)} of {format_bytes(p.total_bytes)}</small>"
            if p.total_bytes else "")
        self.published.value = (f"<b>{html.escape(p.published_uri)}</b><br>"
                                f"<small>{html.escape(p.status)}</small>"
                                if p.published_uri else
                                f"<small>{html.escape(p.status)}</small>" if p.status else "")
        self.publish_error.value = error_html(p.error)
        self.publish_button.disabled = p.busy
