"""Publishing trained models to a store, listing them, and pulling them back.

A version lives under ``<namespace>/models/<model-key>/<version>/``: ``saved_model/``,
``checkpoints/``, ``label_map.pbtxt``, ``classes.csv``, ``label_map.json``,
``metrics.json``, ``run.json`` and ``manifest.json`` (every file with its size and
SHA-256), written last. A version without a manifest is incomplete: it is never listed
and never pulled, and publishing the same run again completes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from ..errors import ChecksumError, StoreError, UsageError
from ..files import (cache_root, folder_written_aside, inside, require_new_or_empty,
                     sha256_file)
from ..label_files import CLASSES_CSV, LABEL_MAP_JSON, PBTXT
from ..progress import BYTES, Progress, no_progress
from ..runs import BEST, CHECKPOINTS, EXPORT, MODEL_JSON, RUN_JSON, SAVED_MODEL, Run
from .backends import Store, open_store

MANIFEST = "manifest.json"
_LABEL_FILES = (PBTXT, CLASSES_CSV, LABEL_MAP_JSON)
_MODEL_FILES = (MODEL_JSON,)
"""What the export says of its model (labels, input): loading a pulled version checks
its label files against it. (Model Garden's params.yaml stays home: it names local
paths.)"""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True)
class ModelVersion:
    """One complete version in a store."""

    uri: str
    namespace: str
    model_key: str
    version: str
    created: str
    labels: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    source_task: str = ""
    size: int = 0
    run_digest: str = ""


def publish(run_dir: str | os.PathLike[str], store: Store, namespace: str,
            model_key: str | None = None, *, progress: Progress = no_progress) -> ModelVersion:
    """Upload a completed run as a new version (or return the version it already is).
    ``progress`` is told of the upload (``uploading``, in bytes)."""
    _check_name(namespace, "namespace")
    run = Run(run_dir)
    if not run.exists():
        raise UsageError(f"{run.path} is not a cvatkit run (no run.json)")
    if run.status().state != "completed" or not (run.path / EXPORT).is_dir():
        raise UsageError(f"the run {run.path} has not completed (it is "
                         f"{run.status().state}); only a completed run, with its export/, "
                         "can be published")
    record = run.record_json()
    model_key = model_key or _model_key(record, run)
    _check_name(model_key, "model key")
    files = run_files(run)
    sizes = [path.stat().st_size for path, _ in files]
    # The version is named after the run (its record and its files' names and sizes), so the
    # same run always lands in the same version and a broken publish is completed by the
    # next one; the files' SHA-256 go into the manifest, computed while they upload.
    identity = hashlib.sha256(json.dumps(
        [record, [(key, size) for (_, key), size in zip(files, sizes)]],
        sort_keys=True, default=str).encode()).hexdigest()
    created = record.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    version = re.sub(r"[^0-9]", "", created)[:14] + "-" + identity[:10]
    prefix = f"{namespace}/models/{model_key}/{version}/"
    existing = store.get_bytes(prefix + MANIFEST)
    if existing is not None:
        return _version(store, prefix, _manifest(existing, prefix + MANIFEST))
    present = {o.key: o.size for o in store.list(prefix)}
    todo = [(path, prefix + key, size) for (path, key), size in zip(files, sizes)
            if present.get(prefix + key) != size]
    with ThreadPoolExecutor(max_workers=2) as hashing:
        digests = [hashing.submit(sha256_file, path) for path, _ in files]
        progress.start(f"uploading {model_key} {version}", sum(s for _, _, s in todo),
                       unit=BYTES)
        store.put_files([(path, key) for path, key, _ in todo], progress=progress)
        entries = [{"path": key, "size": size, "sha256": d.result()}
                   for (_, key), size, d in zip(files, sizes, digests)]
    manifest = _write_extras(store, prefix, run, record, entries, {
        "namespace": namespace, "model_key": model_key, "version": version,
        "created": created})
    store.put_bytes(prefix + MANIFEST, json.dumps(manifest, indent=2).encode())
    return _version(store, prefix, manifest)


def _write_extras(store: Store, prefix: str, run: Run, record: dict[str, Any],
                  entries: list[dict[str, Any]], identity: dict[str, str]) -> dict[str, Any]:
    """``metrics.json`` and the public ``run.json`` of a version; then the version's
    manifest (``identity``, then its files: ``entries`` and these two), not yet written."""
    metrics = _metrics(run)
    extra = {
        "metrics.json": json.dumps(metrics, indent=2).encode(),
        "run.json": json.dumps(_public_record(record), indent=2, default=str).encode(),
    }
    for name, data in extra.items():
        store.put_bytes(prefix + name, data)
        entries.append({"path": name, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    digest = hashlib.sha256("\n".join(f"{e['path']} {e['sha256']}" for e in entries)
                            .encode()).hexdigest()
    return {
        "format": 1,
        **identity,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_digest": digest,
        "labels": record.get("labels", []),
        "metrics": {k: metrics[k] for k in ("ap", "ap50", "split", "step") if k in metrics},
        "source_task": _source_task(record.get("data") or {}),
        "files": entries,
    }


READERS = 16
"""Manifests read at once: listing a store is waiting on round trips, not on bandwidth."""


def list_models(store: Store, namespace: str, *,
                damaged: list[str] | None = None) -> list[ModelVersion]:
    """The complete versions in ``namespace``, newest first (``damaged``: see
    ``model_pages``)."""
    return [v for page in model_pages(store, namespace, page=1_000_000, damaged=damaged)
            for v in page]


def model_pages(store: Store, namespace: str, *, page: int = 50,
                damaged: list[str] | None = None) -> Iterator[list[ModelVersion]]:
    """The complete versions in ``namespace``, newest first, ``page`` at a time: the
    folders are listed (a version is named after its creation time, so they sort without
    reading anything), then each page's manifests are read ``READERS`` at a time. A folder
    without a manifest is an incomplete version, and is left out. A version whose manifest
    is damaged raises, or, given a ``damaged`` list, is left out and its message added
    there, so that one damaged version hides no other."""
    _check_name(namespace, "namespace")
    root = f"{namespace}/models/"
    keys = store.folders(root)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        folders = [f"{root}{key}/{version}/" for key, versions in
                   zip(keys, pool.map(lambda k: store.folders(f"{root}{k}/"), keys))
                   for version in versions]
        folders.sort(key=lambda prefix: prefix.split("/")[-2], reverse=True)
        for start in range(0, len(folders), max(page, 1)):
            chunk = folders[start:start + max(page, 1)]
            found = pool.map(lambda prefix: (prefix, store.get_bytes(prefix + MANIFEST)), chunk)
            versions = []
            for prefix, data in found:
                if data is None:
                    continue
                try:
                    versions.append(_version(store, prefix, _manifest(data, prefix + MANIFEST)))
                except StoreError as e:
                    if damaged is None:
                        raise
                    damaged.append(str(e))
            yield versions


def pull(uri: str, dest: str | os.PathLike[str] | None = None, *,
         progress: Progress = no_progress) -> Path:
    """A version's files in a local folder (default: a cache), checksums verified.
    ``progress`` is told of the download (``downloading``, in bytes)."""
    store, prefix = _split_version_uri(uri)
    data = store.get_bytes(prefix + MANIFEST)
    if data is None:
        raise StoreError(f"{uri} is not a complete model version (no {MANIFEST}); list the "
                         "versions with `cvatkit list`, or publish the run again")
    manifest = _manifest(data, prefix + MANIFEST)
    target = Path(dest) if dest is not None else _cache_dir(uri)
    if (target / MANIFEST).is_file() and (target / MANIFEST).read_bytes() == data:
        return target
    require_new_or_empty(target, "pull into an empty or new folder")
    with folder_written_aside(target) as tmp:
        progress.start(f"downloading {manifest['model_key']} {manifest['version']}",
                       sum(e["size"] for e in manifest["files"]), unit=BYTES)
        for entry in manifest["files"]:
            local = inside(tmp, entry["path"], what=f"{uri}: {MANIFEST} names the file",
                           error=StoreError, fix="the store's copy is not to be trusted: "
                           "delete that version and publish the run again")
            local.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(prefix + entry["path"], local, progress=progress)
            actual = sha256_file(local)
            if actual != entry["sha256"]:
                raise ChecksumError(
                    f"{entry['path']} of {uri} has SHA-256 {actual}, its manifest says "
                    f"{entry['sha256']}: the stored copy is damaged; publish the run again")
        (tmp / MANIFEST).write_bytes(data)
    return target


def _manifest(data: bytes, key: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        if not isinstance(manifest.get("files"), list):
            raise ValueError("no file list")
        missing = [k for k in ("namespace", "model_key", "version", "created")
                   if not isinstance(manifest.get(k), str)]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        for entry in manifest["files"]:
            if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                    and isinstance(entry.get("sha256"), str)
                    and isinstance(entry.get("size"), int)):
                raise ValueError(f"a file entry is not a path, size and sha256: {entry!r:.80}")
        return manifest
    except (ValueError, AttributeError) as e:
        raise StoreError(f"{key} in the store is damaged ({e}); delete that version's "
                         "folder and publish the run again") from None


def is_version_uri(text: str) -> bool:
    return text.startswith(("s3://", "file://")) and "/models/" in text


def _split_version_uri(uri: str) -> tuple[Store, str]:
    m = re.match(r"^(?P<root>.*?)/(?P<ns>[^/]+)/models/(?P<key>[^/]+)/(?P<version>[^/]+)/?\Z",
                 uri)
    if not m:
        raise UsageError(f"{uri!r} is not a model version: expected "
                         "STORE/NAMESPACE/models/MODEL_KEY/VERSION (as `cvatkit list` shows)")
    return open_store(m["root"]), f"{m['ns']}/models/{m['key']}/{m['version']}/"


def _version(store: Store, prefix: str, manifest: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        uri=f"{store.uri.rstrip('/')}/{prefix.rstrip('/')}",
        namespace=manifest["namespace"], model_key=manifest["model_key"],
        version=manifest["version"], created=manifest["created"],
        labels=tuple(manifest.get("labels", [])), metrics=manifest.get("metrics", {}),
        source_task=manifest.get("source_task", ""),
        size=sum(f["size"] for f in manifest.get("files", [])),
        run_digest=manifest.get("run_digest", ""))


def run_files(run: Run) -> list[tuple[Path, str]]:
    """The files ``publish`` uploads for a run, with their keys inside the version."""
    export = run.path / EXPORT
    files = [(p, f"{SAVED_MODEL}/" + p.relative_to(export / SAVED_MODEL).as_posix())
             for p in sorted((export / SAVED_MODEL).rglob("*")) if p.is_file()]
    files += [(export / n, n) for n in (*_LABEL_FILES, *_MODEL_FILES)
              if (export / n).is_file()]
    ckpt = run.path / CHECKPOINTS
    files += [(p, f"{CHECKPOINTS}/{p.name}") for p in sorted(ckpt.glob("*")) if p.is_file()]
    if (ckpt / BEST).is_dir():  # the checkpoint the export was made from, to start from
        files += [(p, f"{CHECKPOINTS}/{BEST}/{p.name}") for p in sorted((ckpt / BEST).glob("*"))
                  if p.is_file()]
    if not any(k.startswith("saved_model/saved_model.pb") for _, k in files):
        raise UsageError(f"{export} has no saved_model/saved_model.pb; train the run to "
                         "completion again")
    return files


def _metrics(run: Run) -> dict[str, Any]:
    """What the evaluation of the exported checkpoint gave."""
    e = run.exported_evaluation()
    if e is None:
        return {}
    return {"ap": e.ap, "ap50": e.ap50, "per_class": e.per_class, "split": e.split,
            "step": e.step, "coco": e.metrics}


def _model_key(record: dict[str, Any], run: Run) -> str:
    """The catalog key the run's record names."""
    model = record.get("model")
    key = model.get("key") if isinstance(model, dict) else None
    if not isinstance(key, str) or not key:
        raise UsageError(f"{run.path / RUN_JSON} names no model (model.key); give the "
                         "version's model key (--model-key), or restore the file")
    return key


def _public_record(record: dict[str, Any]) -> dict[str, Any]:
    """run.json as published: what the run was, not where it lay on this machine."""
    out = json.loads(json.dumps(record, default=str))
    for section in ("data", "eval_data"):
        if isinstance(out.get(section), dict):
            out[section].pop("path", None)
    if isinstance(out.get("init"), dict):
        out["init"].pop("path", None)
        if out["init"].get("kind") == "run":
            out["init"]["source"] = Path(str(out["init"].get("source", ""))).name
    weights = str(out.get("weights") or "")
    if weights and "://" not in weights and weights not in ("coco", "imagenet", "none"):
        out["weights"] = Path(weights).name  # an earlier run on this machine: its name
    return out


def _source_task(data: dict[str, Any]) -> str:
    """The task a run was trained on, as its run.json records it."""
    if not data.get("source"):
        return ""
    return f"{data.get('task', '')} ({data['source']})".strip()


def check_namespace(name: str) -> None:
    """Refuse a namespace ``publish`` and ``list`` would refuse."""
    _check_name(name, "namespace")


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name or ""):
        raise UsageError(f"{what} {name!r} may hold letters, digits, '.', '_' and '-' only")


def _cache_dir(uri: str) -> Path:
    return cache_root() / "models" / hashlib.sha256(uri.encode()).hexdigest()[:16]
