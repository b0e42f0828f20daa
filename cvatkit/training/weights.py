"""Initial weights: downloaded only when asked for, cached, and verified.

Each catalog entry names the files of its weights (a .tar.gz of a TF checkpoint, the
files of a checkpoint, or a Keras .h5). They are fetched into ``weights/`` of cvatkit's
cache (``$CVATKIT_CACHE``, default ``~/.cache/cvatkit``), checked against the entry's
SHA-256 digests when it gives them and pinned on first download otherwise, so a cached
copy that changes on disk is caught before training starts from it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from ..addresses import redacted
from ..errors import WeightsError
from ..files import cache_root, copy_file, folder_written_aside, sha256_file
from ..limits import ANSWER
from ..progress import BYTES, Progress, no_progress
from .catalog import Weights

_CHUNK = 1 << 20
_DONE = "complete.json"


def fetch_weights(weights: Weights, *, cache: Path | None = None,
                  progress: Progress = no_progress) -> Path:
    """The local path of ``weights`` (a checkpoint prefix or an .h5 file), fetching them
    on first use. ``progress`` is told of each file's download (``downloading NAME``, in
    bytes)."""
    if not weights.urls:
        raise WeightsError(f"{weights.description}: no files to fetch")
    key = hashlib.sha256("\n".join(weights.urls).encode()).hexdigest()[:16]
    folder = (cache or cache_root()) / "weights" / key
    done = folder / _DONE
    if done.is_file():
        record = json.loads(done.read_text())
        _verify(folder, record["files"], weights)
        return folder / record["path"]
    drop = dropped_files(cache)
    with folder_written_aside(folder) as tmp:
        files = {}
        for url in weights.urls:
            name = url.rsplit("/", 1)[-1].split("?", 1)[0]
            if (drop / name).is_file():  # put there by hand on a machine that is offline
                copy_file(drop / name, tmp / "files" / name)
                files[name] = sha256_file(tmp / "files" / name)
            else:
                files[name] = _download(url, tmp / "files" / name, progress, drop / name)
            expected = weights.sha256.get(name)
            if expected and expected != files[name]:
                raise WeightsError(
                    f"{redacted(url)} has SHA-256 {files[name]}, the catalog expects "
                    f"{expected}: the download is damaged or the file changed; try again later")
        path = _unpack(tmp, weights, list(files))
        (tmp / _DONE).write_text(json.dumps({"files": files, "path": path,
                                             "urls": list(weights.urls)}, indent=2))
    return folder / path


def dropped_files(cache: Path | None = None) -> Path:
    """Where to put a weights file downloaded by hand (on another machine): it is used
    instead of downloading, verified like a download."""
    return (cache or cache_root()) / "weights" / "downloads"


def _download(url: str, dest: Path, progress: Progress, drop: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=ANSWER.value()) as resp, \
                open(dest, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            progress.start(f"downloading {dest.name}", total, unit=BYTES)
            done = 0
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                progress.advance(len(chunk))
            if total is not None and done != total:
                raise WeightsError(f"{redacted(url)}: the download stopped after {done} of "
                                   f"{total} bytes; try again. " + _instead(drop))
    except urllib.error.HTTPError as e:
        raise WeightsError(f"could not download {redacted(url)}: the server answered "
                           f"{e.code}. " + _instead(drop)) from None
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = (f"the server did not answer within {ANSWER.units()} seconds; set "
                      f"{ANSWER.env} higher to wait longer")
        if isinstance(e, http.client.IncompleteRead):
            reason = f"the connection closed after {len(e.partial)} more bytes"
        raise WeightsError(f"could not download {redacted(url)} ({reason}). "
                           + _instead(drop)) from None
    return digest.hexdigest()


def _instead(drop: Path) -> str:
    return (f"On a machine without internet, download it elsewhere and put it at {drop}; "
            "or train without it (--weights none), best with the model made for that "
            "(ssd-mobilenet-v2-small)")


def _unpack(folder: Path, weights: Weights, names: list[str]) -> str:
    files = folder / "files"
    archives = [n for n in names if n.endswith((".tar.gz", ".tgz", ".tar"))]
    if archives:
        out = folder / "unpacked"
        for name in archives:
            try:
                with tarfile.open(files / name) as tar:
                    tar.extractall(out, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise WeightsError(f"{name} is not a readable archive ({e})") from None
        base = out
    else:
        base = files
    if weights.kind == "keras_h5":
        target = next(iter(base.rglob(weights.checkpoint or "*.h5")), None)
        if target is None:
            raise WeightsError(f"{weights.description}: no .h5 file among the downloads")
        return str(target.relative_to(folder))
    if weights.checkpoint:
        prefix = next((p.with_suffix("") for p in base.rglob(weights.checkpoint + ".index")),
                      None)
    else:
        indexes = sorted(base.rglob("*.index"))
        prefix = indexes[-1].with_suffix("") if indexes else None
    if prefix is None or not list(prefix.parent.glob(prefix.name + ".data-*")):
        raise WeightsError(f"{weights.description}: the download holds no complete TF "
                           "checkpoint (.index and .data files)")
    return str(prefix.relative_to(folder))


def _verify(folder: Path, files: dict[str, str], weights: Weights) -> None:
    for name, pinned in files.items():
        path = folder / "files" / name
        try:
            actual = sha256_file(path)
        except OSError:
            raise WeightsError(f"cached weights file {path} is missing; delete {folder} to "
                               "download again") from None
        expected = weights.sha256.get(name, pinned)
        if actual != expected:
            raise WeightsError(f"cached weights file {path} no longer matches its SHA-256; "
                               f"delete {folder} to download it again")
