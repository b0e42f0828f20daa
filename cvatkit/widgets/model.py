"""Choosing the model, the GPUs, the starting checkpoint and the hyperparameters.

``ModelState`` keeps the hyperparameters as the ``key=value`` text of CVAT's training
workflow and a small form of the most used keys in step: editing the text refills the
form, editing a field rewrites its line of the text (keeping the user's spelling of the
key and any comment). Every edit is checked at once by cvatkit's own parser and resolver,
so the message names the line or the key at fault. ``ModelPanel`` lays out the controls.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as W
from traitlets import Dict, HasTraits, Int, List, Unicode, observe, validate

from cvatkit import (CHECKPOINTS, CvatkitError, LabelMap, Progress, UsageError, list_runs,
                     no_progress)
from cvatkit.dataset import Dataset, load_dataset
from cvatkit.store import model_pages, open_store
from cvatkit.training import (BUILT_IN, BY_KEY, DEFAULT_MODEL, PARAMS, ModelSpec, RunPlan,
                              canonical_key, check_start, convert,
                              count_gpus, default_value, format_value, get_model, line_values,
                              load_catalog, parse_hparams, plan_run, read_record, resolve,
                              set_line)

from ._background import Background
from ._errors import error_html, reports_errors

FORM_KEYS = ("num-steps", "batch-size", "initial-learning-rate", "image-size")
"""The keys the form shows, in canonical spelling."""
FORM_LABELS = {"num-steps": "Steps", "batch-size": "Batch size",
               "initial-learning-rate": "Learning rate", "image-size": "Image size"}
CLONES = "num-clones"
VERSIONS_PAGE = 50
"""Store versions added to the choices at a time, while the rest are read."""


class ModelState(HasTraits):
    """The model, GPUs, starting checkpoint and hyperparameters of the next run."""

    model = Unicode(DEFAULT_MODEL, help="a key of the model catalog")
    advice = Unicode("", help="what the catalog says about the model, as text")
    gpus_detected = Int(0, help="GPUs this machine has (count_gpus)")
    gpus = Int(0, help="GPUs to train on (0: the CPU); written as num-clones")
    init_checkpoint = Unicode("", help="what the run starts from: coco, imagenet, none, a "
                                       "run folder, one of its checkpoints, or a "
                                       "model-store version URI; '' for the model's default")
    checkpoint_choices = List(help="run folders and store versions found to start from")
    start_choices = List(help="what the chosen model can start from: its published "
                              "weights, none, and the runs and versions of its architecture")
    store = Unicode("", help="the model store whose versions to offer as starting points")
    namespace = Unicode("", help="the namespace in that store")
    text = Unicode("", help="hyperparameters, one key=value per line")
    form = Dict(help="FORM_KEYS -> the value as text ('' = the model's default)")
    defaults = Dict(help="FORM_KEYS -> the model's default, as text")
    values = Dict(help="the values of the last text that parsed, by canonical key")
    task_labels = List(help="the chosen task's labels (from its report): a starting "
                            "checkpoint is checked against them before any data is prepared")
    message = Unicode("", help="what is wrong with the current choice ('' if nothing)")
    notes = Unicode("", help="hints from the resolver, such as the recommended num-steps")

    def __init__(self, *, catalog: dict[str, ModelSpec] | None = None,
                 gpus_detected: int | None = None, data: Dataset | None = None,
                 **kwargs: Any) -> None:
        catalog_error = ""
        if catalog is None:
            try:
                catalog = load_catalog()
            except CvatkitError as e:  # a broken user catalog must not hide the built-ins
                catalog, catalog_error = {s.key: s for s in BUILT_IN}, str(e)
        self.catalog = catalog
        self.data = data
        self._version_labels: dict[str, tuple[str, ...]] = {}
        self._architectures: dict[str, tuple[str, str]] = {}
        """run folder or version URI -> (family, backbone) of the model it trained"""
        self._syncing = False
        self._editing: str | None = None
        detected = count_gpus() if gpus_detected is None else gpus_detected
        kwargs.setdefault("gpus", min(1, detected))
        super().__init__(gpus_detected=detected, **kwargs)
        self._describe_model()
        self._validate()
        if catalog_error:
            self.message = catalog_error

    @property
    def spec(self) -> ModelSpec:
        return self.catalog[self.model]

    # -- edits -----------------------------------------------------------------------------

    def set_field(self, key: str, value: str) -> bool:
        """Set a form field (``''``: the model's default) and rewrite its line of the text."""
        key = canonical_key(key)
        if key not in BY_KEY:
            self.message = f"unknown hyperparameter {key!r}"
            return False
        raw = value.strip()
        self.form = {**self.form, key: raw} if key in FORM_KEYS else self.form
        if raw:
            try:
                convert(BY_KEY[key], raw, f"the {key} field")
            except CvatkitError as e:
                self.message = str(e)
                return False
        self._editing = key
        try:
            new_text = set_line(self.text, key, raw)
            if new_text == self.text:
                self._validate()
            self.text = new_text
        finally:
            self._editing = None
        return not self.message

    @reports_errors("message")
    def set_data(self, data_dir: str) -> bool:
        """Check against a prepared dataset from now on (its frames, labels and split)."""
        self.data = load_dataset(data_dir)
        self._validate()
        return True

    @reports_errors("message")
    def list_runs(self, runs_root: str) -> list[str]:
        """Add the runs under ``runs_root`` that have a checkpoint to the choices."""
        runs = [p for p in list_runs(runs_root) if (p / CHECKPOINTS / "checkpoint").is_file()]
        found = []
        for p in runs:  # a damaged run is left out; the others are offered
            try:
                model = read_record(p).model
            except CvatkitError:
                continue
            self._architectures[str(p)] = (model.family, model.backbone)
            found.append(str(p))
        self._add_choices(found)
        return found

    @reports_errors("message")
    def list_store_versions(self, store_uri: str, namespace: str) -> list[str]:
        """Add the model versions of a store's namespace (newest first) to the choices, a
        page at a time as their manifests arrive; their labels are kept to check a chosen
        version's classes before training."""
        if not store_uri.strip() or not namespace.strip():
            raise UsageError("give the model store (s3://bucket/prefix or a folder) and "
                             "the namespace to list its versions")
        found: list[str] = []
        damaged: list[str] = []
        self.notes = f"listing the model versions in {store_uri} namespace {namespace!r} ..."
        for page in model_pages(open_store(store_uri.strip()), namespace.strip(),
                                page=VERSIONS_PAGE, damaged=damaged):
            self._version_labels.update({v.uri: tuple(v.labels) for v in page})
            for v in page:
                spec = self.catalog.get(v.model_key)
                self._architectures[v.uri] = (spec.family, spec.backbone) if spec \
                    else ("", "")
            found += [v.uri for v in page]
            self._add_choices([v.uri for v in page])
            self.notes = f"{len(found)} model versions listed so far ..."
        self.notes = "\n".join(
            [f"{len(found)} model version{'s' * (len(found) != 1)} in {store_uri} "
             f"namespace {namespace!r}, newest first" if found
             else f"no model versions in {store_uri} namespace {namespace!r}"]
            + [f"left out: {message}" for message in damaged])
        return found

    @reports_errors("message")
    def plan(self, data_dir: str, *, eval_data: str | os.PathLike[str] | None = None,
             progress: Progress = no_progress) -> RunPlan | None:
        """The checked plan of a run on the prepared dataset ``data_dir`` (evaluated on
        ``eval_data`` when given), or None with the reason in ``message``. (A store
        version or published weights are downloaded here, once; ``progress`` is told of
        the download.)"""
        plan = plan_run(data_dir, self.model, self.text,
                        weights=self.init_checkpoint.strip() or None, eval_data=eval_data,
                        catalog=self.catalog, gpus=self.gpus_detected, progress=progress)
        self.notes = "\n".join(plan.notes)
        return plan

    # -- keeping things in step -------------------------------------------------------------

    @validate("model")
    def _known_model(self, proposal) -> str:
        return get_model(proposal.value, self.catalog).key

    @validate("gpus")
    def _gpus_in_range(self, proposal) -> int:
        n = proposal.value
        if not 0 <= n <= max(self.gpus_detected, 1):
            raise UsageError(f"{n} GPUs asked for; this machine has {self.gpus_detected}")
        return n

    @observe("model")
    def _model_changed(self, change) -> None:
        self._describe_model()
        self._validate()
        self._offer_starts()

    @observe("checkpoint_choices")
    def _choices_changed(self, change) -> None:
        self._offer_starts()

    def _offer_starts(self) -> None:
        """The model's published weights and none, then the runs and versions found whose
        model has its architecture (a checkpoint starts only the same family and
        backbone)."""
        arch = (self.spec.family, self.spec.backbone)
        self.start_choices = [*self.spec.weight_kinds, *(
            c for c in self.checkpoint_choices if self._architectures.get(c, arch) == arch)]

    @observe("text", "init_checkpoint", "task_labels")
    def _inputs_changed(self, change) -> None:
        self._validate()

    @observe("gpus")
    def _gpus_changed(self, change) -> None:
        if not self._syncing:
            self.set_field(CLONES, str(change.new) if change.new > 1 else "")

    def _describe_model(self) -> None:
        spec = self.spec
        gpus = f"; made for {spec.min_gpus} or more GPUs" if spec.min_gpus else ""
        self.advice = (f"{spec.title}: {spec.family} on {spec.backbone}, {spec.image_size} px; "
                       f"batch {spec.batch_size} per GPU, learning rate "
                       f"{spec.learning_rate:g}, {spec.num_steps} steps{gpus}. "
                       f"{self._weights_text(spec)}.\n{spec.advice}")
        self._set_defaults()

    @staticmethod
    def _weights_text(spec: ModelSpec) -> str:
        others = f" (or: {', '.join(spec.other_weights)})" if spec.other_weights else ""
        return f"Starts from {spec.weights_note}{others}"

    def _set_defaults(self) -> None:
        values = {CLONES: max(1, self.values.get(CLONES, 1))}
        self.defaults = {key: format_value(default_value(self.spec, key, values, self.data,
                                                         weights=self.init_checkpoint.strip()))
                         for key in FORM_KEYS}

    def _validate(self) -> None:
        self._fill_form()
        try:
            values = parse_hparams(self.text)
        except CvatkitError as e:
            self.message, self.notes = str(e), ""
            return
        self.values = values
        self._sync_gpus(values)
        self._set_defaults()
        try:
            _hp, notes = resolve(self.spec, values, self._data_for_checks(values),
                                 gpus=self.gpus_detected,
                                 weights=self.init_checkpoint.strip())
            checkpoint_note = self._check_checkpoint()
        except CvatkitError as e:
            self.message, self.notes = str(e), ""
            return
        self.message = ""
        notes = list(notes) if self.data is not None else []
        self.notes = "\n".join([*notes, *([checkpoint_note] if checkpoint_note else [])])

    def _fill_form(self) -> None:
        """The form shows each key's value as the text writes it (first line that sets
        it), whether or not the rest of the text parses; the field being edited keeps
        what is typed in it."""
        written = line_values(self.text)
        form = {k: written.get(k, "") for k in FORM_KEYS}
        if self._editing in form:
            form[self._editing] = self.form.get(self._editing, "")
        self.form = form

    def _sync_gpus(self, values: dict[str, Any]) -> None:
        clones = values.get(CLONES)
        gpus = clones if clones is not None else min(1, self.gpus_detected)
        if 0 <= gpus <= max(self.gpus_detected, 1) and gpus != self.gpus:
            self._syncing = True
            try:
                self.gpus = gpus
            finally:
                self._syncing = False

    def _data_for_checks(self, values: dict[str, Any]) -> Dataset:
        if self.data is not None:
            return self.data
        # Before a dataset is prepared: a stand-in that lets every dataset-free check run.
        return Dataset(path=Path("."), labels=LabelMap(()), train_frames=1000, val_frames=0,
                       include_masks=True, val_fraction=values.get("val-split", 0.1))

    def _check_checkpoint(self) -> str:
        """What the run is to start from, checked (``check_start``) against the prepared
        dataset's labels, else the task's when its report is known; a store version
        against the labels it was listed with."""
        path = self.init_checkpoint.strip()
        labels = tuple(self.data.labels.names) if self.data is not None else \
            tuple(self.task_labels) or None
        note = check_start(self.spec, path, labels, trained=self._version_labels.get(path))
        return f"note: {note}" if note else ""

    def _add_choices(self, found: list[str]) -> None:
        self.checkpoint_choices = list(dict.fromkeys([*self.checkpoint_choices, *found]))


def hparams_help_html() -> str:
    """Every hyperparameter key and what it does, as a collapsed HTML table."""
    rows = "".join(f"<tr><td><code>{p.key}</code></td><td>{html.escape(p.describe())}</td>"
                   "</tr>" for p in PARAMS)
    return (f"<details><summary>All hyperparameters</summary><table>{rows}</table>"
            "</details>")


class ModelPanel(W.VBox):
    """Controls over a ``ModelState``."""

    def __init__(self, state: ModelState | None = None, *, background: bool = True,
                 **kwargs: Any) -> None:
        self.state = s = state if state is not None else ModelState()
        self.actions = Background(background, "cvatkit-store-list")
        wide = W.Layout(width="min(100%, 640px)")
        self.model = W.Dropdown(options=[(f"{k}: {spec.title}", k)
                                         for k, spec in s.catalog.items()],
                                description="Model", layout=wide)
        self.advice = W.HTML()
        self.gpus = W.IntSlider(min=min(1, s.gpus_detected), max=max(s.gpus_detected, 0),
                                description="GPUs", disabled=s.gpus_detected <= 1)
        self.gpu_note = W.HTML(
            f"{s.gpus_detected} GPU(s) found" if s.gpus_detected
            else "no GPU found: training runs on the CPU")
        self.checkpoint = W.Combobox(
            description="Start from", options=[], ensure_option=False, layout=wide,
            placeholder="the model's default; coco, imagenet, none, a run folder, "
                        "or s3://.../models/KEY/V")
        self.text = W.Textarea(description="Hyperparameters", continuous_update=True,
                               style={"description_width": "120px"},
                               placeholder="one key=value per line, e.g.\nnum-steps=100",
                               layout=W.Layout(width="min(100%, 640px)", height="8em"))
        self.fields = {key: W.Text(description=FORM_LABELS[key], continuous_update=True,
                                   style={"description_width": "120px"})
                       for key in FORM_KEYS}
        self.store = W.Text(description="Store", placeholder="s3://bucket/prefix or a folder",
                            layout=W.Layout(width="min(100%, 380px)"))
        self.namespace = W.Text(description="Namespace", placeholder="e.g. lab",
                                layout=W.Layout(width="220px"))
        self.list_button = W.Button(description="List its versions", icon="list",
                                    layout=W.Layout(width="auto"))
        self.list_button.on_click(lambda _b: self.actions.run(
            lambda: s.list_store_versions(s.store, s.namespace)))
        self.message = W.HTML()
        self.notes = W.HTML()
        self._showing = False

        for name in ("model", "gpus", "text"):
            W.link((s, name), (getattr(self, name), "value"))
        W.link((s, "init_checkpoint"), (self.checkpoint, "value"))
        W.link((s, "store"), (self.store, "value"))
        W.link((s, "namespace"), (self.namespace, "value"))
        for key, field in self.fields.items():
            field.observe(lambda change, key=key: self._on_field(key, change.new),
                          names="value")
        s.observe(self._show_form, names=["form", "defaults"])
        s.observe(self._show_text, names=["advice", "message", "notes"])
        s.observe(self._show_choices, names="start_choices")

        form = W.GridBox(list(self.fields.values()),
                         layout=W.Layout(grid_template_columns="repeat(2, 320px)"))
        super().__init__([self.model, self.advice, W.HBox([self.gpus, self.gpu_note]),
                          self.checkpoint,
                          W.HBox([self.store, self.namespace, self.list_button]),
                          form, self.text,
                          W.HTML(hparams_help_html()), self.message, self.notes], **kwargs)
        self._show_form()
        self._show_text()
        self._show_choices()

    def _on_field(self, key: str, value: str) -> None:
        if not self._showing:
            self.state.set_field(key, value)

    def _show_form(self, _change=None) -> None:
        self._showing = True
        try:
            for key, field in self.fields.items():
                field.placeholder = self.state.defaults.get(key, "")
                field.value = self.state.form.get(key, "")
        finally:
            self._showing = False

    def _show_text(self, _change=None) -> None:
        s = self.state
        self.advice.value = "<br>".join(html.escape(p) for p in s.advice.splitlines())
        self.message.value = error_html(s.message)
        self.notes.value = (f"<small>{html.escape(s.notes)}</small>" if s.notes else "")

    def _show_choices(self, _change=None) -> None:
        self.checkpoint.options = list(self.state.start_choices)
