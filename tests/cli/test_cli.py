"""The command line: help everywhere, the sample task, the check command."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from helpers import folded

from cvatkit.cli import main

COMMANDS = ["sample", "prepare", "check", "tasks", "models", "train", "worker", "stop",
            "export", "export-pretrained", "status",
            "publish", "list", "pull", "s3-serve", "predict", "evaluate", "rank",
            "annotate", "serverless", "cluster"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cvatkit {command}")
    assert len(out.splitlines()) > 4 and "SUPPRESS" not in out


def test_top_level_help_lists_every_command_and_nothing_else(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.split("COMMAND\n", 2)[-1].splitlines()
              if line.startswith("    ") and not line.startswith("     ")]
    assert listed == COMMANDS
    assert "SUPPRESS" not in out and "train-worker" not in out


def test_no_command_and_bad_arguments_exit_2(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["prepare"])
    assert e.value.code == 2
    assert "required: SOURCE, OUT_DIR" in folded(capsys.readouterr().err)


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "cvatkit", "sample", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "usage: cvatkit sample" in r.stdout


def test_sample_is_deterministic_and_seeded(tmp_path, capsys):
    def digest(d):
        return hashlib.sha256((d / "task.zip").read_bytes()).hexdigest()

    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert main(["sample", str(tmp_path / name), "--frames", "5", "--test-frames", "2",
                     "--seed", str(seed)]) == 0
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    assert "5 frames" in folded(capsys.readouterr().out)
    assert main(["sample", str(tmp_path / "d"), "--frames", "0"]) == 2


def test_check_prints_the_report_and_writes_nothing(sample_coco, capsys, tmp_path):
    before = set(sample_coco.parent.iterdir())
    assert main(["check", str(sample_coco)]) == 0
    out = folded(capsys.readouterr().out)
    assert "frames: 40 (36 train, 4 val)" in out
    assert "shapes per label:" in out and "square" in out
    assert set(sample_coco.parent.iterdir()) == before


def test_an_error_is_one_line_with_its_paths_whole(tmp_path, capsys):
    """However long a path, and whatever is in it, the error names it on one line, as it
    is: a person copies it out of the message."""
    folder = tmp_path / ("a folder, with spaces and - hyphens " + "x" * 150)
    missing = folder / "the task export.zip"
    odd_model = folder / "no model here"
    for argv, path in ((["check", str(missing)], missing),
                       (["prepare", str(missing), str(folder / "out")], missing),
                       (["predict", str(odd_model), str(missing), "--out",
                         str(folder / "pred")], odd_model)):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert err.startswith("cvatkit: error: ") and err.count("\n") == 1, err
        assert str(path) in err, err  # verbatim: not broken, not folded


def test_say_error_never_wraps(capsys):
    from cvatkit.cli.common import say_error

    long = "/data/" + " ".join(["word"] * 60) + "/task.zip"
    say_error(f"{long}: no such file or folder;\nfix the path")
    err = capsys.readouterr().err
    assert err == f"cvatkit: error: {long}: no such file or folder; fix the path\n"


def test_an_error_is_shown_briefly_however_much_it_echoes(capsys):
    """A value of a megabyte echoed back in an error is cut to its start."""
    from cvatkit.errors import MAX_SHOWN

    value = "x" * 1_000_000
    assert main(["models", "--catalog", f"/nowhere/{value}.yaml"]) == 2
    err = capsys.readouterr().err
    assert len(err) < MAX_SHOWN + 200 and "characters more)" in err
