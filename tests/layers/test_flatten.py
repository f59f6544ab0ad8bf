"""Flatten: shapes both ways, an exact gradient, the empty batch, errors."""

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import Flatten
from tests.gradcheck import assert_layer_gradients


def test_gradients_match_finite_differences(backend, rng):
    assert_layer_gradients(Flatten(), rng.normal(size=(2, 3, 4, 5)), backend, rng)


def test_flattens_all_but_the_batch_axis(backend, rng):
    X = rng.normal(size=(2, 3, 4, 5))
    layer = Flatten()
    Y = layer(backend.asarray(X))
    assert Y.shape == (2, 60)
    np.testing.assert_array_equal(to_numpy(Y), X.reshape(2, 60))
    dX = layer.backward(backend.asarray(X.reshape(2, 60)))
    np.testing.assert_array_equal(to_numpy(dX), X)
    assert Flatten()(backend.asarray(np.ones((4, 7)))).shape == (4, 7)


def test_an_empty_batch_keeps_its_feature_count(backend):
    # reshape(0, -1) cannot infer the 48 features: the size of an empty batch is 0 whatever they are.
    # A data-parallel rank whose validation shard is empty sends exactly such a batch.
    layer = Flatten()
    Y = layer(backend.asarray(np.zeros((0, 3, 4, 4)), dtype="float32"))
    assert Y.shape == (0, 48) and Y.dtype == np.float32
    assert layer.backward(backend.xp.zeros((0, 48), dtype="float32")).shape == (0, 3, 4, 4)


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"Flatten.*\(5,\)"):
        Flatten()(np.zeros(5, np.float32))
