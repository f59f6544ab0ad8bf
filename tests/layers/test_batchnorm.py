"""BatchNorm2D and BatchNorm1D: batch statistics per channel or feature, running statistics, train
and eval gradients, PyTorch, errors, and the channel-major fast path."""

import re

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm1D, BatchNorm2D
from tests.gradcheck import assert_layer_gradients
from tests.layercheck import (
    assert_close, assert_leaves_inputs_alone, assert_outputs_survive_the_next_step, compare_with_torch)


def _randomise(layer, rng, backend):
    C = layer.n_channels
    layer.params["weight"] = backend.asarray(rng.uniform(0.5, 1.5, size=C), dtype=layer.dtype)
    layer.params["bias"] = backend.asarray(rng.normal(size=C), dtype=layer.dtype)
    layer.buffers["running_mean"] = backend.asarray(rng.normal(size=C), dtype=layer.dtype)
    layer.buffers["running_var"] = backend.asarray(rng.uniform(0.5, 2.0, size=C), dtype=layer.dtype)
    return layer


@pytest.mark.parametrize("shape", [(4, 3, 3, 5), (3, 2, 1, 1), (1, 2, 3, 3), (5, 1, 2, 1), (4, 3, 3, 2)])
def test_train_gradients_match_finite_differences(backend, rng, shape):
    layer = _randomise(BatchNorm2D(shape[1]).to(backend, "float64"), rng, backend)
    X = rng.normal(loc=2.0, scale=3.0, size=shape)
    assert_layer_gradients(layer, X, backend, rng)


@pytest.mark.parametrize("shape", [(4, 3, 3, 5), (1, 2, 1, 1), (4, 3, 3, 2)])
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


def test_matches_pytorch_over_training_steps_then_eval(backend, rng, torch):
    ours = BatchNorm2D(3, momentum=0.2).to(backend, "float64")
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    ours.params["weight"] = backend.asarray(rng.uniform(0.5, 1.5, size=3))
    ours.params["bias"] = backend.asarray(rng.normal(size=3))
    for step in range(4):
        X = rng.normal(loc=step, scale=1.0 + step, size=(4, 3, 5, 6))
        theirs.zero_grad()
        compare_with_torch(ours, theirs, X, backend, rng, ("weight", "bias"))
        assert_close(ours.buffers["running_mean"], theirs.running_mean, f"running mean, step {step}")
        assert_close(ours.buffers["running_var"], theirs.running_var, f"running variance, step {step}")
    ours.eval()
    theirs.eval()
    theirs.zero_grad()
    compare_with_torch(ours, theirs, rng.normal(size=(2, 3, 4, 4)), backend, rng, ("weight", "bias"))


def test_leaves_its_input_and_upstream_gradient_alone(backend, rng):
    assert_leaves_inputs_alone(BatchNorm2D(3), backend, rng)


def test_outputs_survive_the_next_forward_and_backward(backend, rng):
    assert_outputs_survive_the_next_step(BatchNorm2D(3), backend, rng)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=rf"BatchNorm2D.*{re.escape(str((2, 3, 4)))}"):
        BatchNorm2D(3)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2D: expected 3 .*\(2, 4, 5, 5\)"):
        BatchNorm2D(3)(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="n_channels"):
        BatchNorm2D(0)


def test_n_channels_may_be_a_numpy_integer(backend, rng):
    layer = BatchNorm2D(np.int64(2))
    assert layer.get_config() == {"n_channels": 2, "epsilon": 1e-5, "momentum": 0.1}
    assert type(layer.n_channels) is int and layer.params["weight"].shape == (2,)
    X = backend.asarray(rng.normal(size=(3, 2, 2, 2)), dtype="float32")
    assert layer.to(backend)(X).shape == (3, 2, 2, 2)


# -- BatchNorm1D: the same core over (N, D) -----------------------------------------------------------

def test_1d_matches_pytorch_over_training_steps_then_eval(backend, rng, torch):
    D = 5
    layer = BatchNorm1D(D, epsilon=1e-3, momentum=0.2).to(backend, "float64")
    reference = torch.nn.BatchNorm1d(D, eps=1e-3, momentum=0.2).double()
    weight, bias = rng.normal(size=D), rng.normal(size=D)
    layer.params["weight"], layer.params["bias"] = backend.asarray(weight), backend.asarray(bias)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(weight))
        reference.bias.copy_(torch.tensor(bias))
    for _ in range(3):
        X = rng.normal(loc=2.0, scale=3.0, size=(8, D))
        dY = rng.normal(size=(8, D))
        Y = layer(backend.asarray(X))
        dX = layer.backward(backend.asarray(dY))
        X_t = torch.tensor(X, requires_grad=True)
        reference.zero_grad()
        Y_t = reference(X_t)
        Y_t.backward(torch.tensor(dY))
        np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_numpy(layer.grads["weight"]), reference.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(to_numpy(layer.grads["bias"]), reference.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(to_numpy(layer.buffers["running_mean"]),
                                   reference.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(to_numpy(layer.buffers["running_var"]),
                                   reference.running_var.numpy(), rtol=1e-12)
    layer.eval()
    reference.eval()
    X = rng.normal(size=(4, D))
    dY = rng.normal(size=(4, D))
    Y = layer(backend.asarray(X))
    dX = layer.backward(backend.asarray(dY))
    X_t = torch.tensor(X, requires_grad=True)
    Y_t = reference(X_t)
    Y_t.backward(torch.tensor(dY))
    np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_1d_gradients_match_finite_differences(backend, rng, training):
    layer = BatchNorm1D(4)
    layer.to(backend, "float64")
    layer.params["weight"] = backend.asarray(rng.normal(size=4))
    layer.params["bias"] = backend.asarray(rng.normal(size=4))
    layer.buffers["running_mean"] = backend.asarray(rng.normal(size=4))
    layer.buffers["running_var"] = backend.asarray(rng.uniform(0.5, 2.0, size=4))
    layer.train(training)
    assert_layer_gradients(layer, rng.normal(size=(6, 4)), backend, rng)


def test_1d_float32_stays_float32_and_state_moves(backend, rng):
    layer = BatchNorm1D(3).to(backend)
    X = backend.asarray(rng.normal(size=(5, 3)), dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.xp.ones_like(Y))
    assert Y.dtype == dX.dtype == layer.grads["weight"].dtype == np.float32
    assert all(backend.is_array(v) and v.dtype == np.float32 for v in layer.buffers.values())


def test_1d_errors_name_the_layer():
    layer = BatchNorm1D(3).to("numpy")  # host inputs below, whatever NNFS_BACKEND says
    with pytest.raises(ValueError, match="BatchNorm1D: expected a 2-d input"):
        layer(np.zeros((2, 3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="BatchNorm1D: expected 3 features"):
        layer(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        layer(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="BatchNorm1D: input dtype"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1D(3, momentum=2)
    layer.eval()
    assert layer(np.ones((1, 3), dtype=np.float32)).shape == (1, 3)  # eval takes any batch


def test_1d_config():
    assert BatchNorm1D(7, 1e-3, 0.05).get_config() == {"n_features": 7, "epsilon": 1e-3, "momentum": 0.05}


@pytest.mark.parametrize("M", [0, 1, 255, 256, 257, 1000, 4096 + 17])
def test_row_dots_match_float64_sums_for_any_row_length_and_layout(backend, rng, M):
    from nnfs.layers.batchnorm import row_dots

    A, B = rng.normal(size=(3, 2 * M)), rng.normal(size=(3, 2 * M))
    expected = (A[:, ::2] * B[:, ::2]).sum(axis=1)
    # Rows contiguous (C order), columns contiguous (BatchNorm1D's rows), every other value.
    layouts = [(np.ascontiguousarray(A[:, ::2]), np.ascontiguousarray(B[:, ::2])),
               (np.asfortranarray(A[:, ::2]), np.asfortranarray(B[:, ::2])), (A[:, ::2], B[:, ::2])]
    for a, b in layouts:
        got = to_numpy(row_dots(backend.asarray(a), backend.asarray(b)))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_float32_statistics_and_gradients_stay_accurate_over_a_million_values_per_channel(backend, rng):
    """One running float32 sum over a whole channel drifts with its length (6e-5 of the result
    at a million values, where the output then differs from float64 by 3e-5); sums in blocks
    added pairwise keep about 1e-7, as PyTorch's float32 BatchNorm does."""
    X = (rng.normal(size=(256, 2, 64, 64)) * 2 + 3).astype(np.float32)
    dY = rng.normal(size=X.shape).astype(np.float32)
    results = {}
    for dtype in ("float32", "float64"):
        layer = BatchNorm2D(2).to(backend, dtype)
        Y = layer(backend.asarray(X, dtype=dtype))
        dX = layer.backward(backend.asarray(dY, dtype=dtype))
        results[dtype] = [to_numpy(a).astype(np.float64) for a in
                          (Y, dX, layer.grads["weight"], layer.buffers["running_var"])]
    for name, ours, exact in zip(["Y", "dX", "dgamma", "running_var"], results["float32"], results["float64"]):
        error = np.abs(ours - exact).max() / np.abs(exact).max()
        assert error < 1e-6, (name, error)
