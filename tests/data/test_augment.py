"""Augmentation: each operation against a plain per-sample version, seeded, and resumable exactly."""

import numpy as np
import pytest

from nnfs.backend.augment import colour_jitter, generator, random_flip, random_resized_crop, random_shift
from nnfs.data import Augmentation, DataLoader, DatasetError, Preprocessing, augmentation_for


@pytest.fixture
def batch(rng):
    return rng.integers(0, 256, (6, 3, 9, 12), dtype=np.uint8)


def test_flip_mirrors_about_half_of_the_images(batch):
    out = random_flip(batch, generator(0, 1))
    flipped = [not np.array_equal(o, b) for o, b in zip(out, batch)]
    for o, b, was in zip(out, batch, flipped):
        np.testing.assert_array_equal(o, b[..., ::-1] if was else b)
    many = random_flip(np.tile(np.array([0, 1], np.uint8), (1000, 1, 1, 1)), generator(0, 2))
    assert 0.4 < np.mean(many[:, 0, 0, 0] == 1) < 0.6


def test_shift_moves_each_image_whole_pixels_with_a_black_border(batch):
    out = random_shift(batch, generator(3, 1), padding=2)
    rng = generator(3, 1)  # the same draws, replayed by a plain loop
    dy, dx = rng.integers(-2, 3, 6), rng.integers(-2, 3, 6)
    for o, b, y, x in zip(out, batch, dy, dx):
        padded = np.zeros((3, 9 + 4, 12 + 4), np.uint8)
        padded[:, 2:-2, 2:-2] = b
        np.testing.assert_array_equal(o, padded[:, 2 + y:2 + y + 9, 2 + x:2 + x + 12])


def _naive_resized_crop(image, top, left, crop_h, crop_w):
    channels, height, width = image.shape
    out = np.zeros(image.shape)
    for i in range(height):
        for j in range(width):
            y = top + (i + 0.5) * crop_h / height - 0.5
            x = left + (j + 0.5) * crop_w / width - 0.5
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            wy, wx = y - y0, x - x0
            at = lambda r, c: image[:, min(max(r, 0), height - 1), min(max(c, 0), width - 1)].astype(float)
            out[:, i, j] = ((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1))
                            + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1)))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def test_resized_crop_matches_a_per_pixel_bilinear_version(batch):
    out = random_resized_crop(batch, generator(5, 1), scale=(0.3, 0.9))
    rng = generator(5, 1)  # the draws replayed, image by image: the first crop that fits
    area = rng.uniform(0.3, 0.9, (10, 6)) * (9 * 12)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3), (10, 6)))
    place = rng.uniform(0, 1, (2, 6))
    for k in range(6):
        fitting = [(np.sqrt(a / r), np.sqrt(a * r)) for a, r in zip(area[:, k], aspect[:, k])
                   if np.sqrt(a * r) <= 12 and np.sqrt(a / r) <= 9]
        crop_h, crop_w = fitting[0]  # scales below 0.56 of a 4:3 image always fit
        top, left = place[1, k] * (9 - crop_h), place[0, k] * (12 - crop_w)
        expected = _naive_resized_crop(batch[k], top, left, crop_h, crop_w)
        assert np.abs(out[k].astype(int) - expected).max() <= 1  # float32 against float64 rounding


def test_a_full_crop_is_the_identity(rng):
    square = rng.integers(0, 256, (4, 3, 9, 9), dtype=np.uint8)
    np.testing.assert_array_equal(random_resized_crop(square, generator(0, 0), (1.0, 1.0), (1.0, 1.0)), square)


@pytest.mark.parametrize("size", [(9, 9), (9, 12), (12, 9), (10, 11)])
def test_no_scale_change_keeps_every_image_whose_ratio_is_in_range(rng, size):
    """crop_scale=(1, 1) with the default ratios still cropped: the full area drawn with a ratio of
    4:3 was cut to fit a square image, keeping 87 % of it (torchvision draws again, then keeps the image)."""
    images = rng.integers(0, 256, (64, 3) + size, dtype=np.uint8)
    np.testing.assert_array_equal(Augmentation(("crop",), crop_scale=(1, 1))(images, generator(0, 1)), images)
    np.testing.assert_array_equal(random_resized_crop(images, generator(2, 3), (1.0, 1.0)), images)


def test_an_image_wider_than_the_ratios_falls_back_to_its_widest_centred_crop_of_4_to_3():
    # 4 rows, 12 columns: the centred 4 x 5.33 part (ratio 4:3), as torchvision's fallback.
    images = np.tile(np.arange(12, dtype=np.uint8) * 20, (2, 1, 4, 1))
    out = random_resized_crop(images, generator(0, 0), (1.0, 1.0))
    np.testing.assert_array_equal(out[0], out[1])  # nothing random about it
    expected = _naive_resized_crop(images[0], 0.0, (12 - 16 / 3) / 2, 4.0, 16 / 3)
    assert np.abs(out[0].astype(int) - expected).max() <= 1


def test_crops_keep_a_share_of_the_area_in_crop_scale_and_a_ratio_in_crop_ratio():
    # Ramps along the rows and the columns: each output's first and last values give the crop's extent.
    height = width = 40
    out_rows = random_resized_crop(np.broadcast_to(np.arange(height, dtype=np.uint8)[:, None] * 6,
                                                   (400, 1, height, width)).copy(), generator(1, 1), (0.3, 0.6))
    out_cols = random_resized_crop(np.broadcast_to(np.arange(width, dtype=np.uint8)[None, :] * 6,
                                                   (400, 1, height, width)).copy(), generator(1, 1), (0.3, 0.6))
    crop_h = (out_rows[:, 0, -1, 0].astype(float) - out_rows[:, 0, 0, 0]) / 6 * height / (height - 1)
    crop_w = (out_cols[:, 0, 0, -1].astype(float) - out_cols[:, 0, 0, 0]) / 6 * width / (width - 1)
    share, ratio = crop_h * crop_w / (height * width), crop_w / crop_h
    assert share.min() > 0.28 and share.max() < 0.62 and 0.4 < share.mean() < 0.5
    assert ratio.min() > 0.72 and ratio.max() < 1.38


def test_jitter_of_zero_is_the_identity_and_jitter_changes_brightness(batch):
    np.testing.assert_array_equal(colour_jitter(batch, generator(0, 0), 0.0), batch)
    gray = np.full((200, 1, 4, 4), 100, np.uint8)
    out = colour_jitter(gray, generator(1, 1), 0.2)
    assert out.dtype == np.uint8 and 80 <= out.min() and out.max() <= 120 and out.std() > 5
    assert (out == out[:, :, :1, :1]).all()  # a flat image stays flat


@pytest.mark.parametrize("operations", [("crop",), ("shift",), ("flip",), ("jitter",),
                                        ("crop", "shift", "flip", "jitter")])
def test_every_operation_keeps_shape_and_dtype_and_repeats_under_a_seed(batch, operations):
    augment = Augmentation(operations)
    first = augment(batch, generator(7, 2))
    np.testing.assert_array_equal(first, augment(batch, generator(7, 2)))
    assert first.shape == batch.shape and first.dtype == np.uint8
    assert not np.array_equal(first, augment(batch, generator(7, 3)))  # another epoch, other changes


def test_specs_and_the_default_per_kind():
    assert augmentation_for("auto", "small") is None  # a flipped digit is another digit
    assert augmentation_for("auto", "photos").operations == ("crop", "flip")
    assert augmentation_for("none", "photos") is None
    assert augmentation_for("flip+shift", "small").operations == ("shift", "flip")
    assert augmentation_for(" jitter , crop ", "small").operations == ("crop", "jitter")
    with pytest.raises(DatasetError, match="operations must be some of crop, shift, flip, jitter"):
        augmentation_for("rotate", "photos")
    augment = Augmentation(("crop", "jitter"), crop_scale=(0.6, 0.9), shift=0.1, jitter=0.3)
    again = Augmentation.from_config(augment.get_config())
    assert again.get_config() == augment.get_config() == {
        "operations": ["crop", "jitter"], "crop_scale": [0.6, 0.9], "shift": 0.1, "jitter": 0.3,
        "crop_ratio": [0.75, 4 / 3]}
    older = {"operations": ["crop"], "crop_scale": [0.6, 0.9], "shift": 0.1, "jitter": 0.3}  # saved before crop_ratio
    assert Augmentation.from_config(older).crop_ratio == (0.75, 4 / 3)
    with pytest.raises(DatasetError, match="crop_scale"):
        Augmentation(crop_scale=(0.9, 0.5))


def _loader(images, labels, augment, seed=4):
    pre = Preprocessing.fit(images, range(len(images)), images.shape[2:], images.shape[1])
    return DataLoader(images, labels, range(len(images)), 4, pre, shuffle=True, seed=seed, augment=augment)


def test_loader_augments_reproducibly_and_resumes_exactly(rng):
    images = rng.integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(10)
    augment = augmentation_for("crop,flip,jitter", "photos")
    whole = _loader(images, labels, augment)
    epochs = [[X for X, _ in whole] for _ in range(3)]
    again = _loader(images, labels, augment)
    for expected in epochs:
        for X, Y in zip(expected, [X for X, _ in again]):
            np.testing.assert_array_equal(X, Y)
    assert not np.array_equal(epochs[1][0], epochs[2][0])
    # Stopped after one epoch, rebuilt from the saved state (augmentation included), continued.
    part = _loader(images, labels, None)
    part.augment = augment
    list(part)
    state = part.state_dict()
    assert state["augment"] == augment.get_config()
    resumed = _loader(images, labels, None).load_state_dict(state)
    for expected in epochs[1:]:
        for X, Y in zip(expected, [X for X, _ in resumed]):
            np.testing.assert_array_equal(X, Y)


def test_without_augmentation_batches_are_the_images_themselves(rng):
    images = rng.integers(0, 256, (5, 1, 4, 4), dtype=np.uint8)
    loader = _loader(images, np.arange(5), None)
    for X, y in loader:
        np.testing.assert_allclose(X, loader.preprocessing.apply(images[y]))
    with pytest.raises(DatasetError, match="augment must be an Augmentation"):
        _loader(images, np.arange(5), "crop")


def test_an_unknown_kind_is_one_line_naming_the_kinds():
    from nnfs.data import DatasetError, augmentation_for

    with pytest.raises(DatasetError, match=r"^augmentation_for: kind must be one of 'photos', 'small' .* got 'videos'$"):
        augmentation_for("auto", "videos")
    assert augmentation_for("none", "videos") is None  # the kind is only read for "auto"


def test_a_shift_of_no_pixels_moves_nothing_and_bad_arguments_are_named():
    images = np.arange(128, dtype=np.uint8).reshape(2, 1, 8, 8)
    for shift in (0.0, 0.01):  # no pixel at all, or less than half of one on 8 pixels
        assert np.array_equal(Augmentation(("shift",), shift=shift)(images, np.random.default_rng(0)), images)
    for crop_scale in (0.5, (0.5, 0.7, 1.0), "ab"):
        with pytest.raises(DatasetError, match=r"^Augmentation: crop_scale must be \(smallest, largest\)"):
            Augmentation(crop_scale=crop_scale)
    with pytest.raises(DatasetError, match=r"^Augmentation: operations must be some of"):
        Augmentation(None)
    for crop_ratio, message in (((0, 1), r"crop_ratio must be a finite number > 0, got 0.0"),
                                ((2, 1), r"crop_ratio must be \(smallest, largest\), got \(2, 1\)"),
                                ("ab", r"crop_ratio must be \(smallest, largest\), got 'ab'"),
                                ((1, float("inf")), r"crop_ratio must be a finite number > 0, got inf")):
        with pytest.raises(DatasetError, match=rf"^Augmentation: {message}$"):
            Augmentation(crop_ratio=crop_ratio)
    square = np.arange(2 * 3 * 8 * 8, dtype=np.uint8).reshape(2, 3, 8, 8)
    assert np.array_equal(Augmentation(("crop",), crop_scale=(1, 1), crop_ratio=(1, 1))(square, generator(0, 0)),
                          square)


def test_augmentation_names_a_batch_a_generator_a_spec_and_a_record_it_cannot_use():
    """A single image was an unpacking ValueError, rng=None an AttributeError, a spec of None meant
    'none' and ['crop'] became the operation \"['crop']\"."""
    augment = Augmentation(("crop",))
    with pytest.raises(DatasetError, match=r"^Augmentation: expected a uint8 batch of shape \(B, C, H, W\), "
                                           r"got dtype uint8 and shape \(3, 8, 8\)$"):
        augment(np.zeros((3, 8, 8), np.uint8), generator(0, 0))
    with pytest.raises(DatasetError, match=r"^Augmentation: expected a uint8 batch .* got dtype float32"):
        augment(np.zeros((1, 3, 8, 8), np.float32), generator(0, 0))
    with pytest.raises(DatasetError, match=r"^Augmentation: rng must be a NumPy Generator"):
        augment(np.zeros((1, 3, 8, 8), np.uint8), None)
    for spec in (None, ["crop"], 1):
        with pytest.raises(DatasetError, match=r"^augmentation_for: spec must be a string such as 'auto', 'none' "
                                               r"or 'crop,flip', got "):
            augmentation_for(spec, "photos")
    with pytest.raises(DatasetError, match=r"^malformed augmentation record 'crop': expected a dict"):
        Augmentation.from_config("crop")


@pytest.mark.parametrize("make", [lambda value: Augmentation.from_config(value),
                                  lambda value: augmentation_for(value, "photos")],
                         ids=["from_config", "augmentation_for"])
def test_a_huge_value_is_quoted_short(make):
    """A record read from a file (or a spec built by a script) of a million items was quoted whole."""
    with pytest.raises(DatasetError) as error:
        make(list(range(10**5)))
    assert "~" in str(error.value) and len(str(error.value)) < 200
