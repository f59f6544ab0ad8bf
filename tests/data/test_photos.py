"""Folders of phone photos: the default size and kind, resize modes, reduced decoding, threads."""

import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from nnfs.data import DEFAULT_PHOTO_SIZE, DatasetError, ImageFolder, Preprocessing
from nnfs.data.images import crop_box, fit, read_image
from nnfs.data.sizing import choose_sizing
from tests.imagefolders import make_folder, make_photo_folder, make_photos, write_image


def test_photos_become_64x64_colour_and_say_so(tmp_path):
    root = make_photo_folder(tmp_path / "photos")
    data = ImageFolder(root)
    assert data.kind == "photos" and data.sizing.chosen
    assert data.image_size == (DEFAULT_PHOTO_SIZE, DEFAULT_PHOTO_SIZE) and data.channels == 3
    assert data.images.shape == (9, 3, 64, 64) and data.images.dtype == np.uint8
    # Four sizes among nine photos: none is shared by half of them.
    assert data.sizing.describe() == ("64x64, photos of varied sizes (the most common, 200x300, is that of 3 "
                                      "of 9 images): shorter side scaled to 64, middle kept")


def test_small_images_keep_their_most_common_size(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=3, size=(28, 28))
    write_image(tmp_path / "a" / "odd.png", size=(20, 30))
    data = ImageFolder(tmp_path)
    assert data.kind == "small" and data.image_size == (28, 28) and data.channels == 1
    assert "the most common size (28x28)" in data.sizing.describe()


@pytest.mark.parametrize("common, kind", [((28, 28), "small"), ((64, 64), "small"), ((32, 65), "photos"),
                                          ((48, 100000), "photos"), ((1200, 1600), "photos")])
def test_kind_is_small_only_when_the_common_size_fits_in_64x64(common, kind):
    height, width = common
    sizing = choose_sizing([((width, height), "RGB")] * 3 + [((5, 5), "L")])
    assert sizing.kind == kind
    # A long strip is not kept at its size: only small images keep theirs.
    assert sizing.image_size == (common if kind == "small" else (64, 64))


def test_photos_of_one_size_say_which(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=2, sizes=((320, 240),))
    data = ImageFolder(root, resize="stretch")
    assert data.kind == "photos" and not data.sizing.varied
    assert data.sizing.describe() == "64x64, photos (most common size 240x320): stretched"


def test_one_thumbnail_among_photos_of_every_size_decides_nothing(tmp_path):
    # Thirty photos of about a megapixel, no two of the same size, and one 40x30 thumbnail
    # listed first: the first size met used to count as "the most common" (30x40, small).
    rng = np.random.default_rng(5)
    write_image(tmp_path / "a" / "000_thumbnail.png", "RGB", (40, 30))
    sizes = []
    for index in range(30):
        width = 1000 + 17 * index + int(rng.integers(0, 17))
        sizes.append((width, 1_000_000 // width))
        write_image(tmp_path / "ab"[index % 2] / f"{index + 1:03d}.jpg", "RGB", sizes[-1], value=index)
    data = ImageFolder(tmp_path)
    assert data.kind == "photos" and data.sizing.varied and data.image_size == (64, 64)
    # One image of each size: the tie goes to the largest photo, whatever the files' order.
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    assert data.sizing.describe() == (f"64x64, photos of varied sizes (the most common, {height}x{width}, is that "
                                      f"of 1 of 31 images): shorter side scaled to 64, middle kept")


@pytest.mark.parametrize("sizes, kind, varied", [
    ([(28, 28)] * 2 + [(20, 20), (30, 30)], "small", False),      # half of them: the common size
    ([(28, 28)] * 2 + [(20, 20), (30, 30), (40, 40)], "small", True),  # fewer than half, all small
    ([(28, 28), (20, 20)], "small", True),                          # one image is no common size
    ([(28, 28)] * 2 + [(20, 20), (30, 30), (400, 300)], "photos", True),  # ... and one photo among them
    ([(20, 20)] * 3, "small", False),
])
def test_a_size_is_common_when_half_of_the_images_have_it(sizes, kind, varied):
    sizing = choose_sizing([(size, "L") for size in sizes])
    assert (sizing.kind, sizing.varied, sizing.common_size) == (kind, varied, sizes[0])
    assert sizing.image_size == (sizes[0] if kind == "small" else (64, 64))
    assert sizing.from_dict(sizing.to_dict()) == sizing


def test_icons_of_many_sizes_are_small_images_at_the_most_common_size():
    # Seven sizes from 16 to 48 pixels, two icons of each: no common size, but none is a photo
    # (photos would be flipped and cropped, which changes a glyph's class).
    sizes = [(side, side) for side in (16, 20, 24, 28, 32, 40, 48)] * 2
    sizing = choose_sizing([(size, "RGBA") for size in sizes])
    assert (sizing.kind, sizing.varied, sizing.image_size) == ("small", True, (48, 48))
    assert sizing.describe() == ("48x48, small images of varied sizes (the most common, 48x48, is that of 2 of "
                                 "14 images; a tie goes to the larger): shorter side scaled to 48, middle kept")
    sizes.append((24, 24))  # one more of a size: the most common wins over the larger
    assert choose_sizing([(size, "RGBA") for size in sizes]).image_size == (24, 24)


@pytest.mark.parametrize("sizes", [
    [(28, 28)] * 2 + [(32, 32)] * 2,   # a tie at exactly half
    [(20, 30), (30, 20), (24, 24)],   # no common size: the most pixels, then the taller
    [(1200, 1600), (1600, 1200)] * 3,  # photos
])
def test_a_tie_never_depends_on_the_order_of_the_files(sizes):
    headers = [(size, "L") for size in sizes]
    forward, backward = choose_sizing(headers), choose_sizing(headers[::-1])
    assert forward == backward
    assert forward.common_size == {28: (32, 32), 20: (30, 20), 1200: (1600, 1200)}[sizes[0][0]]  # (height, width)


def test_an_asked_size_wins_but_the_kind_stays(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=2)
    data = ImageFolder(root, image_size=(40, 30), channels=1)
    assert data.kind == "photos" and not data.sizing.chosen
    assert data.images.shape == (6, 1, 40, 30)


def test_crop_keeps_the_middle_and_stretch_keeps_everything():
    # A 40x20 picture: left quarter black, middle half white, right quarter black.
    pixels = np.zeros((20, 40), dtype=np.uint8)
    pixels[:, 10:30] = 255
    image = Image.fromarray(pixels)
    cropped = np.asarray(fit(image, (10, 10), "crop"))
    stretched = np.asarray(fit(image, (10, 10), "stretch"))
    # The middle 20x20 square is white; the filter only grazes the cut-off black at the edges.
    assert (cropped[:, 1:-1] == 255).all() and cropped.min() > 200
    assert stretched[:, 0].max() < 128 and stretched[:, -1].max() < 128 and (stretched[:, 4:6] == 255).all()


def test_exif_turned_photos_are_upright_in_every_mode(tmp_path):
    for orientation in (1, 6, 8, 3):
        path = tmp_path / f"o{orientation}.jpg"
        make_photos.write_photo(str(path), "bar", (320, 200), orientation, seed=3)
        upright = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        assert upright.size == (320, 200)
        expected = np.asarray(fit(upright, (40, 64), "stretch"), dtype=np.float64)
        got = np.frombuffer(read_image(path, 3, (40, 64), "stretch"), np.uint8).reshape(40, 64, 3)
        # The reduced-scale decode differs from full decode + resize by JPEG rounding only.
        assert np.abs(got - expected).mean() < 4, orientation


def test_reduced_jpeg_decoding_matches_full_decoding_closely(tmp_path):
    path = tmp_path / "p.jpg"
    make_photos.write_photo(str(path), "star", (1280, 960), 1, seed=7)
    full = fit(Image.open(path).convert("RGB"), (64, 64), "crop")
    with Image.open(path) as image:
        image.draft("RGB", (86, 64))
        assert image.size == (160, 120)  # decoded at 1/8 scale
    fast = np.frombuffer(read_image(path, 3, (64, 64), "crop"), np.uint8).reshape(64, 64, 3)
    difference = np.abs(fast.astype(np.int16) - np.asarray(full, dtype=np.int16))
    assert difference.mean() < 3 and np.percentile(difference, 99) < 24


def test_gray_target_decodes_the_luminance_of_a_colour_jpeg(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=2)
    data = ImageFolder(root, channels=1)
    colour = ImageFolder(root, channels=3)
    luma = (colour.images.astype(np.float64) * np.array([0.299, 0.587, 0.114])[:, None, None]).sum(1)
    assert data.images.shape[1] == 1
    assert np.abs(data.images[:, 0] - luma).mean() < 3


def test_prediction_reads_a_file_exactly_as_training_did(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=2)
    for resize in ("crop", "stretch"):
        data = ImageFolder(root, resize=resize)
        pre = Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels, data.resize)
        again = Preprocessing.from_config(pre.get_config())
        np.testing.assert_array_equal(again.load(data.paths), data.images)


def test_old_preprocessing_records_stretch():
    record = {"image_size": [8, 8], "channels": 1, "mean": [0.5], "std": [0.2]}
    assert Preprocessing.from_config(record).resize == "stretch"
    with pytest.raises(DatasetError, match="resize must be one of"):
        Preprocessing.from_config(dict(record, resize="squash"))


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_threads_load_exactly_what_one_thread_loads(tmp_path, workers):
    root = make_photo_folder(tmp_path / "photos", per_class=4)
    write_image(root / "star" / "broken.jpg", "RGB", (90, 90))
    (root / "star" / "broken.jpg").write_bytes((root / "star" / "broken.jpg").read_bytes()[:300])
    serial = ImageFolder(root, workers=1, on_error="skip", warn=lambda m: None)
    parallel = ImageFolder(root, workers=workers, on_error="skip", warn=lambda m: None)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.labels, serial.labels)
    assert parallel.paths == serial.paths and parallel.skipped == serial.skipped
    assert serial.skipped["unreadable"] == [str(root / "star" / "broken.jpg")]


def test_a_progress_bar_off_a_terminal_draws_nothing(tmp_path, capsys):
    root = make_photo_folder(tmp_path / "photos", per_class=2)
    assert len(ImageFolder(root, progress=True)) == 6
    assert capsys.readouterr().err == ""


def test_with_threads_the_first_unreadable_file_in_order_is_the_one_reported(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=4)
    for name in ("IMG_001.jpg", "IMG_003.jpg"):
        (root / "square" / name).write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DatasetError, match="square/IMG_001.jpg"):
        ImageFolder(root, workers=4)


# Targets of every shape: the default, the digits' size, portrait and landscape, a larger square.
CROP_TARGETS = [(64, 64), (28, 28), (30, 40), (48, 64), (96, 96)]


@pytest.mark.parametrize("size", CROP_TARGETS)
def test_the_crop_box_lies_inside_every_image_size(size):
    # 64 / (64 / 49) is 49.00000000000001: a box computed from the scale alone stuck out of
    # about 4 % of the sizes below, and Pillow refused those images ("box offset can't be negative").
    height, width = size
    for stored_w in range(1, 401):
        for stored_h in range(1, 401):
            left, top, right, bottom = crop_box((stored_w, stored_h), size)
            assert 0 <= left < right <= stored_w and 0 <= top < bottom <= stored_h, (stored_w, stored_h)
            # The aspect ratio of the target, one side spanning the image.
            assert math.isclose((right - left) * height, (bottom - top) * width, rel_tol=1e-9)
            assert right - left == stored_w or bottom - top == stored_h


@pytest.mark.parametrize("size", [(64, 64), (30, 40)])
def test_crop_resizes_every_small_image_size(size):
    for stored_w in range(1, 81):
        for stored_h in range(1, 81):
            assert fit(Image.new("L", (stored_w, stored_h)), size, "crop").size == size[::-1]


def test_photos_whose_reduced_decoding_gave_a_bad_crop_box_are_read(tmp_path):
    # Decoded at 1/4 for a 64x64 target, these JPEGs are 130x98, 137x103 and 173x98: sizes
    # whose box used to stick out by a rounding error; 49x50 did so at its full size.
    root = tmp_path / "photos"
    for index, (width, height) in enumerate([(520, 390), (546, 409), (692, 389)]):
        write_image(root / ("a", "b")[index % 2] / f"{index}.jpg", "RGB", (width, height))
    write_image(root / "b" / "small.png", "RGB", (49, 50))
    data = ImageFolder(root)
    assert data.kind == "photos" and data.images.shape == (4, 3, 64, 64)
    assert len(read_image(root / "b" / "small.png", 3, (64, 64))) == 64 * 64 * 3
