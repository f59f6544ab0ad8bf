"""Pooling: MaxPool2D (gradients, ties, the floor rule for odd sizes, -inf padding, a naive
reference, PyTorch), AvgPool2D and GlobalAvgPool2D (PyTorch, finite differences), errors."""

import itertools
import re

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from tests.gradcheck import assert_layer_gradients, distinct_values
from tests.layercheck import (
    assert_leaves_inputs_alone, assert_outputs_survive_the_next_step, compare_with_torch)

# (kernel, stride, padding, (H, W)): even and odd sizes, overlapping windows, padding, rectangles.
CONFIGS = [
    (2, None, 0, (6, 6)),
    (2, None, 0, (7, 5)),
    (3, None, 0, (8, 7)),
    (3, 2, 0, (7, 9)),
    (3, 1, 1, (5, 6)),
    (2, 2, 1, (5, 5)),
    (2, 1, 0, (4, 5)),
    (2, 3, 0, (8, 7)),
    ((2, 3), (1, 2), (1, 1), (6, 7)),
    ((3, 2), (2, 1), (1, 0), (7, 4)),
]


def naive_maxpool(X, kernel, stride, padding):
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    N, C, H, W = X.shape
    Xp = np.full((N, C, H + 2 * PH, W + 2 * PW), -np.inf)
    Xp[:, :, PH:PH + H, PW:PW + W] = X
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    Y = np.empty((N, C, OH, OW))
    for n, c, y, x in itertools.product(range(N), range(C), range(OH), range(OW)):
        Y[n, c, y, x] = Xp[n, c, y * SH:y * SH + KH, x * SW:x * SW + KW].max()
    return Y


def _run(layer, backend, X, dY=None):
    X = backend.asarray(X, dtype="float64")
    Y = layer(X)
    if dY is None:
        dY = np.ones(Y.shape)
    dX = layer.backward(backend.asarray(dY, dtype="float64"))
    return to_numpy(Y), to_numpy(dX)


# Whole input shapes: other batch and channel counts than CONFIGS's (2, 3).
GRADIENT_CASES = [(k, s, p, (2, 3) + size) for k, s, p, size in CONFIGS] + [
    (2, None, 0, (2, 3, 4, 6)),
    (2, None, 0, (2, 2, 5, 7)),       # floor rule: last row/column dropped
    (3, 2, 1, (2, 2, 6, 5)),          # overlapping windows, -inf padding
    ((2, 3), (1, 2), 0, (1, 2, 4, 7)),
]


@pytest.mark.parametrize("kernel, stride, padding, shape", GRADIENT_CASES)
def test_gradients_match_finite_differences(backend, rng, kernel, stride, padding, shape):
    layer = MaxPool2D(kernel, stride, padding)
    # Distinct values 0.01 apart: no ties, so the maximum is differentiable at X.
    assert_layer_gradients(layer, distinct_values(rng, shape), backend, rng)


@pytest.mark.parametrize("kernel, stride, padding, size", CONFIGS)
def test_forward_matches_naive_loop(backend, rng, kernel, stride, padding, size):
    layer = MaxPool2D(kernel, stride, padding)
    # All negative: a padding of zeros instead of -inf would win windows at the border.
    X = -np.abs(rng.normal(size=(2, 3) + size)) - 0.1
    Y, _ = _run(layer, backend, X)
    expected = naive_maxpool(X, layer.kernel_size, layer.stride, layer.padding)
    assert Y.shape == expected.shape == layer.output_shape(X.shape)
    np.testing.assert_array_equal(Y, expected)


@pytest.mark.parametrize("kernel, stride, padding, size", CONFIGS)
def test_ties_give_exactly_one_winner_per_window(backend, rng, kernel, stride, padding, size):
    # Pitfall 6: every tied maximum used to receive the full gradient.
    layer = MaxPool2D(kernel, stride, padding)
    X = np.zeros((2, 3) + size)
    dY = rng.uniform(0.5, 1.5, size=layer.output_shape(X.shape))
    Y, dX = _run(layer, backend, X, dY)
    np.testing.assert_array_equal(Y, 0.0)
    # Each window passes on exactly its own upstream value, so the totals agree.
    np.testing.assert_allclose(dX.sum(axis=(2, 3)), dY.sum(axis=(2, 3)), rtol=1e-12)
    _, ones = _run(layer, backend, X)
    assert ones.sum() == np.prod(Y.shape)


def test_ties_non_overlapping_mark_one_element_per_window(backend):
    layer = MaxPool2D(2)
    X = np.ones((1, 1, 4, 4))
    _, dX = _run(layer, backend, X)
    windows = dX.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)
    np.testing.assert_array_equal(windows.sum(axis=1), np.ones(4))
    assert set(np.unique(dX)) == {0.0, 1.0}


@pytest.mark.parametrize("size, expected", [((7, 5), (3, 2)), ((5, 9), (2, 4)), ((3, 3), (1, 1))])
def test_odd_sizes_use_the_floor_rule(backend, rng, size, expected):
    # Pitfall 7: sizes not divisible by the kernel crashed.
    layer = MaxPool2D(2)
    X = distinct_values(rng, (2, 3) + size)
    Y, dX = _run(layer, backend, X)
    assert Y.shape == (2, 3) + expected
    assert dX.shape == X.shape
    OH, OW = expected
    # Rows and columns left out of every window get no gradient.
    assert np.all(dX[:, :, 2 * OH:, :] == 0) and np.all(dX[:, :, :, 2 * OW:] == 0)
    assert dX.sum() == np.prod(Y.shape)


def test_padding_never_wins_and_gets_no_gradient(backend):
    layer = MaxPool2D(3, stride=1, padding=1)
    X = -np.arange(1.0, 26.0).reshape(1, 1, 5, 5)
    Y, dX = _run(layer, backend, X)
    assert np.all(Y < 0)
    assert dX.shape == X.shape
    assert dX.sum() == Y.size


def test_padding_larger_than_half_the_kernel_is_refused():
    with pytest.raises(ValueError, match="MaxPool2D"):
        MaxPool2D(2, padding=2)


def test_stride_defaults_to_kernel():
    assert MaxPool2D((2, 3)).stride == (2, 3)
    assert MaxPool2D(3, stride=1).stride == (1, 1)


def test_large_window_routes_the_gradient_to_the_maximum(backend, rng):
    # 12 x 12 = 144 kernel offsets: more than a small integer type can index.
    layer = MaxPool2D(12)
    X = distinct_values(rng, (2, 3, 12, 12))
    Y, dX = _run(layer, backend, X)
    np.testing.assert_array_equal(Y[:, :, 0, 0], X.max(axis=(2, 3)))
    np.testing.assert_array_equal(dX, (X == X.max(axis=(2, 3), keepdims=True)).astype(float))


def test_local_grad_is_the_mask_of_winners(backend, rng):
    X = distinct_values(rng, (1, 2, 4, 4))
    mask = to_numpy(MaxPool2D(2).local_grad(backend.asarray(X))["X"])
    windows = X.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(mask, (X == np.repeat(np.repeat(windows, 2, axis=2), 2, axis=3)))


def test_local_grad_leaves_a_pending_backward_intact(backend, rng):
    for layer in (MaxPool2D(2), AvgPool2D(2)):
        X = backend.asarray(rng.normal(size=(2, 1, 4, 4)))
        Y = layer(X)
        layer.local_grad(backend.asarray(rng.normal(size=(1, 1, 6, 6))))
        assert layer.backward(backend.xp.ones_like(Y)).shape == (2, 1, 4, 4)


def test_max_pool_gives_a_tied_window_gradient_to_its_first_element(backend):
    X = backend.asarray(np.zeros((1, 1, 4, 4)), dtype="float32")  # every window a 4-way tie
    layer = MaxPool2D(2)
    layer(X)
    dY = backend.asarray(np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))
    dX = to_numpy(layer.backward(dY))
    expected = np.zeros((4, 4), np.float32)
    expected[::2, ::2] = [[1, 2], [3, 4]]  # the first element of each window, row-major
    np.testing.assert_array_equal(dX[0, 0], expected)


@pytest.mark.parametrize("kernel, stride, padding, size", [
    (2, None, 0, (8, 8)), (2, None, 0, (7, 9)), (3, 2, 1, (9, 7)), (3, 1, 1, (5, 6)),
    ((2, 3), (1, 2), (1, 1), (6, 7)), (3, None, 0, (10, 11))])
def test_max_pool_matches_pytorch(backend, rng, kernel, stride, padding, size, torch):
    theirs = torch.nn.MaxPool2d(kernel, stride=stride, padding=padding)
    X = distinct_values(rng, (2, 3) + size) - 1.0  # no ties
    compare_with_torch(MaxPool2D(kernel, stride, padding), theirs, X, backend, rng)


def test_max_pool_leaves_its_input_and_upstream_gradient_alone(backend, rng):
    assert_leaves_inputs_alone(MaxPool2D(2), backend, rng)


def test_max_pool_outputs_survive_the_next_forward_and_backward(backend, rng):
    assert_outputs_survive_the_next_step(MaxPool2D(2), backend, rng)


def test_max_pool_takes_a_numpy_integer_kernel(backend, rng):
    layer = MaxPool2D(np.int64(2))
    assert layer.get_config() == {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    assert all(type(v) is int for pair in layer.get_config().values() for v in pair)
    assert layer(backend.asarray(rng.normal(size=(1, 2, 4, 4)), dtype="float32")).shape == (1, 2, 2, 2)


def test_max_pool_errors():
    with pytest.raises(ValueError, match=rf"MaxPool2D.*{re.escape(str((4, 4)))}"):
        MaxPool2D(2)(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="MaxPool2D"):
        MaxPool2D(5)(np.zeros((1, 1, 4, 3), np.float32))
    with pytest.raises(ValueError, match="kernel_size"):
        MaxPool2D(0)


# -- average pooling ---------------------------------------------------------------------------------

POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=2, padding=(1, 0)),
]
IDS = ["k2", "k3s1-overlap", "rect", "k3s2p1", "rect-pad"]


@pytest.mark.parametrize("kwargs", POOLS, ids=IDS)
def test_avgpool_matches_pytorch(backend, rng, kwargs, torch):
    X = rng.normal(size=(2, 3, 7, 6))  # odd sizes: the floor rule drops a row or a column
    compare_with_torch(AvgPool2D(**kwargs), torch.nn.AvgPool2d(**kwargs), X, backend, rng,
                       rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs", POOLS, ids=IDS)
def test_avgpool_gradient_check(backend, rng, kwargs):
    assert_layer_gradients(AvgPool2D(**kwargs), rng.normal(size=(2, 2, 5, 6)), backend, rng, tolerance=1e-7)


def test_global_avgpool_matches_pytorch(backend, rng, torch):
    assert GlobalAvgPool2D()(backend.asarray(rng.normal(size=(3, 4, 5, 2)))).shape == (3, 4)
    theirs = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    compare_with_torch(GlobalAvgPool2D(), theirs, rng.normal(size=(3, 4, 5, 2)), backend, rng,
                       rtol=1e-12, atol=0)


def test_global_avgpool_gradient_check(backend, rng):
    assert_layer_gradients(GlobalAvgPool2D(), rng.normal(size=(2, 3, 3, 4)), backend, rng, tolerance=1e-7)


@pytest.mark.parametrize("layer", [AvgPool2D(3, stride=2, padding=1), GlobalAvgPool2D()],
                         ids=["avg", "global"])
def test_float32_stays_float32(backend, rng, layer):
    X = backend.asarray(rng.normal(size=(2, 3, 6, 6)), dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.xp.ones_like(Y))
    assert Y.dtype == np.float32 and dX.dtype == np.float32 and dX.shape == X.shape


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="AvgPool2D: padding"):
        AvgPool2D(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2D: input of spatial size"):
        AvgPool2D(4)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="AvgPool2D: expected a 4-d input"):
        AvgPool2D(2)(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="GlobalAvgPool2D: expected a 4-d input"):
        GlobalAvgPool2D()(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="AvgPool2D: kernel_size"):
        AvgPool2D(2.5)


def test_config():
    assert AvgPool2D(3, 2, 1).get_config() == {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1)}
    assert AvgPool2D((2, 3)).get_config()["stride"] == (2, 3)
    assert GlobalAvgPool2D().get_config() == {}
