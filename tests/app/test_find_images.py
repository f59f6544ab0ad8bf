"""Finding the images to classify: regular files only, nothing opened that could block, no recursion limit."""

import inspect
import os
import shutil
import sys
import types

import pytest

from nnfs.app.cli import train
from nnfs.app.inference import find_images
from nnfs.data import DatasetError
from tests.app.cli.programs import run_example
from tests.imagefolders import mac_and_nas_folders, make_folder, make_photo_folder

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@needs_fifo
def test_entries_that_are_not_regular_files_are_skipped_and_counted(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    os.mkfifo(root / "a" / "pipe.png")
    os.symlink("loop.png", root / "b" / "loop.png")
    os.symlink("/dev/null", root / "b" / "null.jpg")
    os.symlink(str(root / "a"), root / "b" / "link-to-a")  # a folder already walked: not twice
    (root / "b" / "notes.txt").write_text("not an image")
    messages = []
    found = find_images(str(root), messages.append)
    assert found == [str(root / n) for n in ("a/000.png", "a/001.png", "b/000.png", "b/001.png")]
    assert messages == [
        f"skipped 2 entries that are not regular files (not opened), e.g. {root / 'a' / 'pipe.png'}",
        f"skipped 1 entry that cannot be read, e.g. {root / 'b' / 'loop.png'}",
        f"skipped 1 folder reached twice (walked once, at another path), e.g. {root / 'b' / 'link-to-a'}",
        # counted as training counts it (prediction passed over it without a word)
        f"skipped 1 file that is not an image, e.g. {root / 'b' / 'notes.txt'}"]
    assert find_images(str(root)) == found  # silently without warn


def test_folders_written_by_systems_are_passed_over_as_training_does(tmp_path):
    root = mac_and_nas_folders(make_folder(tmp_path / "d", ["a", "b"], per_class=1))
    messages = []
    assert find_images(str(root), messages.append) == [str(root / "a" / "000.png"), str(root / "b" / "000.png")]
    assert messages == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_linked_class_folder_is_scored_as_training_reads_it(tmp_path, capsys):
    elsewhere = make_folder(tmp_path / "elsewhere", ["c"], per_class=2)
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    os.symlink(str(elsewhere / "c"), root / "c")
    os.symlink(str(root), root / "a" / "loop")  # a link back up: walked once, never forever
    save = tmp_path / "m.npz"
    assert train.main(["--dataset", str(root), "--epochs", "1", "--save", str(save), "--cache", "none"]) == 0
    assert "3 classes" in capsys.readouterr().out
    assert find_images(str(root)) == [str(root / n) for n in ("a/000.png", "a/001.png", "b/000.png", "b/001.png",
                                                              "c/000.png", "c/001.png")]


class _WindowsEntry:
    """A DirEntry as on Windows, where its ``stat()`` gives 0 for ``st_ino`` and ``st_dev``."""

    def __init__(self, entry):
        self._entry = entry
        self.name, self.path = entry.name, entry.path

    def is_symlink(self):
        return self._entry.is_symlink()

    def stat(self, follow_symlinks=True):
        info = self._entry.stat(follow_symlinks=follow_symlinks)
        return types.SimpleNamespace(st_mode=info.st_mode, st_ino=0, st_dev=0, st_size=info.st_size)


def test_every_folder_is_walked_where_entries_give_no_inode(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", ["a", "b", "c"], per_class=1)
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda folder: [_WindowsEntry(e) for e in real_scandir(folder)])
    messages = []
    assert find_images(str(root), messages.append) == [str(root / n / "000.png") for n in "abc"]
    assert messages == []


def test_photos_kept_in_icloud_only_are_counted_not_passed_over(tmp_path):
    root = make_folder(tmp_path / "d", ["a"], per_class=1)
    (root / "a" / ".IMG_0001.JPG.icloud").write_bytes(b"bplist00")
    messages = []
    assert find_images(str(root), messages.append) == [str(root / "a" / "000.png")]
    assert messages == ["skipped 1 photo kept in iCloud only (an .icloud placeholder, not read; download it "
                        f"first), e.g. {root / 'a' / '.IMG_0001.JPG.icloud'}"]
    (root / "b").mkdir()
    (root / "b" / ".IMG_0002.png.icloud").write_bytes(b"bplist00")
    (root / "b" / ".IMG_0003.png.icloud").write_bytes(b"bplist00")
    with pytest.raises(DatasetError, match=r"^no images in .*b; it holds 2 photos kept in iCloud only, not "
                                           r"downloaded \(e.g. .*IMG_0002.png.icloud\): download them first$"):
        find_images(str(root / "b"))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_folder_reached_by_a_link_too_is_walked_at_its_real_path(tmp_path):
    # "a" sorts before its target "b": the real folder still wins, the link is what is skipped.
    root = make_folder(tmp_path / "d", ["b"], per_class=1)
    os.symlink("b", root / "a")
    messages = []
    assert find_images(str(root), messages.append) == [str(root / "b" / "000.png")]
    assert messages == [f"skipped 1 folder reached twice (walked once, at another path), e.g. {root / 'a'}"]


@needs_fifo
def test_a_path_that_is_neither_a_file_nor_a_folder_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(DatasetError, match=r"not a regular file or folder \(a FIFO\): .*pipe.png"):
        find_images(str(tmp_path / "pipe.png"))
    os.symlink("self.png", tmp_path / "self.png")
    with pytest.raises(DatasetError, match="cannot read .*self.png: Too many levels of symbolic links"):
        find_images(str(tmp_path / "self.png"))
    with pytest.raises(DatasetError, match="not found"):
        find_images(str(tmp_path / "missing.png"))
    os.symlink("moved.png", tmp_path / "link.png")  # listed, so not "not found"
    with pytest.raises(DatasetError, match=r"^cannot read .*link.png: a broken symbolic link \(its target "
                                           r".*moved.png does not exist\)$"):
        find_images(str(tmp_path / "link.png"))


def test_the_depth_of_a_folder_is_not_limited_by_recursion(tmp_path):
    # Nested 300 deep, searched with room for 100 more Python frames: only a walk that
    # does not recurse per folder gets through. (A tree deeper than the real limit would
    # break shutil.rmtree, and with it pytest's clean-up of its temporary folders.)
    folder = tmp_path
    for _ in range(300):
        folder = folder / "d"
    folder.mkdir(parents=True)
    (folder / "x.png").write_bytes(b"")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 100)
    try:
        found = find_images(str(tmp_path))
    finally:
        sys.setrecursionlimit(limit)
    assert found == [str(folder / "x.png")]


@needs_fifo
def test_predict_never_blocks_on_a_fifo_and_never_runs_ghostscript(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", per_class=2)
    save = tmp_path / "m.npz"
    assert train.main(["--dataset", str(photos), "--epochs", "1", "--save", str(save), "--cache", "none"]) == 0
    os.mkfifo(photos / "star" / "pipe.jpg")
    os.mkfifo(tmp_path / "lone.png")
    (tmp_path / "evil.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    def predict(*paths):
        return run_example("predict", save, *paths)

    done = predict(photos)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"warning: skipped 1 entry that is not a regular file (not opened), "
                                        f"e.g. {photos / 'star' / 'pipe.jpg'}"]
    # Six photos, the accuracy line, and the note that training images are among them.
    assert len(done.stdout.splitlines()) == 6 + 2 and done.stdout.splitlines()[-1].startswith("note: ")
    done = predict(tmp_path / "lone.png")
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: not a regular file or folder (a FIFO): {tmp_path / 'lone.png'}"]
    done = predict(tmp_path / "evil.png")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "not a readable image (corrupt, or not one of PNG, JPEG" in done.stderr


def test_images_are_listed_in_the_order_training_reads_them(tmp_path):
    """The dataset scan sorts names by name_key (composed form): the prediction walk sorted
    them as written, so a folder with a decomposed name listed its images in another order."""
    from nnfs.data.folder import ImageFolder

    names = ["e", "e\u0301", "f"]  # "é" as a Mac writes it sorts before "f" as written, after as read
    root = make_folder(tmp_path / "d", names, per_class=1)
    for name in names:  # a copy named like its class, beside 000.png
        shutil.copyfile(root / name / "000.png", root / name / f"{name}.png")
    dataset = ImageFolder(str(root))
    assert dataset.class_names == ["e", "f", "e\u0301"]
    assert find_images(str(root)) == dataset.paths
    assert find_images(str(root / "e\u0301")) == [str(root / "e\u0301" / n) for n in ("000.png", "e\u0301.png")]


def test_photos_of_formats_that_are_not_read_are_said_not_passed_over(tmp_path):
    """Prediction passed over a folder's HEIC photos without a word, and a folder of them was
    'no images in ...'."""
    root = make_folder(tmp_path / "d", ["a"], per_class=1)
    (root / "a" / "IMG_0001.HEIC").write_bytes(b"\0" * 64)
    (root / "a" / "notes.txt").write_text("not a photo")  # counted apart
    messages = []
    assert find_images(str(root), messages.append) == [str(root / "a" / "000.png")]
    assert messages == ["skipped 1 HEIC file (as iPhones save photos), which is not read: convert it to JPEG or PNG "
                        f"first; e.g. {root / 'a' / 'IMG_0001.HEIC'}",
                        f"skipped 1 file that is not an image, e.g. {root / 'a' / 'notes.txt'}"]
    os.remove(root / "a" / "000.png")
    with pytest.raises(DatasetError, match=r"no images in .*; it holds 1 HEIC file \(as iPhones save photos\)"):
        find_images(str(root))
