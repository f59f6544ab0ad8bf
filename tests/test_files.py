"""nnfs.files.write_atomically: the file appears whole or not at all, and the old one survives."""

import os
import stat

import pytest

from nnfs.files import write_atomically


def test_writes_the_content_and_returns_the_path(tmp_path):
    path = tmp_path / "model.npz"
    assert write_atomically(path, lambda f: f.write(b"weights")) == str(path)
    assert path.read_bytes() == b"weights"
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_missing_folders_are_created(tmp_path):
    path = tmp_path / "runs" / "today" / "curves.png"
    write_atomically(str(path), lambda f: f.write(b"png"))
    assert path.read_bytes() == b"png"


def test_replaces_an_existing_file_in_one_step(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    write_atomically(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.parametrize("failure", [OSError("disk full"), TypeError("not JSON"), KeyboardInterrupt()],
                         ids=["OSError", "TypeError", "KeyboardInterrupt"])
def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path, failure):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the good model")

    def write(file):
        file.write(b"half a mod")  # some bytes are already written when it fails
        raise failure

    with pytest.raises(type(failure)):
        write_atomically(path, write)
    assert path.read_bytes() == b"the good model"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_a_failing_first_write_creates_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_atomically(tmp_path / "new" / "model.npz", lambda f: (f.write(b"x"), int("x")))
    assert os.listdir(tmp_path / "new") == []


def test_the_file_is_an_ordinary_readable_file(tmp_path):
    # The temporary file starts private (0600); the result must not stay so.
    path = write_atomically(tmp_path / "model.npz", lambda f: f.write(b"x"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_a_folder_in_the_way_is_an_error_that_leaves_it_alone(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(OSError):
        write_atomically(tmp_path / "model.npz", lambda f: f.write(b"x"))
    assert (tmp_path / "model.npz").is_dir() and os.listdir(tmp_path) == ["model.npz"]
