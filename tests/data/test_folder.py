"""ImageFolder: class folders, mixed images, what is skipped, unusable datasets, limits, the digits."""

import numpy as np
import pytest
from PIL import Image

from nnfs.data import DatasetError
from tests import ROOT
from nnfs.data.memory import format_bytes
from tests.imagefolders import mac_and_nas_folders, make_folder, read_folder, write_image


def test_classes_are_sorted_subfolder_names_of_any_kind(tmp_path):
    make_folder(tmp_path, ["zebra", "Ant", "10", "2"], per_class=3)
    data, messages = read_folder(tmp_path)
    assert data.class_names == ["10", "2", "Ant", "zebra"]
    assert data.class_counts() == [3, 3, 3, 3]
    assert data.images.dtype == np.uint8 and data.images.shape == (12, 1, 8, 8)
    assert data.labels.dtype == np.int64
    assert messages == []
    # Every stored image is the exact decoded file, with its own label.
    for path, image, label in zip(data.paths, data.images, data.labels):
        assert np.array_equal(image[0], np.asarray(Image.open(path)))
        assert path.split("/")[-2] == data.class_names[label]


def test_mixed_modes_and_sizes_become_rgb_at_the_most_common_size(tmp_path):
    write_image(tmp_path / "a" / "gray.png", "L", (10, 6))
    write_image(tmp_path / "a" / "rgb.png", "RGB", (10, 6))
    write_image(tmp_path / "b" / "rgba.png", "RGBA", (10, 6))
    write_image(tmp_path / "b" / "palette.png", "P", (5, 9))
    data, _ = read_folder(tmp_path)
    assert data.channels == 3
    assert data.image_size == (6, 10)
    assert data.images.shape == (4, 3, 6, 10)
    gray = data.images[data.paths.index(str(tmp_path / "a" / "gray.png"))]
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])


def test_grayscale_when_every_image_is_and_channels_or_size_on_request(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2, mode="L", size=(8, 8))
    assert read_folder(tmp_path)[0].channels == 1
    data, _ = read_folder(tmp_path, channels=3, image_size=(5, 7))
    assert data.images.shape == (4, 3, 5, 7)
    assert read_folder(tmp_path, image_size=4)[0].images.shape == (4, 1, 4, 4)


def test_hidden_nested_and_non_image_files_are_skipped_with_one_warning(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"junk")
    write_image(tmp_path / "a" / "deeper" / "x.png")
    write_image(tmp_path / ".git" / "y.png")  # a hidden folder is not a class
    data, messages = read_folder(tmp_path)
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert any("1 file that is not an image" in m and "notes.txt" in m for m in messages)
    assert any("nested" in m and "deeper" in m for m in messages)
    assert data.skipped["not an image"] == [str(tmp_path / "a" / "notes.txt")]


def test_images_beside_the_class_folders_are_left_out_with_one_warning(tmp_path):
    # A camera roll with a few subfolders: the subfolders are the classes, and the roll's
    # photos, which have no class, were dropped without a word.
    make_folder(tmp_path, ["a", "b"], per_class=2)
    write_image(tmp_path / "IMG_0001.JPG")
    write_image(tmp_path / "IMG_0002.png")
    (tmp_path / "notes.txt").write_text("not an image")  # no photo: nothing to say
    (tmp_path / ".DS_Store").write_bytes(b"\0" * 16)
    data, messages = read_folder(tmp_path)
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert data.skipped["in no class"] == [str(tmp_path / "IMG_0001.JPG"), str(tmp_path / "IMG_0002.png")]
    assert messages == [f"skipped 2 images directly in the dataset folder, in no class folder (not read), "
                        f"e.g. {tmp_path / 'IMG_0001.JPG'}"]


def test_one_class_folder_beside_loose_images_says_they_have_no_class(tmp_path):
    make_folder(tmp_path, ["dogs"], per_class=2)
    write_image(tmp_path / "cat1.png")
    write_image(tmp_path / "cat2.png")
    with pytest.raises(DatasetError) as raised:
        read_folder(tmp_path)
    assert str(raised.value) == (f"only one class folder in {tmp_path} ('dogs'); a classifier needs at least two; "
                                 f"the 2 images directly in {tmp_path} belong to no class: move them into a "
                                 "folder of their class")


def test_photos_kept_in_icloud_only_are_said_not_passed_over_as_hidden(tmp_path):
    # iCloud Drive keeps a photo that is not downloaded as a hidden ".NAME.icloud" stand-in:
    # a folder partly downloaded trained on what was there, without a word.
    make_folder(tmp_path, ["a", "b"], per_class=2)
    (tmp_path / "a" / ".IMG_0001.JPG.icloud").write_bytes(b"bplist00")
    (tmp_path / "a" / ".notes.txt.icloud").write_bytes(b"bplist00")  # no photo: hidden as before
    data, messages = read_folder(tmp_path)
    assert len(data) == 4 and data.skipped["in the cloud"] == [str(tmp_path / "a" / ".IMG_0001.JPG.icloud")]
    assert messages == ["skipped 1 photo kept in iCloud only (an .icloud placeholder, not read; download it "
                        f"first), e.g. {tmp_path / 'a' / '.IMG_0001.JPG.icloud'}"]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".IMG_0002.jpeg.icloud").write_bytes(b"bplist00")
    with pytest.raises(DatasetError, match=r"class folder .*c has no images \(looked for .*\); it holds 1 photo "
                                           r"kept in iCloud only, not downloaded \(e.g. .*IMG_0002.jpeg.icloud\): "
                                           r"download it first$"):
        read_folder(tmp_path)


def test_iphone_photos_in_icloud_or_beside_the_classes_are_counted_too(tmp_path):
    """HEIC, as iPhones save photos, is not read, but its stand-ins and its loose files are
    photos of the folder all the same; an AppleDouble companion of a stand-in is no second one."""
    make_folder(tmp_path, ["a", "b"], per_class=2)
    (tmp_path / "a" / ".IMG_0001.HEIC.icloud").write_bytes(b"bplist00")
    (tmp_path / "a" / "._.IMG_0002.JPG.icloud").write_bytes(b"\0\5\26\7")
    (tmp_path / "IMG_0009.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    data, messages = read_folder(tmp_path)
    assert len(data) == 4
    assert data.skipped["in the cloud"] == [str(tmp_path / "a" / ".IMG_0001.HEIC.icloud")]
    assert data.skipped["in no class"] == [str(tmp_path / "IMG_0009.HEIC")]
    assert len(messages) == 2


def test_a_dataset_folder_that_is_a_broken_link_is_called_one(tmp_path):
    (tmp_path / "photos").symlink_to(tmp_path / "moved")
    with pytest.raises(DatasetError) as raised:
        read_folder(tmp_path / "photos")
    assert str(raised.value) == (f"dataset folder {tmp_path / 'photos'} is a broken symbolic link (its target "
                                 f"{tmp_path / 'moved'} does not exist)")


def test_folders_written_by_systems_are_no_classes_and_pass_silently(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2)
    mac_and_nas_folders(tmp_path)
    data, messages = read_folder(tmp_path)
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert messages == []


def test_files_windows_writes_into_picture_folders_pass_silently(tmp_path):
    """Thumbs.db and desktop.ini sit in every folder of photos copied from a Windows drive: each
    class folder cost a warning of a file that is not an image."""
    make_folder(tmp_path, ["a", "b"], per_class=2)
    for name in ("Thumbs.db", "desktop.ini", "ehthumbs.db"):
        (tmp_path / "a" / name).write_bytes(b"\0" * 16)
    (tmp_path / "b" / "THUMBS.DB").write_bytes(b"\0" * 16)
    (tmp_path / "b" / "notes.txt").write_text("not an image")  # still said
    data, messages = read_folder(tmp_path)
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert data.skipped["not an image"] == [str(tmp_path / "b" / "notes.txt")]


def test_corrupt_image_raises_with_its_path_or_is_skipped_and_counted(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=3)
    bad = tmp_path / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DatasetError, match="broken.png"):
        read_folder(tmp_path)
    data, messages = read_folder(tmp_path, on_error="skip")
    assert len(data) == 6 and data.skipped["unreadable"] == [str(bad)]
    assert any("1 unreadable image," in m for m in messages)


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("file", "not a folder"),
    ("no classes", "no class subfolders"),
    ("loose images", "holds 2 images directly"),
    ("empty class", "has no images"),
    ("one class", "at least two"),
])
def test_unusable_datasets_get_clear_errors(tmp_path, case, message):
    root = tmp_path / "data"
    if case == "file":
        root.write_text("x")
    elif case == "no classes":
        root.mkdir()
    elif case == "loose images":
        write_image(root / "1.png")
        write_image(root / "2.png")
    elif case == "empty class":
        make_folder(root, ["a"], per_class=2)
        (root / "b").mkdir()
        (root / "b" / "readme.txt").write_text("no images here")
    elif case == "one class":
        make_folder(root, ["a"], per_class=2)
    with pytest.raises(DatasetError, match=message):
        read_folder(root)


def test_a_class_whose_images_are_all_unreadable_is_an_error_even_when_skipping(tmp_path):
    make_folder(tmp_path, ["a"], per_class=2)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="no readable images"):
        read_folder(tmp_path, on_error="skip")


def test_a_dataset_whose_images_are_all_unreadable_names_a_class_and_what_was_skipped(tmp_path):
    for name in ("a", "b"):  # downloads that saved an error page under the image's name
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_text("<html>404 Not Found</html>")
    with pytest.raises(DatasetError) as raised:
        read_folder(tmp_path, on_error="skip")
    assert str(raised.value) == (f"class folder {tmp_path / 'a'} has no readable images "
                                 f"(skipped 1 unreadable image, e.g. {tmp_path / 'a' / 'x.jpg'})")


def test_limit_takes_the_first_images_of_each_class(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=5)
    data, _ = read_folder(tmp_path, limit=2)
    assert data.class_counts() == [2, 2]
    assert data.paths[0].endswith("a/000.png") and data.paths[1].endswith("a/001.png")


def test_shipped_digits_are_500_per_class_28x28_grayscale():
    root = ROOT / "data" / "digits"
    data, messages = read_folder(root, limit=3)
    assert data.class_names == [str(d) for d in range(10)]
    assert data.channels == 1 and data.image_size == (28, 28) and messages == []
    assert all(len(list((root / str(d)).glob("*.png"))) == 500 for d in range(10))


def test_numpy_integers_as_sizes_and_limits_give_plain_attributes(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=3, mode="RGB", size=(9, 7))
    data, _ = read_folder(tmp_path, channels=np.int64(1), image_size=(np.int64(5), np.int32(6)),
                          limit=np.int64(2))
    assert data.images.shape == (4, 1, 5, 6) and data.class_counts() == [2, 2]
    assert type(data.channels) is int and all(type(v) is int for v in data.image_size)
    assert read_folder(tmp_path, image_size=np.int64(4))[0].image_size == (4, 4)


@pytest.mark.parametrize("arguments, name", [
    ({"channels": True}, "channels"), ({"channels": 3.0}, "channels"), ({"channels": np.bool_(True)}, "channels"),
    ({"limit": True}, "limit"), ({"image_size": (True, 4)}, "image_size"), ({"image_size": 4.0}, "image_size"),
])
def test_bools_and_floats_as_sizes_are_dataset_errors_naming_the_argument(tmp_path, arguments, name):
    make_folder(tmp_path, ["a", "b"], per_class=2)
    with pytest.raises(DatasetError, match=rf"ImageFolder: {name} must be"):
        read_folder(tmp_path, **arguments)
    with pytest.raises(DatasetError, match="channels must be 1, 3 or None, got 2"):
        read_folder(tmp_path, channels=2)


links_only = pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="symbolic links")


@links_only
def test_a_class_folder_linked_as_another_class_is_refused(tmp_path):
    """Its images would be two classes at once (and land in both splits)."""
    root = make_folder(tmp_path / "d", ["blue", "red"], per_class=3)
    (root / "red_again").symlink_to(root / "red")
    with pytest.raises(DatasetError, match=r"^class folders 'red' and 'red_again' in .* are one folder \(through a "
                                           r"link\).*remove the link$"):
        read_folder(root)
    (root / "red_again").unlink()
    (root / "itself").symlink_to(root)  # a class folder that is the dataset
    with pytest.raises(DatasetError, match=r"^class folder 'itself' in .* is the dataset folder itself \(a link to "
                                           r"it\); remove the link$"):
        read_folder(root)


@links_only
def test_a_file_linked_into_another_class_is_refused_and_twice_in_its_class_is_read_once(tmp_path):
    import os

    root = make_folder(tmp_path / "d", ["blue", "red"], per_class=3)
    first = sorted(os.listdir(root / "red"))[0]
    (root / "blue" / "zz_link.png").symlink_to(root / "red" / first)
    with pytest.raises(DatasetError, match=rf"blue.zz_link.png and .*red.{first} are one file \(a link\) in two "
                                           r"classes, 'blue' and 'red': an image has one class"):
        read_folder(root)
    os.remove(root / "blue" / "zz_link.png")
    os.link(root / "red" / first, root / "red" / "zz_hard.png")  # a hard link: the same file too
    data, messages = read_folder(root)
    assert len(data) == 6
    assert messages == [f"skipped 1 file reached twice in its class (a link; read once), e.g. "
                        f"{root / 'red' / 'zz_hard.png'}"]


def test_a_dataset_one_level_too_high_says_where_the_classes_may_be(tmp_path):
    """train/ and val/ folders, each with the classes inside: the message names the level below."""
    make_folder(tmp_path / "d" / "train", ["cats", "dogs"], per_class=2)
    make_folder(tmp_path / "d" / "val", ["cats", "dogs"], per_class=2)
    with pytest.raises(DatasetError, match=r"class folder .*train has no images \(looked for .*\); it holds folders "
                                           r"\(cats, dogs\): if they are the classes, the dataset is .*train$"):
        read_folder(tmp_path / "d")


def test_fewer_threads_decode_where_the_memory_holds_fewer_full_size_images(tmp_path, monkeypatch):
    """A thread holds a whole decoded file before it is shrunk (a scan of 9000x9000: 243 MB,
    twice): six threads of those took 1.95 GB under a 200 MB limit."""
    from nnfs.data.folder import decoding_bytes

    assert decoding_bytes(((9000, 9000), "RGB")) == 20 * 81_000_000 == decoding_bytes(((9000, 9000), "L"))
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=2, size=(400, 300), mode="RGB")
    largest = decoding_bytes(((400, 300), "RGB"))
    images = 4 * 3 * 64 * 64
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(images + 2 * largest + 100))
    data, messages = read_folder(root, workers=4, image_size=64)
    assert messages == [f"decoding with 2 threads, not 4: the largest images take up to {format_bytes(largest)} each while they "
                        f"are decoded ({format_bytes(4 * largest)} for 4 threads at once), and "
                        f"{format_bytes(images + 2 * largest + 100)} of memory is available"]
    assert len(data) == 4
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(images + largest // 2))  # not even one: one all the same
    data, messages = read_folder(root, workers=4, image_size=64)
    assert len(data) == 4 and messages[0].startswith("decoding with 1 thread, not 4")
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "1G")
    assert read_folder(root, workers=4, image_size=64)[1] == []


def test_one_large_scan_among_small_photos_costs_one_threads_room(tmp_path, monkeypatch):
    """The room was counted as the largest file's decoding in every thread: one scan in a folder
    of small photos held every file's decoding to one thread."""
    from nnfs.data.folder import decoding_bytes

    root = make_folder(tmp_path / "d", ["a", "b"], per_class=4, size=(60, 40), mode="RGB")
    Image.new("RGB", (1200, 900), "gray").save(root / "a" / "scan.png")
    large, small = decoding_bytes(((1200, 900), "RGB")), decoding_bytes(((60, 40), "RGB"))
    images = 9 * 3 * 32 * 32
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(images + large + 3 * small))  # the scan and three photos
    data, messages = read_folder(root, workers=4, image_size=32)
    assert len(data) == 9 and messages == []  # four threads: before, one
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(images + large + 2 * small))  # the scan and two photos
    assert read_folder(root, workers=4, image_size=32)[1][0].startswith("decoding with 3 threads, not 4")
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(images + large + 8 * small))  # every file at once
    assert read_folder(root, workers=16, image_size=32)[1] == []  # more threads than files: no warning



@links_only
def test_of_a_file_and_a_link_to_it_in_its_class_the_file_is_read_and_the_link_counted(tmp_path):
    """Whatever the names' order: a link named before its file is the one skipped."""
    import os

    root = make_folder(tmp_path / "d", ["blue", "red"], per_class=2)
    target = sorted(os.listdir(root / "red"))[-1]
    (root / "red" / "000_link.png").symlink_to(root / "red" / target)  # sorts first
    data, messages = read_folder(root)
    assert str(root / "red" / target) in data.paths and str(root / "red" / "000_link.png") not in data.paths
    assert messages == [f"skipped 1 file reached twice in its class (a link; read once), e.g. "
                        f"{root / 'red' / '000_link.png'}"]


def test_class_names_that_look_the_same_are_refused_and_alike_in_case_warned(tmp_path):
    """macOS writes 'café' decomposed, Linux tools composed: a dataset holding both had two
    classes that printed the same; 'Cat' and 'cat' are one folder on macOS and Windows."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    root = make_folder(tmp_path / "d", [composed, decomposed, "dog"], per_class=2)
    if len(list(root.iterdir())) != 3:
        pytest.skip("this file system holds the two forms as one name")
    with pytest.raises(DatasetError, match=r"^class folders 'cafe\\u0301' and 'caf\\xe9' in .* are one name written "
                                           r"in two Unicode forms .*; move the images of one into the other$"):
        read_folder(root)
    root = make_folder(tmp_path / "e", ["Cat", "cat", "cat ", "Dog", "dog"], per_class=2)
    if len(list(root.iterdir())) != 5:
        pytest.skip("this file system ignores case")
    data, messages = read_folder(root)
    assert data.class_names == ["Cat", "Dog", "cat", "cat ", "dog"]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert messages[0].startswith("class folders 'Cat' and 'cat' (and 2 more pairs) in ")
    assert "differ only in case or surrounding spaces: on macOS and Windows they are one folder" in messages[0]


def test_classes_sort_the_same_whatever_the_unicode_form_of_their_names(tmp_path):
    """A copy of a Mac's dataset (decomposed names) had its classes, so its labels, in another order."""
    for form in ("NFC", "NFD"):
        import unicodedata

        names = [unicodedata.normalize(form, name) for name in ("cafz", "café", "cafe")]
        data, _ = read_folder(make_folder(tmp_path / form, names, per_class=2))
        # 'é' after 'z', as composed: decomposed, its 'e' came first
        assert [unicodedata.normalize("NFC", name) for name in data.class_names] == ["cafe", "cafz", "café"]


def test_photos_of_formats_that_are_not_read_are_named_with_what_to_do(tmp_path):
    """A folder of an iPhone's HEIC photos was 'no images (looked for files ending in ...)', and
    HEIC among JPEGs one more 'file that is not an image': neither said what they are."""
    from nnfs.data.images import read_image

    make_folder(tmp_path / "d", ["a", "b"], per_class=2)
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):
        (tmp_path / "d" / "a" / name).write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    (tmp_path / "d" / "b" / "DSC_0001.NEF").write_bytes(b"\0" * 64)
    data, messages = read_folder(tmp_path / "d")
    assert len(data) == 4
    assert messages[0].endswith("; among them 3 files of photo formats that are not read (2 HEIC files (as iPhones "
                                "save photos), 1 camera raw file): convert them to JPEG or PNG first")
    only = tmp_path / "only"
    for label in ("a", "b"):
        (only / label).mkdir(parents=True)
        (only / label / "IMG_0001.HEIC").write_bytes(b"\0" * 64)
    with pytest.raises(DatasetError, match=r"has no images \(looked for .*\); it holds 1 HEIC file \(as iPhones save "
                                           r"photos\), which is not read: convert it to JPEG or PNG first$"):
        read_folder(only)
    with pytest.raises(DatasetError, match=r"HEIC files \(as iPhones save photos\) are not read: convert it to JPEG"):
        read_image(str(only / "a" / "IMG_0001.HEIC"), 3, (8, 8))
