"""Sizes that cannot work are refused before anything is allocated, with the numbers and a way out."""

import pytest

from nnfs.data.memory import ACTIVATION_FLOATS_PER_PIXEL

import nnfs.data.folder
from nnfs.data import ImageFolder, ImageSizeError, available_memory, training_bytes
from nnfs.data.memory import check_fits, format_bytes, parse_bytes
from tests.imagefolders import make_folder, make_photo_folder


@pytest.fixture
def no_allocation(monkeypatch):
    """Fail the test if the image array is allocated."""
    def refuse(*args):
        raise AssertionError(f"the images were allocated: {args}")
    monkeypatch.setattr(nnfs.data.folder, "empty_images", refuse)


def test_a_huge_image_size_is_refused_before_decoding(tmp_path, no_allocation):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    with pytest.raises(ImageSizeError) as caught:
        ImageFolder(root, image_size=100000)
    error = caught.value
    assert "4 images of 1x100000x100000 need about 37.3 GiB" in error.reason
    assert error.with_option("--image_size").endswith("choose a smaller image size with --image_size")


def test_the_reserve_of_the_caller_counts_too(tmp_path, monkeypatch, no_allocation):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "1M")
    seen = []

    def reserve(sizing, count, n_classes):
        seen.append((sizing.image_size, count, n_classes))
        return {"model": 2 ** 20}

    with pytest.raises(ImageSizeError, match=r"images 256 bytes \+ model 1.0 MiB"):
        ImageFolder(root, reserve=reserve)
    assert seen == [((8, 8), 4, 2)]


def test_what_fits_loads(tmp_path, monkeypatch):
    root = make_photo_folder(tmp_path / "p", per_class=2)
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(6 * 3 * 64 * 64))
    messages = []
    assert len(ImageFolder(root, warn=messages.append)) == 6
    assert all(message.startswith("decoding with 1 thread") for message in messages)  # no room for two
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(6 * 3 * 64 * 64 - 1))
    with pytest.raises(ImageSizeError, match="6 images of 3x64x64"):
        ImageFolder(root)


def test_a_cached_dataset_is_checked_before_its_pixels_are_read(tmp_path, monkeypatch):
    root = make_photo_folder(tmp_path / "p", per_class=2)
    ImageFolder(root, cache=tmp_path / "cache")
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "1K")
    monkeypatch.setattr(nnfs.data.cache, "read_images", lambda *a: pytest.fail("pixels read"))
    with pytest.raises(ImageSizeError):
        ImageFolder(root, cache=tmp_path / "cache")


def test_images_below_the_model_minimum_are_refused(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2, size=(2, 3))
    allocate = nnfs.data.folder.empty_images
    monkeypatch.setattr(nnfs.data.folder, "empty_images", lambda *a: pytest.fail("allocated"))
    with pytest.raises(ImageSizeError) as caught:
        ImageFolder(root, min_size=4)
    assert caught.value.reason == ("the images would be 3x2 (the most common size), smaller than the 4x4 "
                                   "the model needs")
    assert caught.value.with_option("--image_size").endswith("a size of at least 4 with --image_size")
    with pytest.raises(ImageSizeError, match=r"3x8 \(as asked\)"):
        ImageFolder(root, image_size=(3, 8), min_size=4)
    monkeypatch.setattr(nnfs.data.folder, "empty_images", allocate)
    assert ImageFolder(root, image_size=4, min_size=4).image_size == (4, 4)  # scaled up when asked


def test_images_of_more_values_than_allowed_are_refused_before_decoding(tmp_path, no_allocation):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2, mode="RGB", size=(8, 8))
    with pytest.raises(ImageSizeError) as caught:
        ImageFolder(root, image_size=(8, 9), max_values=3 * 8 * 8)
    assert caught.value.reason == ("the images would be 8x9 (as asked) with 3 channels, 216 values each, "
                                   "more than the 192 a saved model classifies")
    photos = make_folder(tmp_path / "p", ["a", "b"], per_class=2, mode="RGB", size=(300, 200))
    with pytest.raises(ImageSizeError, match=r"would be 64x64 \(the default for photos\) with 3 channels"):
        ImageFolder(photos, max_values=1000)  # a size not asked for is never called asked


def test_the_largest_image_allowed_loads(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2, mode="RGB", size=(8, 8))
    assert ImageFolder(root, max_values=3 * 8 * 8).images.shape == (4, 3, 8, 8)


def test_training_bytes_counts_parameters_gradients_optimizer_and_a_batch():
    parts = training_bytes(1000, (10, 20), 3, batch_size=8, dtype_bytes=4, optimizer_slots=2)
    assert parts["model"] == 1000 * 4 * 4
    assert parts["activations"] == 8 * 10 * 20 * ACTIVATION_FLOATS_PER_PIXEL * 4


def test_check_fits_names_the_parts_and_the_override():
    assert check_fits({"a": 10, "b": 5}, "x", available=15) == 15
    with pytest.raises(ImageSizeError, match=r"x need about 16 bytes of memory \(a 10 bytes \+ b 6 bytes\), "
                                             r"more than the 15 bytes available \(set NNFS_MEMORY_LIMIT"):
        check_fits({"a": 10, "b": 6, "none": 0}, "x", available=15)


def test_memory_limit_parsing(monkeypatch):
    assert parse_bytes("8G") == 8 * 2 ** 30 and parse_bytes("512mib") == 512 * 2 ** 20
    assert parse_bytes("1.5K") == 1536 and parse_bytes("123") == 123
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(100) == "100 bytes"
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="NNFS_MEMORY_LIMIT: expected a number of bytes"):
        available_memory()
    monkeypatch.delenv("NNFS_MEMORY_LIMIT")
    detected = available_memory()
    assert detected is None or detected > 0


def test_the_refusal_says_where_the_limit_comes_from(monkeypatch):
    monkeypatch.delenv("NNFS_MEMORY_LIMIT", raising=False)
    with pytest.raises(ImageSizeError, match=r"available \(set NNFS_MEMORY_LIMIT to override\)"):
        check_fits({"a": 10}, "x", available=5)
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "5")
    with pytest.raises(ImageSizeError, match=r"more than the 5 bytes available \(NNFS_MEMORY_LIMIT sets it\)"):
        check_fits({"a": 10}, "x")


def test_ranks_on_one_machine_share_its_memory(monkeypatch):
    """mpiexec -n 4 on one machine: every rank read all of its memory as its own and planned for
    it (four datasets of a size that fits once); each now plans for a quarter, as for its cores."""
    import nnfs.data.memory as memory

    for name in ("NNFS_MEMORY_LIMIT", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(memory, "_share", None)
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 8 * 2 ** 30)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 6 * 2 ** 30)
    assert available_memory() == 6 * 2 ** 30 and not memory.is_budget()  # one process: the smaller of the two
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    assert available_memory() == 6 * 2 ** 30 // 4 and memory.is_budget()
    # Read once: the ranks that load first take memory, and a later reading divided again
    # would hold the others to less than their share.
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 2 * 2 ** 30)
    assert available_memory() == 6 * 2 ** 30 // 4
    with pytest.raises(ImageSizeError, match=r"more than the 1\.5 GiB available \(this process's share among "
                                             r"the 4 MPI ranks on this machine; set NNFS_MEMORY_LIMIT to override\)"):
        check_fits({"images": 2 * 2 ** 30}, "x")
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "8G")  # a limit is each process's own
    assert available_memory() == 8 * 2 ** 30
