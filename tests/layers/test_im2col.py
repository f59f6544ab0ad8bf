"""im2col against a naive loop, and col2im as its adjoint."""

import itertools

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers.im2col import col2im, im2col, output_size

CASES = [  # kernel, stride, padding, (H, W)
    ((3, 3), (1, 1), (0, 0), (5, 6)),
    ((3, 3), (2, 2), (1, 1), (7, 7)),
    ((2, 3), (1, 2), (2, 0), (6, 5)),
    ((1, 1), (1, 1), (0, 0), (3, 4)),
    ((3, 2), (3, 1), (1, 2), (8, 5)),
    ((4, 4), (2, 2), (2, 2), (4, 4)),
]


def naive_im2col(X, kernel, stride, padding):
    """``cols[c, i, j, n, y, x] = X_padded[n, c, y*SH + i, x*SW + j]``, one element at a time."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    N, C, H, W = X.shape
    OH, OW = output_size((H, W), (KH, KW), (SH, SW), (PH, PW))
    cols = np.zeros((C, KH, KW, N, OH, OW))
    for c, i, j, n, y, x in itertools.product(
            range(C), range(KH), range(KW), range(N), range(OH), range(OW)):
        row, col = y * SH + i - PH, x * SW + j - PW
        if 0 <= row < H and 0 <= col < W:
            cols[c, i, j, n, y, x] = X[n, c, row, col]
    return cols


@pytest.mark.parametrize("kernel, stride, padding, size", CASES)
def test_im2col_matches_naive_loop(backend, rng, kernel, stride, padding, size):
    X = rng.normal(size=(2, 3) + size)
    cols = to_numpy(im2col(backend.asarray(X), kernel, stride, padding))
    np.testing.assert_array_equal(cols, naive_im2col(X, kernel, stride, padding))


@pytest.mark.parametrize("kernel, stride, padding, size", CASES)
def test_col2im_is_the_adjoint_of_im2col(backend, rng, kernel, stride, padding, size):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im is exactly the backward pass.
    X = rng.normal(size=(2, 3) + size)
    cols_shape = naive_im2col(X, kernel, stride, padding).shape
    C = rng.normal(size=cols_shape)
    left = (to_numpy(im2col(backend.asarray(X), kernel, stride, padding)) * C).sum()
    folded = to_numpy(col2im(backend.asarray(C), X.shape, kernel, stride, padding))
    assert folded.shape == X.shape
    np.testing.assert_allclose(left, (X * folded).sum(), rtol=1e-12)


def test_col2im_sums_overlapping_patches(backend):
    # With a 2x2 kernel and stride 1 on 3x3 images, the centre is in all four patches.
    ones = np.ones((1, 2, 2, 1, 2, 2))
    folded = to_numpy(col2im(backend.asarray(ones), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0)))
    np.testing.assert_array_equal(folded[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keep_the_dtype(backend, rng, dtype):
    X = backend.asarray(rng.normal(size=(1, 2, 5, 5)), dtype=dtype)
    cols = im2col(X, (3, 3), (1, 1), (1, 1))
    assert cols.dtype == dtype
    assert col2im(cols, X.shape, (3, 3), (1, 1), (1, 1)).dtype == dtype
