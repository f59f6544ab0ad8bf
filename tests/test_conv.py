"""Conv2D: gradients by finite differences, the forward pass against a naive loop, init, shapes."""

import itertools

import numpy as np
import pytest

from gradcheck import assert_layer_gradients
from nnfs.backend import to_numpy
from nnfs.layers import Conv2D

KERNELS = [3, (2, 3)]
STRIDES = [1, 2]
PADDINGS = [0, 1, 2]


def naive_conv(X, W, b, stride, padding):
    """Cross-correlation written as loops over output pixels (the textbook definition)."""
    (SH, SW), (PH, PW) = stride, padding
    N, C, H, Wd = X.shape
    F, _, KH, KW = W.shape
    Xp = np.zeros((N, C, H + 2 * PH, Wd + 2 * PW))
    Xp[:, :, PH:PH + H, PW:PW + Wd] = X
    OH, OW = (H + 2 * PH - KH) // SH + 1, (Wd + 2 * PW - KW) // SW + 1
    Y = np.zeros((N, F, OH, OW))
    for n, f, y, x in itertools.product(range(N), range(F), range(OH), range(OW)):
        patch = Xp[n, :, y * SH:y * SH + KH, x * SW:x * SW + KW]
        Y[n, f, y, x] = (patch * W[f]).sum() + b[f]
    return Y


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_gradients_match_finite_differences(backend, rng, kernel, stride, padding):
    layer = Conv2D(2, 3, kernel, stride=stride, padding=padding)
    layer.params["bias"] = layer.backend.asarray(rng.normal(size=3))
    assert_layer_gradients(layer, rng.normal(size=(2, 2, 7, 6)), backend, rng)


@pytest.mark.parametrize("kernel, stride, padding", [((3, 1), (2, 1), (0, 2)), ((2, 1), 3, (1, 0))])
def test_gradients_with_rectangular_stride_and_padding(backend, rng, kernel, stride, padding):
    # The second case has a stride larger than the kernel: some rows are never read.
    layer = Conv2D(3, 2, kernel, stride=stride, padding=padding)
    assert_layer_gradients(layer, rng.normal(size=(2, 3, 8, 5)), backend, rng)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_forward_matches_naive_loop(backend, rng, kernel, stride, padding):
    # Runs on the installed NumPy (2.x here): the original crashed on NumPy 2 (pitfall 1).
    layer = Conv2D(3, 4, kernel, stride=stride, padding=padding).to(backend, "float64")
    layer.params["bias"] = backend.asarray(rng.normal(size=4))
    X = rng.normal(size=(2, 3, 9, 8))
    Y = to_numpy(layer(backend.asarray(X)))
    expected = naive_conv(X, to_numpy(layer.params["weight"]), to_numpy(layer.params["bias"]),
                          layer.stride, layer.padding)
    assert Y.shape == expected.shape == layer.output_shape(X.shape)
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride", [(3, 1), ((2, 3), 2), (1, 1), ((3, 2), (2, 1))])
def test_padding_zero_gives_full_input_gradient(backend, rng, kernel, stride):
    # Pitfall 2: x[p:-p] with p = 0 made the input gradient empty.
    layer = Conv2D(2, 3, kernel, stride=stride, padding=0).to(backend)
    X = backend.asarray(rng.normal(size=(2, 2, 7, 6)), dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.asarray(rng.normal(size=Y.shape), dtype="float32"))
    assert dX.shape == X.shape
    assert np.abs(to_numpy(dX)).sum() > 0


def test_output_shape_formula():
    layer = Conv2D(1, 5, (3, 2), stride=(2, 3), padding=(1, 2))
    # OH = (11 + 2 - 3) // 2 + 1 = 6, OW = (7 + 4 - 2) // 3 + 1 = 4
    assert layer.output_shape((4, 1, 11, 7)) == (4, 5, 6, 4)
    assert layer(layer.backend.asarray(np.zeros((4, 1, 11, 7)), dtype="float32")).shape == (4, 5, 6, 4)


def test_he_init_and_zero_bias():
    # Pitfall 13: the original used std 2/sqrt(fan_in) and a random bias.
    layer = Conv2D(16, 64, (3, 5), dtype="float64")
    weight = to_numpy(layer.params["weight"])
    fan_in = 16 * 3 * 5
    assert weight.shape == (64, 16, 3, 5)
    assert abs(weight.std() / np.sqrt(2.0 / fan_in) - 1) < 0.05
    assert abs(weight.mean()) < 0.01
    np.testing.assert_array_equal(to_numpy(layer.params["bias"]), np.zeros(64))


def test_the_number_of_array_operations_does_not_grow_with_the_images():
    # Pitfall 3: the original looped in Python over every output pixel (about 41 s for
    # one batch of 100 RGB 52x52 images). im2col loops over the KH x KW kernel offsets
    # only, so a forward and backward pass costs the same number of array operations
    # whatever the batch and image size. Counted on the strict backend, which counts
    # every operation on its arrays.
    from nnfs.backend import get_backend
    from nnfs.backend.strict import operation_count
    strict = get_backend("strict")

    def operations(n, size):
        layer = Conv2D(3, 4, 3, stride=1, padding=1).to(strict)
        X = strict.asarray(np.ones((n, 3, size, size)), dtype="float32")
        start = operation_count()
        Y = layer(X)
        layer.backward(strict.xp.ones_like(Y))
        return operation_count() - start

    small, large = operations(2, 6), operations(8, 26)
    assert small == large
    assert 9 <= small < 200  # a few per kernel offset (9 of them), not per pixel
