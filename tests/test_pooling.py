"""MaxPool2D: gradients, ties, the floor rule for odd sizes, -inf padding, a naive reference."""

import itertools

import numpy as np
import pytest

from gradcheck import assert_layer_gradients, distinct_values
from nnfs.backend import to_numpy
from nnfs.layers import MaxPool2D

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


@pytest.mark.parametrize("kernel, stride, padding, size", CONFIGS)
def test_gradients_match_finite_differences(backend, rng, kernel, stride, padding, size):
    layer = MaxPool2D(kernel, stride, padding)
    # Distinct values 0.01 apart: no ties, so the maximum is differentiable at X.
    assert_layer_gradients(layer, distinct_values(rng, (2, 3) + size), backend, rng)


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
    from nnfs.layers import AvgPool2D
    for layer in (MaxPool2D(2), AvgPool2D(2)):
        X = backend.asarray(rng.normal(size=(2, 1, 4, 4)))
        Y = layer(X)
        layer.local_grad(backend.asarray(rng.normal(size=(1, 1, 6, 6))))
        assert layer.backward(backend.xp.ones_like(Y)).shape == (2, 1, 4, 4)
