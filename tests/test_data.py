"""nnfs.data: image folders, conversion, split, normalisation and batches."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from nnfs.data import DataLoader, DatasetError, ImageFolder, Preprocessing, stratified_split
from imagefolders import make_folder, write_image


def load(root, **kwargs):
    messages = []
    data = ImageFolder(root, warn=messages.append, **kwargs)
    return data, messages


def test_classes_are_sorted_subfolder_names_of_any_kind(tmp_path):
    make_folder(tmp_path, ["zebra", "Ant", "10", "2"], per_class=3)
    data, messages = load(tmp_path)
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
    data, _ = load(tmp_path)
    assert data.channels == 3
    assert data.image_size == (6, 10)
    assert data.images.shape == (4, 3, 6, 10)
    gray = data.images[data.paths.index(str(tmp_path / "a" / "gray.png"))]
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])


def test_grayscale_when_every_image_is_and_channels_or_size_on_request(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2, mode="L", size=(8, 8))
    assert load(tmp_path)[0].channels == 1
    data, _ = load(tmp_path, channels=3, image_size=(5, 7))
    assert data.images.shape == (4, 3, 5, 7)
    assert load(tmp_path, image_size=4)[0].images.shape == (4, 1, 4, 4)


def test_transparent_pixels_become_white(tmp_path):
    write_image(tmp_path / "a" / "clear.png", "RGBA", (4, 4), value=0)  # fully transparent black
    write_image(tmp_path / "b" / "x.png", "RGB", (4, 4))
    data, _ = load(tmp_path)
    assert (data.images[0] == 255).all()


def test_hidden_nested_and_non_image_files_are_skipped_with_one_warning(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"junk")
    write_image(tmp_path / "a" / "deeper" / "x.png")
    write_image(tmp_path / ".git" / "y.png")  # a hidden folder is not a class
    data, messages = load(tmp_path)
    assert data.class_names == ["a", "b"] and len(data) == 4
    assert any("1 file(s) that are not images" in m and "notes.txt" in m for m in messages)
    assert any("nested" in m and "deeper" in m for m in messages)
    assert data.skipped["not an image"] == [str(tmp_path / "a" / "notes.txt")]


def test_corrupt_image_raises_with_its_path_or_is_skipped_and_counted(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=3)
    bad = tmp_path / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DatasetError, match="broken.png"):
        load(tmp_path)
    data, messages = load(tmp_path, on_error="skip")
    assert len(data) == 6 and data.skipped["unreadable"] == [str(bad)]
    assert any("1 unreadable image(s)" in m for m in messages)


def test_truncated_png_is_reported(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2, size=(32, 32))
    path = tmp_path / "a" / "000.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DatasetError, match="000.png"):
        load(tmp_path)


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
        load(root)


def test_a_class_whose_images_are_all_unreadable_is_an_error_even_when_skipping(tmp_path):
    make_folder(tmp_path, ["a"], per_class=2)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="no readable images"):
        load(tmp_path, on_error="skip")


def test_limit_takes_the_first_images_of_each_class(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=5)
    data, _ = load(tmp_path, limit=2)
    assert data.class_counts() == [2, 2]
    assert data.paths[0].endswith("a/000.png") and data.paths[1].endswith("a/001.png")


def test_stratified_split_is_seeded_disjoint_and_keeps_every_class():
    labels = [0] * 50 + [1] * 30 + [2] * 3
    train, val = stratified_split(labels, 0.2, seed=7)
    assert sorted(train + val) == list(range(83))
    counts = np.bincount(np.asarray(labels)[val])
    assert counts.tolist() == [10, 6, 1]
    assert (train, val) == stratified_split(labels, 0.2, seed=7)
    assert val != stratified_split(labels, 0.2, seed=8)[1]


@pytest.mark.parametrize("fraction", [0, 1, 0.0, 1.0, -0.1, 1.5, True])
def test_val_split_must_be_strictly_between_zero_and_one(fraction):
    with pytest.raises(DatasetError, match="val_split must be"):
        stratified_split([0, 0, 1, 1], fraction)


def test_split_with_single_image_classes_only_is_an_error():
    with pytest.raises(DatasetError, match="validation split is empty"):
        stratified_split([0, 1, 2], 0.5)


def test_normalisation_uses_the_training_split_only(rng):
    images = rng.integers(0, 256, (20, 3, 4, 4), dtype=np.uint8)
    images[10:] = 255  # "validation" images, very bright
    train = list(range(10))
    pre = Preprocessing.fit(images, train, (4, 4), 3)
    pixels = images[:10].astype(np.float64) / 255
    np.testing.assert_allclose(pre.mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(pre.std, pixels.std(axis=(0, 2, 3)), rtol=1e-9)
    X = pre.apply(images[:10])
    assert X.dtype == np.float32
    np.testing.assert_allclose(X.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert pre.apply(images[:2], "float64").dtype == np.float64


def test_constant_channel_gives_finite_values():
    images = np.full((4, 1, 3, 3), 7, dtype=np.uint8)
    pre = Preprocessing.fit(images, [0, 1, 2, 3], (3, 3), 1)
    assert np.isfinite(pre.apply(images)).all()


def test_preprocessing_round_trips_and_rejects_malformed_records():
    pre = Preprocessing((6, 5), 3, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert Preprocessing.from_config(pre.get_config()) == pre
    with pytest.raises(DatasetError):
        Preprocessing.from_config({"image_size": [6, 5], "channels": 3, "mean": [0.1], "std": [1.0]})
    with pytest.raises(DatasetError):
        Preprocessing.from_config({"channels": 3})


def test_preprocessing_reads_a_file_like_the_dataset_does(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2, mode="RGB", size=(9, 7))
    data, _ = load(tmp_path, channels=1, image_size=(5, 6))
    pre = Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels)
    assert np.array_equal(pre.load(data.paths), data.images)


def test_loader_keeps_the_last_partial_batch_and_reshuffles_every_epoch(rng):
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(2, axis=2)
    labels = np.arange(10, dtype=np.int64)
    pre = Preprocessing((2, 1), 1, [0.0], [1 / 255])  # x -> pixel value, to trace samples
    loader = DataLoader(images, labels, range(10), 4, pre, shuffle=True, seed=3)
    assert len(loader) == 3
    orders = []
    for _ in range(2):
        batches = list(loader)
        assert [len(y) for _, y in batches] == [4, 4, 2]
        order = np.concatenate([y for _, y in batches])
        assert sorted(order.tolist()) == list(range(10))
        for X, y in batches:
            assert X.dtype == np.float32 and X.shape[1:] == (1, 2, 1)
            np.testing.assert_allclose(X[:, 0, 0, 0], y)
        orders.append(order.tolist())
    assert orders[0] != orders[1]
    again = DataLoader(images, labels, range(10), 4, pre, shuffle=True, seed=3)
    assert np.concatenate([y for _, y in again]).tolist() == orders[0]
    plain = DataLoader(images, labels, [7, 2, 5], 8, pre)
    assert [y.tolist() for _, y in plain] == [[7, 2, 5]]


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_loader_rejects_bad_batch_sizes(batch_size):
    pre = Preprocessing((1, 1), 1, [0.0], [1.0])
    with pytest.raises(DatasetError, match="batch_size"):
        DataLoader(np.zeros((2, 1, 1, 1), np.uint8), np.zeros(2, np.int64), [0, 1], batch_size, pre)


def test_shipped_digits_are_500_per_class_28x28_grayscale():
    root = pathlib.Path(__file__).resolve().parents[1] / "data" / "digits"
    data, messages = load(root, limit=3)
    assert data.class_names == [str(d) for d in range(10)]
    assert data.channels == 1 and data.image_size == (28, 28) and messages == []
    assert all(len(list((root / str(d)).glob("*.png"))) == 500 for d in range(10))


def test_sixteen_bit_and_float_grayscale_are_scaled_not_clipped(tmp_path):
    wide = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "a.png")  # a 16-bit grayscale PNG
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (tmp_path / "a.png").rename(folder / "a" / "wide.png")
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)).save(folder / "b" / "float.tif")
    # A 16-bit image whose values all fit in 8 bits is still a dark 16-bit image, and a
    # float image with one bright outlier is clipped there, not rescaled: one fixed scale
    # per mode, whatever an image's own values.
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(folder / "a" / "dim.png")
    outlier = np.full((8, 8), 0.5, np.float32)
    outlier[0, 0] = 2.0
    Image.fromarray(outlier).save(folder / "b" / "outlier.tif")
    data, _ = load(folder)
    assert data.channels == 1
    image = {pathlib.Path(path).name: pixels[0] for path, pixels in zip(data.paths, data.images)}
    np.testing.assert_allclose(image["wide.png"], wide / 257, atol=1)
    assert image["dim.png"].max() <= 1  # 200 of 65535
    assert image["float.tif"].min() == 0 and image["float.tif"].max() >= 254
    assert image["outlier.tif"][0, 0] == 255
    assert set(image["outlier.tif"].ravel()[1:]) <= {127, 128}


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    image = Image.new("RGB", (8, 4), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "photo.jpg", exif=exif)
    folder = tmp_path / "data"
    write_image(folder / "b" / "x.png", "RGB", (4, 8))
    (folder / "a").mkdir()
    (tmp_path / "photo.jpg").rename(folder / "a" / "photo.jpg")
    data, _ = load(folder)
    assert data.image_size == (8, 4)  # both upright images are 4 wide and 8 high
    assert data.images[0, 0].min() > 200  # red, not stretched garbage


def test_loader_state_dict_continues_the_shuffling(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=5, mode="L", size=(6, 6))
    data = ImageFolder(root)
    pre = Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels)

    def loader():
        return DataLoader(data.images, data.labels, range(len(data)), 3, pre, shuffle=True, seed=5)

    whole = loader()
    orders = [np.concatenate([y for _, y in whole]) for _ in range(3)]
    first = loader()
    list(first)
    saved = first.state_dict()
    assert saved == {"seed": 5, "passes": 1, "augment": None}
    resumed = loader().load_state_dict(saved)
    for expected in orders[1:]:
        np.testing.assert_array_equal(np.concatenate([y for _, y in resumed]), expected)
    assert not np.array_equal(orders[1], orders[2])  # it really reshuffles
