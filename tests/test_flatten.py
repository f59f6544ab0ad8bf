"""Flatten: shapes both ways and an exact gradient."""

import numpy as np

from gradcheck import assert_layer_gradients
from nnfs.backend import to_numpy
from nnfs.layers import Flatten


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
