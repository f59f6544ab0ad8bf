"""The decoded-dataset cache: hits, invalidation the moment a file changes, damaged files as misses."""

import os
import zipfile

import numpy as np
import pytest

from nnfs.data import DatasetError, ImageFolder, default_cache_dir
from nnfs.data.cache import DatasetCache
from tests.imagefolders import make_folder, make_photo_folder, read_folder, write_image


def load(root, cache, **kwargs):
    return read_folder(root, cache=cache, **kwargs)


def same(a, b):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.paths == b.paths and a.class_names == b.class_names
    assert (a.image_size, a.channels, a.kind, a.resize) == (b.image_size, b.channels, b.kind, b.resize)


@pytest.fixture
def photos(tmp_path):
    return make_photo_folder(tmp_path / "photos", per_class=3)


def test_second_load_is_a_hit_with_the_same_arrays(tmp_path, photos):
    cache = tmp_path / "cache"
    first, _ = load(photos, cache)
    assert not first.from_cache and os.path.isfile(first.cache_path)
    assert first.cache_path.startswith(str(cache))
    second, _ = load(photos, cache)
    assert second.from_cache and second.sizing == first.sizing
    same(first, second)
    same(second, ImageFolder(photos))  # and what an uncached load gives


def test_every_change_to_the_files_is_a_miss(tmp_path, photos):
    cache = tmp_path / "cache"
    load(photos, cache)
    target = photos / "star" / "IMG_001.jpg"

    def touched():
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))

    def replaced_same_size_and_time():  # as `cp -p` of another photo of the same length would
        stat = target.stat()
        data = bytearray(target.read_bytes())
        data[-10] ^= 0xFF
        target.write_bytes(bytes(data))
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    for change in (touched, replaced_same_size_and_time,
                   lambda: make_photo_folder(photos, ("star",), per_class=4),  # a file added
                   lambda: (photos / "star" / "IMG_003.jpg").unlink()):        # and removed
        change()
        data, _ = load(photos, cache)
        assert not data.from_cache, change
        assert load(photos, cache)[0].from_cache  # refreshed in place


def test_each_set_of_options_has_its_own_entry(tmp_path, photos):
    cache = tmp_path / "cache"
    paths = set()
    for options in ({}, {"image_size": 32}, {"channels": 1}, {"resize": "stretch"}, {"limit": 2},
                    {"on_error": "skip"}):
        data, _ = load(photos, cache, **options)
        assert not data.from_cache, options
        paths.add(data.cache_path)
        again, _ = load(photos, cache, **options)
        assert again.from_cache and again.images.shape == data.images.shape
    assert len(paths) == 6 and len(os.listdir(cache)) == 6


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "foreign zip", "wrong shape",
                                    "pickle", "huge header"])
def test_a_damaged_cache_file_is_a_miss_and_is_replaced(tmp_path, photos, damage):
    cache = tmp_path / "cache"
    first, _ = load(photos, cache)
    path = first.cache_path
    content = open(path, "rb").read()
    if damage == "truncated":
        open(path, "wb").write(content[: len(content) // 2])
    elif damage == "garbage":
        open(path, "wb").write(os.urandom(len(content)))
    elif damage == "empty":
        open(path, "wb").close()
    elif damage == "foreign zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("something.txt", "not ours")
    else:
        with zipfile.ZipFile(path) as archive:
            record = archive.read("record.json")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("record.json", record)
            if damage == "wrong shape":
                np.save(archive.open("images.npy", "w"), np.zeros((2, 3, 4, 4), np.uint8))
            elif damage == "pickle":
                np.save(archive.open("images.npy", "w"), np.array([{"code": 1}], dtype=object),
                        allow_pickle=True)
            else:  # the header claims a terabyte, the member holds nothing of it
                with archive.open("images.npy", "w") as member:
                    np.lib.format.write_array_header_1_0(
                        member, {"descr": "|u1", "fortran_order": False, "shape": (10 ** 6, 3, 1000, 300)})
    data, messages = load(photos, cache)
    assert not data.from_cache and messages == []
    same(data, first)
    assert load(photos, cache)[0].from_cache


def test_an_unwritable_cache_costs_a_warning_not_the_load(tmp_path, photos):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    data, messages = load(photos, blocker / "cache")
    assert len(data) == 9 and not data.from_cache
    assert len(messages) == 1 and messages[0].startswith("could not write the dataset cache")


def test_skipped_files_are_reported_again_on_a_hit(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=3)
    (root / "a" / "notes.txt").write_text("x")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 20)
    cache = tmp_path / "cache"
    first, warned = load(root, cache, on_error="skip")
    second, again = load(root, cache, on_error="skip")
    assert second.from_cache and again == warned and len(warned) == 2
    assert second.skipped == first.skipped
    # Without skipping, the broken file stops the load, cached entry or not.
    with pytest.raises(DatasetError, match="broken.png"):
        load(root, cache)


def test_the_default_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNFS_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == str(tmp_path / "here")
    monkeypatch.delenv("NNFS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == os.path.join(str(tmp_path / "xdg"), "nnfs", "datasets")


def test_the_key_names_every_file_by_its_place_in_the_folder(tmp_path):
    cache = DatasetCache(tmp_path / "c", tmp_path / "data", {"resize": "crop"})
    files = [(str(tmp_path / "data" / "a" / "1.png"), 0, (10, 5, 5))]
    assert cache.key(files) == cache.key(list(files))
    assert cache.key(files) != cache.key([(files[0][0], 1, (10, 5, 5))])
    assert cache.key(files) != cache.key([(files[0][0], 0, (10, 5, 6))])
    # A moved folder is a new slot, not a reuse of another folder's entry.
    assert DatasetCache(tmp_path / "c", tmp_path / "other", {"resize": "crop"}).path != cache.path


def test_a_small_image_folder_round_trips_through_the_cache(tmp_path):
    root = make_folder(tmp_path / "d", ["x", "y"], per_class=2, mode="RGB", size=(9, 7))
    write_image(root / "x" / "gray.png", "L", (9, 7))
    first, _ = load(root, tmp_path / "cache")
    second, _ = load(root, tmp_path / "cache")
    assert second.from_cache
    same(first, second)


def test_the_default_cache_folder_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    from nnfs.data.cache import default_cache_dir

    monkeypatch.delenv("NNFS_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")
    assert default_cache_dir() == str(tmp_path / ".cache" / "nnfs" / "datasets")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == str(tmp_path / "xdg" / "nnfs" / "datasets")
    monkeypatch.setenv("NNFS_CACHE_DIR", "~/mine")
    assert default_cache_dir() == str(tmp_path / "mine")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
def test_a_fifo_at_the_cache_name_is_a_miss_not_a_hang(tmp_path, photos):
    """Opening a FIFO for reading waits for a writer: the load hung before it decoded a file."""
    import signal

    cache = tmp_path / "cache"
    path = load(photos, cache)[0].cache_path
    os.unlink(path)
    os.mkfifo(path)
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the load blocked on the FIFO"))
    signal.alarm(20)
    try:
        data, messages = load(photos, cache)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len(data) == 9 and not data.from_cache
    assert len(messages) == 1 and messages[0].startswith("could not write the dataset cache")


def test_the_cache_is_read_where_os_has_no_o_nonblock_and_set_blocking_takes_pipes_only(tmp_path, photos,
                                                                                         monkeypatch):
    """Windows (Python 3.12 and later): set_blocking exists for pipes only and fails on a regular
    file; the cache opened through open_regular was then a miss every time, without a word."""
    cache = tmp_path / "cache"
    first, _ = load(photos, cache)
    monkeypatch.delattr(os, "O_NONBLOCK", raising=False)

    def pipes_only(fd, blocking):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "set_blocking", pipes_only)
    second, _ = load(photos, cache)
    assert second.from_cache
    same(first, second)
