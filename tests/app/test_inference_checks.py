"""Classifier refuses a checkpoint whose preprocessing cannot feed its net, before reading an image."""

import re

import pytest

from nnfs.app.inference import Classifier
from nnfs.app.models import reference_cnn
from nnfs.checkpoint import CheckpointError, save
from nnfs.data import Preprocessing
from tests.archives import rewrite_checkpoint


@pytest.mark.parametrize("change, match", [
    ({"std": [0.0]}, r"m\.npz: malformed preprocessing record .*std must be a finite number in \[1e-06, 1e\+30\]"),
    ({"mean": [float("inf")]}, r"malformed preprocessing record .*mean must be a finite number"),
    ({"image_size": [0, 8]}, r"malformed preprocessing record .*image_size must be at least 1"),
    ({"image_size": "28"}, r"malformed preprocessing record .*image_size must be an int or a pair of ints"),
    ({"image_size": [True, True]}, r"malformed preprocessing record .*image_size must be an int or a pair"),
    ({"mean": [0.5, 0.5, 0.5]}, r"malformed preprocessing record .*mean must hold one number per channel"),
    ({"resize": "zoom"}, r"malformed preprocessing record .*resize must be one of"),
])
def test_a_damaged_preprocessing_record_is_refused_naming_the_file(tmp_path, change, match):
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=["a", "b"],
         preprocessing=Preprocessing((8, 8), 1, [0.5], [0.2]))
    rewrite_checkpoint(tmp_path / "m.npz", lambda meta: meta["preprocessing"].update(change))
    with pytest.raises(CheckpointError, match=match):
        Classifier(tmp_path / "m.npz")


@pytest.mark.parametrize("change", [{"mean": [0.5] * 1_000_000}, {"resize": "z" * 1_000_000},
                                    {"std": [0.0], "notes": "n" * 1_000_000}],
                         ids=["a million means", "a megabyte resize mode", "a megabyte field beside a bad std"])
def test_a_huge_preprocessing_record_is_quoted_shortened(tmp_path, change):
    """The record was echoed whole: a line of megabytes on the terminal."""
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=["a", "b"],
         preprocessing={**Preprocessing((8, 8), 1, [0.5], [0.2]).get_config(), **change})
    with pytest.raises(CheckpointError, match=r"m\.npz: malformed preprocessing record \{.*~.*\}: ") as info:
        Classifier(tmp_path / "m.npz")
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


@pytest.mark.parametrize("arguments, message", [
    (((8, 8), 1, [0.5], [0.0]), "std must be a finite number in [1e-06, 1e+30]"),
    (((8, 8), 1, [1e300], [0.2]), "mean must be a finite number in [-1e+30, 1e+30]"),  # inf in float32
    (((8, 8), 1, [0.5], [1e-320]), "std must be a finite number in [1e-06, 1e+30]"),
    (((8, 8), 1, [0.5, 0.5], [0.2, 0.2]), "mean must hold one number per channel (1)"),
    (((8, 8), 2, [0.5] * 2, [0.2] * 2), "channels must be 1 or 3"),
    (("28", 1, [0.5], [0.2]), "image_size must be an int or a pair of ints"),
    (((8, 8), 1, [0.5], [0.2], "zoom"), "resize must be one of"),
])
def test_a_preprocessing_record_that_could_not_read_images_is_refused_when_made(arguments, message):
    """Before it is used or saved: a checkpoint written with it would only be refused later."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Preprocessing(*arguments)


@pytest.mark.parametrize("pre, names, match", [
    (Preprocessing((100000, 100000), 1, [0.5], [0.2]), ["a", "b"], "at most 16,777,216 values"),
    (Preprocessing((12, 12), 1, [0.5], [0.2]), ["a", "b"], "does not fit its net: Linear: expected 128"),
    (Preprocessing((8, 8), 3, [0.5] * 3, [0.2] * 3), ["a", "b"], "Conv2D: expected 1 input channels"),
    (Preprocessing((8, 8), 1, [0.5], [0.2]), ["a", "b", "c"], r"outputs of shape \(2,\).*3 class names"),
])
def test_preprocessing_that_cannot_feed_the_net(tmp_path, pre, names, match):
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=names, preprocessing=pre)
    with pytest.raises(CheckpointError, match=match):
        Classifier(tmp_path / "m.npz")


def test_a_fitting_record_is_accepted(tmp_path):
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=["a", "b"],
         preprocessing=Preprocessing((8, 8), 1, [0.5], [0.2]))
    assert Classifier(tmp_path / "m.npz").class_names == ["a", "b"]
