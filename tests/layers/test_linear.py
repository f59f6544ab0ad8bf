"""Linear: gradients, the forward formula and PyTorch, He init with zero bias, errors."""

import re

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import Linear
from tests.gradcheck import assert_layer_gradients
from tests.layercheck import compare_with_torch


@pytest.mark.parametrize("n, in_dim, out_dim", [(3, 5, 4), (1, 1, 1), (6, 2, 7)])
def test_gradients_match_finite_differences(backend, rng, n, in_dim, out_dim):
    layer = Linear(in_dim, out_dim)
    layer.params["bias"] = layer.backend.asarray(rng.normal(size=out_dim))
    assert_layer_gradients(layer, rng.normal(size=(n, in_dim)), backend, rng)


def test_forward_is_affine(backend, rng):
    layer = Linear(5, 3).to(backend, "float64")
    layer.params["bias"] = backend.asarray(rng.normal(size=3))
    X = rng.normal(size=(4, 5))
    W, b = to_numpy(layer.params["weight"]), to_numpy(layer.params["bias"])
    np.testing.assert_allclose(to_numpy(layer(backend.asarray(X))), X @ W.T + b, rtol=1e-12, atol=1e-12)


def test_he_init_and_zero_bias():
    # Pitfall 13: the original's bias started random.
    layer = Linear(800, 300, dtype="float64")
    weight = to_numpy(layer.params["weight"])
    assert weight.shape == (300, 800)
    assert abs(weight.std() / np.sqrt(2.0 / 800) - 1) < 0.02
    assert abs(weight.mean()) < 0.005
    np.testing.assert_array_equal(to_numpy(layer.params["bias"]), np.zeros(300))


def test_grads_are_overwritten_not_accumulated(backend, rng):
    layer = Linear(3, 2).to(backend, "float64")
    X = backend.asarray(rng.normal(size=(4, 3)))
    dY = backend.asarray(rng.normal(size=(4, 2)))
    layer(X)
    layer.backward(dY)
    first = to_numpy(layer.grads["weight"]).copy()
    layer(X)
    layer.backward(dY)
    np.testing.assert_allclose(to_numpy(layer.grads["weight"]), first, rtol=1e-12)


def test_matches_pytorch(backend, rng, torch):
    ours = Linear(6, 4)
    ours.params["bias"] = ours.backend.asarray(rng.normal(size=4))
    compare_with_torch(ours, torch.nn.Linear(6, 4).double(), rng.normal(size=(5, 6)), backend, rng,
                       ("weight", "bias"))


@pytest.mark.parametrize("shape", [(3, 4, 1), (4,)])
def test_wrong_rank(shape):
    with pytest.raises(ValueError, match=rf"Linear.*{re.escape(str(shape))}"):
        Linear(4, 2)(np.zeros(shape, np.float32))


def test_wrong_features():
    with pytest.raises(ValueError, match=r"Linear: expected 4 .*\(3, 5\)"):
        Linear(4, 2)(np.zeros((3, 5), np.float32))


@pytest.mark.parametrize("in_dim, out_dim, match", [(0, 2, "in_dim"), (2, -1, "out_dim"), (2.0, 2, "in_dim")])
def test_bad_sizes(in_dim, out_dim, match):
    with pytest.raises(ValueError, match=f"Linear: {match}"):
        Linear(in_dim, out_dim)


def test_a_size_computed_with_numpy_is_an_integer_like_any_other():
    # np.prod returns a NumPy integer: the usual way to compute a flattened size.
    layer = Linear(np.prod((3, 4)), 5)
    assert layer.get_config() == {"in_dim": 12, "out_dim": 5} and type(layer.in_dim) is int
    assert layer(layer.backend.asarray(np.ones((2, 12)), dtype="float32")).shape == (2, 5)
