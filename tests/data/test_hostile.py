"""Hostile and damaged folders: nothing blocks, nothing runs an external program, nothing leaks raw warnings."""

import contextlib
import logging
import os
import re
import signal
import warnings

import pytest
from PIL import Image

from nnfs.data import DatasetError, Preprocessing
from nnfs.data.decoding import DecoderWarnings
from nnfs.data.images import open_image, probe, read_image
from tests.imagefolders import (
    corrupt_exif_jpeg, damaged_tiff, make_folder, make_photo_folder, read_folder, write_image)

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")

POSTSCRIPT = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
              b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n")


@contextlib.contextmanager
def deadline(seconds=10):
    """Fail instead of hanging when the block blocks (in the main thread)."""
    def expired(*_):
        raise TimeoutError("blocked")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw Python warning may escape
        return read_folder(root, **kwargs)


@pytest.fixture
def no_ghostscript(monkeypatch):
    """Fail if Pillow ever tries to start Ghostscript."""
    eps = pytest.importorskip("PIL.EpsImagePlugin")

    def started(*args, **kwargs):
        raise AssertionError("Ghostscript was started")
    monkeypatch.setattr(eps, "Ghostscript", started)
    monkeypatch.setattr(eps.subprocess, "check_call", started)


def test_postscript_named_png_is_never_handed_to_an_interpreter(tmp_path, no_ghostscript):
    evil = tmp_path / "evil.png"
    evil.write_bytes(POSTSCRIPT)
    assert Image.open(evil).format == "EPS"  # what Pillow alone would decode it as
    for read in (open_image, lambda p: read_image(p, 3, (8, 8)),
                 Preprocessing((8, 8), 3, [0.5] * 3, [0.2] * 3).read):
        with pytest.raises(DatasetError, match="not a readable image .*evil.png"):
            read(evil)
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    (root / "a" / "evil.png").write_bytes(POSTSCRIPT)
    with pytest.raises(DatasetError, match="evil.png"):
        load(root)
    data, messages = load(root, on_error="skip")
    assert data.skipped["unreadable"] == [str(root / "a" / "evil.png")] and len(data) == 4


@needs_fifo
@pytest.mark.parametrize("workers", [1, 4])
def test_a_fifo_in_a_class_folder_is_skipped_unopened(tmp_path, workers):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    os.mkfifo(root / "a" / "pipe.png")
    os.symlink("/dev/null", root / "b" / "null.png")
    with deadline():
        data, messages = load(root, workers=workers)
    assert len(data) == 4
    assert sorted(data.skipped["not a regular file"]) == [str(root / "a" / "pipe.png"), str(root / "b" / "null.png")]
    assert messages == [f"skipped 2 entries that are not regular files (FIFOs, sockets, devices; not opened), "
                        f"e.g. {root / 'a' / 'pipe.png'}"]


@needs_fifo
def test_a_fifo_read_directly_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    with deadline():
        for read in (open_image, lambda p: read_image(p, 1, (8, 8))):
            with pytest.raises(DatasetError, match=r"not a regular file \(a FIFO\), not opened: .*pipe.jpg"):
                read(pipe)


def lowest_free_descriptor():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def test_a_folder_read_directly_is_refused_and_leaves_no_descriptor_open(tmp_path):
    # Where a file was listed (a split of a trained run, say) a folder now stands: os.open
    # opens it, and turning that descriptor into a file failed with an error naming "3".
    folder = tmp_path / "001.png"
    folder.mkdir()
    free = lowest_free_descriptor()
    for read in (open_image, probe, lambda p: read_image(p, 1, (8, 8))):
        for _ in range(3):
            with pytest.raises(DatasetError, match=r"^not a regular file \(a folder\), not opened: .*001.png$"):
                read(folder)
    assert lowest_free_descriptor() == free


def test_symlink_loops_are_unreadable_entries_skippable_one_by_one(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    os.symlink("loop.png", root / "a" / "loop.png")  # a link to itself
    os.symlink("loopdir", root / "loopdir")          # a "class folder" that loops
    os.symlink("gone.txt", root / "b" / "dangling.txt")  # a broken link that is no image anyway
    with pytest.raises(DatasetError, match="cannot read .*loop"):
        load(root)
    data, messages = load(root, on_error="skip")
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert sorted(data.skipped["unreadable"]) == [str(root / "a" / "loop.png"), str(root / "loopdir")]
    assert data.skipped["not an image"] == [str(root / "b" / "dangling.txt")]
    assert any(m.startswith("skipped 2 unreadable images") for m in messages)


def test_a_broken_link_is_called_one_not_a_missing_file(tmp_path):
    # A link to a photo since moved, or on a drive not mounted: the folder lists it, so
    # "No such file or directory" contradicted what the user sees.
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    os.symlink("moved.png", root / "a" / "link.png")
    broken = (f"cannot read {root / 'a' / 'link.png'}: a broken symbolic link "
              f"(its target {root / 'a' / 'moved.png'} does not exist)")
    with pytest.raises(DatasetError, match="^" + re.escape(broken)):
        load(root)
    for read in (open_image, probe, lambda p: read_image(p, 1, (8, 8))):
        with pytest.raises(DatasetError, match="^" + re.escape(broken) + "$"):
            read(root / "a" / "link.png")
    data, messages = load(root, on_error="skip")
    assert data.skipped["unreadable"] == [str(root / "a" / "link.png")] and len(data) == 4
    with pytest.raises(DatasetError, match=r"^image not found: .*missing\.png$"):  # no link: missing
        open_image(root / "a" / "missing.png")


def test_decompression_bomb_warnings_become_one_counted_line(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2, size=(10, 10))
    for name in ("big1.png", "big2.png"):
        write_image(root / "a" / name, size=(90, 90))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 90x90 = 8100: Pillow warns, still reads
    data, messages = load(root, workers=3, image_size=10)
    assert len(data) == 6
    assert messages == [f"2 very large images read (over Pillow's decompression-bomb limit of 5,000 "
                        f"pixels; check that they are real photos), e.g. {root / 'a' / 'big1.png'}"]
    assert sorted(data.decoder_warnings.files["large"]) == [str(root / "a" / n) for n in ("big1.png", "big2.png")]


def test_corrupt_exif_becomes_one_counted_line_and_the_photo_is_read(tmp_path):
    root = make_photo_folder(tmp_path / "p", per_class=2)
    corrupt_exif_jpeg(root / "star" / "bad_exif.jpg")
    data, messages = load(root, workers=2)
    assert len(data) == 7
    assert [m.split(", e.g.")[0] for m in messages] == [
        "1 image with corrupt EXIF or TIFF tag data (read; its orientation may be wrong)"]
    # The orientation it still holds was applied: the white half is on top now.
    image = data.images[data.paths.index(str(root / "star" / "bad_exif.jpg"))]
    assert image[:, :20].mean() > 200 and image[:, 44:].mean() < 50


def test_prediction_collects_the_warnings_of_the_files_it_reads(tmp_path):
    path = tmp_path / "bad_exif.jpg"
    corrupt_exif_jpeg(path)
    pre = Preprocessing((16, 16), 3, [0.5] * 3, [0.2] * 3)
    messages = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with DecoderWarnings() as notes:
            pre.read(path)
        notes.report(messages.append)
    assert messages == [f"1 image with corrupt EXIF or TIFF tag data (read; its orientation may be "
                        f"wrong), e.g. {path}"]


def test_warnings_outside_a_file_still_reach_the_user():
    with pytest.warns(UserWarning, match="not about a file"):
        with DecoderWarnings():
            warnings.warn("not about a file")


def unconfigured_logging(monkeypatch):
    """Logging as in the programs, which set none up: pytest's handlers (added as the test starts)
    off the root logger, so a record nobody handles is printed on stderr by Python's last resort."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


@pytest.mark.parametrize("workers", [1, 3])
def test_what_pillow_logs_about_a_damaged_file_is_not_printed(tmp_path, capsys, monkeypatch, workers):
    unconfigured_logging(monkeypatch)
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    bad = damaged_tiff(root / "a" / "bad.tif")
    with pytest.raises(DatasetError, match="bad.tif"):
        load(root, workers=workers)
    data, messages = load(root, workers=workers, on_error="skip")
    assert messages == [f"skipped 1 unreadable image, e.g. {bad}"]
    # Prediction reads under the same DecoderWarnings.
    pre = Preprocessing((8, 8), 1, [0.5], [0.2])
    with DecoderWarnings(), pytest.raises(DatasetError, match="bad.tif"):
        pre.read(bad)
    assert capsys.readouterr().err == ""


def test_what_pillow_logs_at_debug_level_is_neither_printed_nor_kept(tmp_path, capsys, monkeypatch):
    # At DEBUG level Pillow logs several records for every PNG it reads (one per chunk): none
    # reaches the output, and none piles up in memory for the length of the load.
    unconfigured_logging(monkeypatch)
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=20)
    pil = logging.getLogger("PIL")
    level = pil.level
    pil.setLevel(logging.DEBUG)
    try:
        data, messages = load(root, workers=2)
    finally:
        pil.setLevel(level)
    assert len(data) == 40 and messages == []
    assert capsys.readouterr().err == ""
    notes = data.decoder_warnings
    assert set(vars(notes)) == {"files", "messages", "_lock", "_catch", "_log"}
    assert notes.to_dict() == {"files": {"large": [], "exif": [], "other": []}, "messages": {}}


def test_what_pillow_logs_outside_a_file_still_reaches_the_user(capsys, monkeypatch):
    unconfigured_logging(monkeypatch)
    with DecoderWarnings():
        logging.getLogger("PIL.TiffImagePlugin").error("not about a file")
    assert capsys.readouterr().err == "not about a file\n"
    assert logging.getLogger("PIL").propagate and not logging.getLogger("PIL").handlers


def test_a_file_that_warned_and_then_failed_is_counted_once_as_unreadable(tmp_path):
    """A truncated TIFF makes Pillow warn about its tags, then fail: one line, "unreadable",
    not also "read with corrupt tag data"."""
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=3)
    whole = tmp_path / "whole.tif"
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(whole, exif=exif.tobytes(), compression="tiff_lzw")  # cut, its tags warn, then it fails
    data = whole.read_bytes()
    (root / "a" / "cut.tif").write_bytes(data[:len(data) // 2])
    dataset, messages = load(root, on_error="skip")
    assert len(dataset) == 6
    assert messages == [f"skipped 1 unreadable image, e.g. {root / 'a' / 'cut.tif'}"]


def test_no_thread_to_start_decodes_on_the_calling_thread(monkeypatch):
    """Under a memory or process limit a pool cannot start its threads ("can't start new
    thread"): the files are read on the calling thread instead, all of them, in order."""
    import concurrent.futures
    import threading

    from nnfs.data.decoding import read_all

    def refused(self, *args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", refused)
    readers = set()

    def read(path):
        readers.add(threading.current_thread().name)
        return path * 2

    results = list(read_all(read, list(range(40)), workers=4))
    assert [(index, result, error) for index, result, error in results] == [(i, 2 * i, None) for i in range(40)]
    assert readers == {threading.current_thread().name}
