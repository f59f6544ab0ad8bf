"""stratified_split, Preprocessing and DataLoader: the split, normalisation, batches and shuffling."""

import numpy as np
import pytest

from nnfs.data import DataLoader, DatasetError, ImageFolder, Preprocessing, stratified_split
from tests.configs import assert_plain
from tests.imagefolders import make_folder, read_folder


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
    data, _ = read_folder(tmp_path, channels=1, image_size=(5, 6))
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


def test_numpy_numbers_as_fractions_sizes_and_seeds():
    labels = np.array([0] * 5 + [1] * 5)
    assert stratified_split(labels, np.float64(0.4), seed=np.int64(3)) == stratified_split(labels, 0.4, seed=3)
    pre = Preprocessing((1, 1), 1, [0.0], [1.0])
    images, indices = np.zeros((10, 1, 1, 1), np.uint8), np.arange(10)
    loader = DataLoader(images, labels, indices, np.int64(4), pre, shuffle=True, seed=np.int64(5))
    plain = DataLoader(images, labels, indices, 4, pre, shuffle=True, seed=5)
    assert len(loader) == 3 and [len(y) for _, y in loader] == [4, 4, 2]
    list(plain)
    assert loader.state_dict() == plain.state_dict() and assert_plain(loader.state_dict())
    fitted = Preprocessing.fit(np.zeros((4, 3, 2, 2), np.uint8), indices[:4], (np.int64(2), np.int32(2)),
                               np.int64(3))
    assert assert_plain(fitted.get_config()) == {"image_size": [2, 2], "channels": 3, "mean": [0.0] * 3,
                                                 "std": [1e-6] * 3, "resize": "crop"}


@pytest.mark.parametrize("make, argument", [
    (lambda: stratified_split([0, 0, 1, 1], 0.5, seed=True), "seed"),
    (lambda: stratified_split([0, 0, 1, 1], 0.5, seed=1.5), "seed"),
    (lambda: stratified_split([0, 0, 1, 1], np.bool_(True)), "val_split"),
    (lambda: DataLoader(np.zeros((2, 1, 1, 1), np.uint8), np.zeros(2, np.int64), [0, 1], np.bool_(True),
                        Preprocessing((1, 1), 1, [0.0], [1.0])), "batch_size"),
    (lambda: DataLoader(np.zeros((2, 1, 1, 1), np.uint8), np.zeros(2, np.int64), [0, 1], 2,
                        Preprocessing((1, 1), 1, [0.0], [1.0]), seed="0"), "seed"),
    (lambda: Preprocessing.fit(np.zeros((2, 1, 2, 2), np.uint8), [0, 1], (2, 2), True), "channels"),
    (lambda: Preprocessing.fit(np.zeros((2, 1, 2, 2), np.uint8), [0, 1], (2.0, 2), 1), "image_size"),
])
def test_bools_and_other_types_are_dataset_errors_naming_the_argument(make, argument):
    with pytest.raises(DatasetError, match=rf"(stratified_split|DataLoader|Preprocessing): {argument} must be"):
        make()


def test_stratified_split_refuses_labels_that_are_not_class_indices():
    from nnfs.data import DatasetError, stratified_split

    with pytest.raises(DatasetError, match=r"labels must be class indices \(integers >= 0\), got 0.5"):
        stratified_split([0.5, 0.7, 1.2, 1.9], 0.5)
    with pytest.raises(DatasetError, match=r"labels must be class indices \(integers >= 0\), got -1"):
        stratified_split([0, 0, -1, -1], 0.5)
    assert stratified_split([0.0, 0.0, 1.0, 1.0], 0.5, seed=0) == stratified_split([0, 0, 1, 1], 0.5, seed=0)


def test_labels_may_be_a_list():
    import numpy as np

    from nnfs.data import DataLoader, Preprocessing

    images = np.zeros((4, 1, 4, 4), np.uint8)
    loader = DataLoader(images, [0, 1, 0, 1], [0, 1, 2, 3], 2, Preprocessing((4, 4), 1, [0.5], [0.2]))
    assert [list(y) for _, y in loader] == [[0, 1], [0, 1]]


def _loader(**changes):
    images = np.zeros((4, 3, 2, 2), np.uint8)
    arguments = dict(images=images, labels=np.array([0, 1, 0, 1]), indices=[0, 1, 2, 3], batch_size=2,
                     preprocessing=Preprocessing((2, 2), 3, [0.5] * 3, [0.2] * 3))
    arguments.update(changes)
    return DataLoader(**arguments)


@pytest.mark.parametrize("changes, message", [
    ({"dtype": "int32"}, r"DataLoader: dtype must be a float dtype such as 'float32', got int32"),
    ({"dtype": "foo"}, r"DataLoader: dtype must be a float dtype such as 'float32', got 'foo'"),
    ({"labels": None}, r"DataLoader: images and labels must be arrays \(labels may be a list\), got ndarray and "
                       r"NoneType"),
    ({"indices": [0, 4]}, r"DataLoader: indices must be in \[0, 4\) \(the images\), got values in \[0, 4\]"),
    ({"indices": [-1, 0]}, r"indices must be in \[0, 4\) .* \[-1, 0\]"),
    ({"indices": [0.0, 1.0]}, r"DataLoader: indices must be a flat list of integers, got dtype float64"),
    ({"indices": [True, False]}, r"indices must be a flat list of integers, got dtype bool"),
    ({"labels": [0, 1, 0]}, r"DataLoader: 4 images but 3 labels"),
])
def test_loader_arguments_that_would_fail_later_or_give_wrong_batches_are_refused(changes, message):
    """An integer dtype scaled every pixel to 0, -1 served the last image, and an index past the
    end or too few labels failed at some later batch with NumPy's IndexError."""
    with pytest.raises(DatasetError, match=message):
        _loader(**changes)


@pytest.mark.parametrize("state, message", [
    ({"seed": "x", "passes": 0}, r"DataLoader.load_state_dict: seed must be an int, got 'x'"),
    ({"seed": 0, "passes": -1}, r"DataLoader.load_state_dict: passes must be an int >= 0"),
    ({"passes": 1}, r"DataLoader.load_state_dict: the saved state lacks 'seed'"),
])
def test_loader_state_is_checked_before_it_is_used(state, message):
    loader = _loader(shuffle=True)
    before = loader.state_dict()
    with pytest.raises(DatasetError, match=message):
        loader.load_state_dict(state)
    assert loader.state_dict() == before


def test_preprocessing_refuses_images_of_another_layout_or_channel_count():
    """Per-channel statistics of 3 channels broadcast over 1 without a word; 3-d images raised
    NumPy's AxisError from inside the statistics."""
    pre = Preprocessing((2, 2), 3, [0.5] * 3, [0.2] * 3)
    with pytest.raises(DatasetError, match=r"Preprocessing.apply: expected images of shape \(N, 3, 2, 2\), "
                                           r"got \(2, 1, 2, 2\)"):
        pre.apply(np.zeros((2, 1, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"Preprocessing.fit: expected images of shape \(N, 1, H, W\), "
                                           r"got \(2, 2, 2\)"):
        Preprocessing.fit(np.zeros((2, 2, 2), np.uint8), [0, 1], (2, 2), 1)


def test_loader_dtypes_are_floats_of_any_width_and_labels_any_sequence():
    assert [next(iter(_loader(dtype=dtype)))[0].dtype.name for dtype in ("float16", "float32", np.float64, None)] == [
        "float16", "float32", "float64", "float32"]  # None: the default dtype
    assert [list(y) for _, y in _loader(labels=range(4))] == [[0, 1], [2, 3]]


def test_loader_shuffle_is_a_bool_and_preprocessing_a_record():
    with pytest.raises(DatasetError, match=r"^DataLoader: shuffle must be"):
        _loader(shuffle="no")  # a non-empty string is true: it shuffled
    with pytest.raises(DatasetError, match=r"^DataLoader: preprocessing must be a Preprocessing"):
        _loader(preprocessing=None)


@pytest.mark.parametrize("labels, message", [
    ([], r"^stratified_split: no labels to split \(an empty dataset\)$"),
    (5, r"^stratified_split: labels must be a list or 1-d array of class indices, got int$"),
    ("0011", r"^stratified_split: labels must be a list or 1-d array of class indices, got str$"),
    (["a", "b"], r"^stratified_split: labels must be class indices \(integers >= 0\), got 'a'$"),
    ([0, None], r"^stratified_split: labels must be class indices \(integers >= 0\), got None$"),
    ([0, float("nan")], r"^stratified_split: labels must be class indices \(integers >= 0\), got nan$"),
    ([0, float("inf")], r"^stratified_split: labels must be class indices \(integers >= 0\), got inf$"),
    (np.zeros((4, 2)), r"^stratified_split: labels must be class indices \(integers >= 0\), got array"),
])
def test_stratified_split_names_labels_it_cannot_split(labels, message):
    """An empty list was 'every class has a single image (0 images in all)'; strings, None, NaN
    and rows were Python's own ValueError or TypeError from int()."""
    with pytest.raises(DatasetError, match=message):
        stratified_split(labels, 0.5)


def test_an_empty_validation_split_says_what_a_class_needs():
    with pytest.raises(DatasetError, match=r"^validation split is empty: every class has a single image \(3 images "
                                           r"in all\), and a class needs 2 or more to give one to validation; "
                                           r"add images$"):
        stratified_split([0, 1, 2], 0.5)


@pytest.mark.parametrize("indices, message", [
    ([], r"^Preprocessing.fit: no samples \(empty index list\)$"),
    ([0, 9], r"^Preprocessing.fit: indices must be in \[0, 4\) \(the images\), got values in \[0, 9\]$"),
    ([-1], r"^Preprocessing.fit: indices must be in \[0, 4\) .* got values in \[-1, -1\]$"),
    (3, r"^Preprocessing.fit: indices must be a list of sample indices, got int$"),
])
def test_preprocessing_fit_checks_its_indices_as_the_loader_does(indices, message):
    """-1 fitted the statistics on the last image without a word; 9 was NumPy's IndexError; none
    was an error naming a backend function."""
    with pytest.raises(DatasetError, match=message):
        Preprocessing.fit(np.zeros((4, 1, 2, 2), np.uint8), indices, (2, 2), 1)


@pytest.mark.parametrize("changes, message", [
    ({"images": np.zeros((4, 3, 2, 2), np.float32)},
     r"^DataLoader: expected uint8 images \(pixels 0 to 255\), got dtype float32$"),
    ({"images": np.zeros((4, 3, 2, 3), np.uint8)}, r"^DataLoader: expected images of shape \(N, 3, 2, 2\), "
                                                   r"got \(4, 3, 2, 3\)$"),
    ({"images": np.zeros((4, 1, 2, 2), np.uint8)}, r"^DataLoader: expected images of shape \(N, 3, 2, 2\), "
                                                   r"got \(4, 1, 2, 2\)$"),
    ({"labels": [0.0, 1.0, 0.5, 1.0]}, r"^DataLoader: labels must be class indices, integers of shape \(N,\), got "
                                       r"dtype float64 and shape \(4,\)$"),
    ({"labels": np.eye(2, dtype=np.int64)[[0, 1, 0, 1]]}, r"^DataLoader: labels must be class indices, .* shape "
                                                          r"\(4, 2\)$"),
    ({"indices": 3}, r"^DataLoader: indices must be a list of sample indices, got int$"),
    ({"indices": []}, r"^DataLoader: no samples \(empty index list\)$"),
])
def test_loader_refuses_images_and_labels_that_would_be_served_wrong(changes, message):
    """Float images in [0, 1] were divided by 255 again, images of another size than the record
    reached the net, and float or one-hot labels went through to the loss."""
    with pytest.raises(DatasetError, match=message):
        _loader(**changes)


def test_loader_state_that_is_no_dict_is_named():
    with pytest.raises(DatasetError, match=r"^DataLoader.load_state_dict: the saved state must be a dict "
                                           r"\(state_dict\(\)\), got NoneType$"):
        _loader().load_state_dict(None)


def test_preprocessing_refuses_images_of_another_size_than_its_own():
    """A model that takes any size (the residual network pools) classified 300x300 pixels given
    to a 32x32 record without a word, at another scale than it was trained on."""
    pre = Preprocessing((4, 6), 1, [0.5], [0.2])
    assert pre.apply(np.zeros((2, 1, 4, 6), np.uint8)).shape == (2, 1, 4, 6)
    with pytest.raises(DatasetError, match=r"Preprocessing.apply: expected images of shape \(N, 1, 4, 6\), "
                                           r"got \(2, 1, 6, 4\)"):
        pre.apply(np.zeros((2, 1, 6, 4), np.uint8))
