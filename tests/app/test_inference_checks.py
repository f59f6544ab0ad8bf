"""Classifier refuses a checkpoint whose preprocessing cannot feed its net, before reading an image."""

import pytest

from nnfs.app.inference import Classifier
from nnfs.app.models import reference_cnn
from nnfs.checkpoint import CheckpointError, save
from nnfs.data import Preprocessing


@pytest.mark.parametrize("pre, names, match", [
    (Preprocessing((8, 8), 1, [0.5], [0.0]), ["a", "b"], "each std finite and positive"),
    (Preprocessing((8, 8), 1, [float("inf")], [0.2]), ["a", "b"], "each mean must be finite"),
    (Preprocessing((0, 8), 1, [0.5], [0.2]), ["a", "b"], "image size 0x8"),
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
