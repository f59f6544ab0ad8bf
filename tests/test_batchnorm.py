"""BatchNorm2D: per-channel batch statistics, running statistics, train and eval gradients."""

import numpy as np
import pytest

from gradcheck import assert_layer_gradients
from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm2D


def _randomise(layer, rng, backend):
    C = layer.n_channels
    layer.params["weight"] = backend.asarray(rng.uniform(0.5, 1.5, size=C), dtype=layer.dtype)
    layer.params["bias"] = backend.asarray(rng.normal(size=C), dtype=layer.dtype)
    layer.buffers["running_mean"] = backend.asarray(rng.normal(size=C), dtype=layer.dtype)
    layer.buffers["running_var"] = backend.asarray(rng.uniform(0.5, 2.0, size=C), dtype=layer.dtype)
    return layer


@pytest.mark.parametrize("shape", [(4, 3, 3, 5), (3, 2, 1, 1), (1, 2, 3, 3), (5, 1, 2, 1)])
def test_train_gradients_match_finite_differences(backend, rng, shape):
    layer = _randomise(BatchNorm2D(shape[1]).to(backend, "float64"), rng, backend)
    X = rng.normal(loc=2.0, scale=3.0, size=shape)
    assert_layer_gradients(layer, X, backend, rng)


@pytest.mark.parametrize("shape", [(4, 3, 3, 5), (1, 2, 1, 1)])
def test_eval_gradients_match_finite_differences(backend, rng, shape):
    layer = _randomise(BatchNorm2D(shape[1]).to(backend, "float64"), rng, backend).eval()
    assert_layer_gradients(layer, rng.normal(size=shape), backend, rng)


def test_statistics_are_per_channel_over_batch_and_space(backend, rng):
    # Pitfall 5: the original normalised each sample over (H, W), i.e. instance norm.
    layer = BatchNorm2D(3).to(backend, "float64")
    X = rng.normal(size=(6, 3, 4, 5)) + rng.normal(scale=5.0, size=(6, 3, 1, 1))
    Y = to_numpy(layer(backend.asarray(X)))
    np.testing.assert_allclose(Y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(Y.var(axis=(0, 2, 3)), 1.0, rtol=1e-4)
    # Samples keep their offsets: per-sample means are far from zero.
    assert np.abs(Y.mean(axis=(2, 3))).max() > 0.5
    expected = (X - X.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(
        X.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(Y, expected, rtol=1e-10, atol=1e-12)


def test_running_statistics_follow_momentum(backend, rng):
    layer = BatchNorm2D(2, momentum=0.3).to(backend, "float64")
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(3):
        X = rng.normal(loc=1.5, scale=2.0, size=(4, 2, 3, 3))
        layer(backend.asarray(X))
        count = 4 * 3 * 3
        mean = 0.7 * mean + 0.3 * X.mean(axis=(0, 2, 3))
        var = 0.7 * var + 0.3 * X.var(axis=(0, 2, 3)) * count / (count - 1)
    np.testing.assert_allclose(to_numpy(layer.buffers["running_mean"]), mean, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.buffers["running_var"]), var, rtol=1e-12)


def test_eval_uses_running_statistics_and_leaves_them_alone(backend, rng):
    layer = _randomise(BatchNorm2D(3).to(backend, "float64"), rng, backend).eval()
    before = {k: to_numpy(v).copy() for k, v in layer.buffers.items()}
    X = rng.normal(size=(2, 3, 2, 2))
    Y = to_numpy(layer(backend.asarray(X)))
    w, b = (to_numpy(layer.params[k])[:, None, None] for k in ("weight", "bias"))
    rm, rv = (before[k][:, None, None] for k in ("running_mean", "running_var"))
    np.testing.assert_allclose(Y, (X - rm) / np.sqrt(rv + 1e-5) * w + b, rtol=1e-12)
    for key, value in layer.buffers.items():
        np.testing.assert_array_equal(to_numpy(value), before[key])


def test_eval_accepts_a_single_value_per_channel_but_train_refuses_it():
    layer = BatchNorm2D(2)
    X = layer.backend.asarray(np.ones((1, 2, 1, 1)), dtype="float32")
    with pytest.raises(ValueError, match="BatchNorm2D"):
        layer(X)
    assert layer.eval()(X).shape == (1, 2, 1, 1)


def test_starts_as_identity_with_unit_running_variance():
    layer = BatchNorm2D(4)
    np.testing.assert_array_equal(to_numpy(layer.params["weight"]), np.ones(4))
    np.testing.assert_array_equal(to_numpy(layer.params["bias"]), np.zeros(4))
    np.testing.assert_array_equal(to_numpy(layer.buffers["running_mean"]), np.zeros(4))
    np.testing.assert_array_equal(to_numpy(layer.buffers["running_var"]), np.ones(4))


@pytest.mark.parametrize("kwargs", [{"epsilon": 0}, {"momentum": 1.5}, {"momentum": -0.1}])
def test_bad_hyperparameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="BatchNorm2D"):
        BatchNorm2D(3, **kwargs)
