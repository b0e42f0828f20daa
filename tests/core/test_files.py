"""Files and folders appear whole or not at all; output folders are checked one way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cvatkit.errors import OutputExistsError, UsageError
from cvatkit.files import (copy_file, folder_written_aside, remove_stale_partials,
                           require_new_or_empty, write_text_file)


def test_a_folder_appears_whole_and_replaces_the_old_one(tmp_path):
    dest = tmp_path / "out"
    with folder_written_aside(dest) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not dest.exists()  # nothing there until the block ends
    assert (dest / "a.txt").read_text() == "1"
    with folder_written_aside(dest) as tmp:
        (tmp / "b.txt").write_text("2")
        assert (dest / "a.txt").exists()  # readers still see the old one meanwhile
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no leftovers


def test_a_failure_leaves_the_old_folder_and_nothing_else(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with folder_written_aside(dest) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in dest.iterdir()] == ["old.txt"]


def test_partial_folders_of_killed_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".out.partial-{dead}-0"
    stale.mkdir()
    mine = tmp_path / f".out.partial-{os.getpid()}-99"
    mine.mkdir()  # a live process's work in progress stays
    other = tmp_path / f".other.partial-{dead}-0"
    other.mkdir()
    remove_stale_partials(tmp_path / "out")
    assert not stale.exists() and mine.exists() and other.exists()


def test_files_written_aside(tmp_path):
    dest = write_text_file(tmp_path / "sub" / "a.txt", "text")
    assert dest.read_text() == "text"
    assert copy_file(dest, tmp_path / "b.txt").read_text() == "text"
    with pytest.raises(UsageError, match="is a folder"):
        write_text_file(tmp_path / "sub", "x")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.txt"]


def test_new_or_empty_folders_only(tmp_path):
    require_new_or_empty(tmp_path / "new", "choose another")
    (tmp_path / "empty").mkdir()
    require_new_or_empty(tmp_path / "empty", "choose another")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match=r"file is a file; choose another$"):
        require_new_or_empty(tmp_path / "file", "choose another")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OutputExistsError,
                       match="full is not empty and does not hold a run; pick another"):
        require_new_or_empty(tmp_path / "full", "pick another", not_ours="a run")


@pytest.mark.parametrize("name, problem", [
    ("../outside.jpg", "climbs out with '..'"),
    ("images/../../outside.jpg", "climbs out with '..'"),
    ("..\\outside.jpg", "climbs out with '..'"),
    ("/etc/hostname", "is an absolute path"),
    ("\\\\server\\share\\x.jpg", "is an absolute path"),
    ("C:\\photos\\x.jpg", "is an absolute path"),
    ("", "is empty"),
    ("a\x00.jpg", "NUL"),
    (None, "is not a name"),
])
def test_a_name_that_would_lead_out_of_its_root_is_refused_everywhere(name, problem,
                                                                       tmp_path):
    import zipfile

    from cvatkit.cvat.container import add_to_zip
    from cvatkit.errors import SourceError, StoreError
    from cvatkit.files import inside
    from cvatkit.store import open_store

    with pytest.raises(UsageError, match=f"would be outside .*{problem}.*; fix it"):
        inside(tmp_path, name, what="the entry", fix="fix it")
    with pytest.raises(StoreError, match=f"the store's key .*{problem}"):
        open_store(str(tmp_path / "store")).put_bytes(name, b"x")
    with zipfile.ZipFile(tmp_path / "out.zip", "w") as z, \
            pytest.raises(SourceError, match=f"cannot be a file of an export .*{problem}"):
        add_to_zip(z, name, b"x")
    assert not (tmp_path / "outside.jpg").exists() and not (tmp_path / "store").exists()


@pytest.mark.parametrize("name", ["a.jpg", "sub/dir/a.jpg", "a..b.jpg", ".hidden", "x:y.jpg"])
def test_a_name_inside_its_root_is_taken_as_it_is(name, tmp_path):
    from cvatkit.files import inside, name_problem

    assert name_problem(name) is None
    assert inside(tmp_path, name, what="the entry", fix="") == tmp_path / name


def test_an_output_folder_that_is_a_link_is_filled_where_it_points(tmp_path):
    target = tmp_path / "on the big disk"
    target.mkdir()
    link = tmp_path / "dataset"
    link.symlink_to(target, target_is_directory=True)
    with folder_written_aside(link) as tmp:
        (tmp / "a.txt").write_text("1")
    assert link.is_symlink() and (target / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "on the big disk"]


def test_what_a_killed_writer_left_half_done_is_removed_by_the_next(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".model.pb.{gone.pid}-1.partial"
    live = tmp_path / f".model.pb.{os.getpid()}-2.partial"  # being written right now
    dead.write_text("half")
    live.write_text("half")
    write_text_file(tmp_path / "model.pb", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.pb", live.name])
