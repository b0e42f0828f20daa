"""Commands that run out of room as they write (a full disk, a quota, a size limit) name
what they were writing and leave nothing half-written. A real process with a file size
limit (``ulimit -f``) stands in for a full disk: its writes fail the way a full disk's do,
with no privilege needed to set it up."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakes.saved_models import model_garden_like
from helpers import folded

from cvatkit.cvat import SAMPLE_LABELS
from cvatkit.label_files import write_label_files

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from cvatkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cvatkit(limit: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIMITED, str(limit), *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = model_garden_like(tmp_path_factory.mktemp("model") / "saved_model")
    write_label_files(SAMPLE_LABELS, path.parent)
    return path.parent


@pytest.mark.slow  # starts a process a command
@pytest.mark.parametrize("command, limit, written", [
    (["sample", "{out}", "--frames", 40], 32_000, "task.zip"),
    (["prepare", "{task}", "{out}"], 32_000, "{out}"),
    (["predict", "{model}", "{task}", "--out", "{out}", "--limit", 8], 4_000, "{out}"),
    (["annotate", "{model}", "--source", "{task}", "--out", "{out}/pre.zip"], 2_000,
     "pre.zip"),
])
def test_a_command_out_of_room_names_what_it_wrote_and_leaves_nothing(
        command, limit, written, model, sample_cvat, tmp_path):
    out = tmp_path / "out"
    places = {"out": out, "task": sample_cvat, "model": model}
    done = _cvatkit(limit, *[str(a).format(**places) for a in command])
    said = folded(done.stderr)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"{str(written).format(**places)} could not be written: a file grew larger than " \
           "this process may write (ulimit -f); nothing was left half-written" in said, said
    left = [p for p in tmp_path.rglob("*")] if tmp_path.exists() else []
    assert left == [] or left == [out], left  # nothing, or the empty folder given
    assert not out.exists() or not any(out.iterdir())


def test_tensorflow_out_of_room_errors_are_known_by_their_words():
    import errno

    from cvatkit.files import out_of_room

    assert out_of_room(OSError(errno.ENOSPC, "No space left on device")) == \
        "no space is left on its disk"
    assert out_of_room(RuntimeError("/x/variables.data: No space left on device")) == \
        "no space is left on its disk"
    assert out_of_room(OSError(errno.EDQUOT, "x")) == "the disk quota is used up"
    assert out_of_room(OSError(errno.ENOENT, "No such file")) is None


def test_an_export_out_of_room_names_its_folder_not_tensorflows_file(trained, tmp_path):
    """TensorFlow's SavedModel writer runs out of room in its own words: the export is
    named, and nothing of it is left."""
    out = tmp_path / "export again"
    done = _cvatkit(200_000, "export", trained.path, "--out", out)
    said = folded(done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{out} could not be written: a file grew larger than this process may write " \
           "(ulimit -f); nothing was left half-written" in said, said
    assert list(tmp_path.iterdir()) == []
