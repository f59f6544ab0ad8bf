"""Conv2D: gradients by finite differences, the forward pass against a naive loop and PyTorch,
init, shapes, errors, and the buffers its fast path reuses."""

import itertools
import re

import numpy as np
import pytest

import nnfs
from nnfs.backend import to_numpy
from nnfs.layers import Conv2D
from tests.gradcheck import assert_layer_gradients
from tests.layercheck import (
    assert_leaves_inputs_alone, assert_outputs_survive_the_next_step, compare_with_torch)

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


@pytest.mark.parametrize("in_channels, out_channels, kernel, stride, padding, shape", [
    (3, 2, (3, 1), (2, 1), (0, 2), (2, 3, 8, 5)),
    (3, 2, (2, 1), 3, (1, 0), (2, 3, 8, 5)),    # a stride larger than the kernel: rows never read
    (3, 4, 3, 1, 1, (2, 3, 5, 6)),
    (2, 3, (2, 3), (2, 1), 0, (2, 2, 5, 5)),
    (2, 2, 3, 2, (0, 2), (3, 2, 6, 5)),
])
def test_gradients_with_rectangular_stride_and_padding(backend, rng, in_channels, out_channels, kernel,
                                                       stride, padding, shape):
    layer = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding)
    assert_layer_gradients(layer, rng.normal(size=shape), backend, rng)


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


@pytest.mark.parametrize("kernel, stride, padding", [
    (3, 1, 0), (3, 2, 1), ((2, 3), 1, 2), ((3, 2), (2, 1), (1, 0)), (1, 1, 0), (5, 2, 2)])
def test_matches_pytorch(backend, rng, kernel, stride, padding, torch):
    ours = Conv2D(3, 4, kernel, stride=stride, padding=padding)
    ours.params["bias"] = ours.backend.asarray(rng.normal(size=4))
    theirs = torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding).double()
    compare_with_torch(ours, theirs, rng.normal(size=(2, 3, 9, 8)), backend, rng, ("weight", "bias"))


# -- the fast path: reused buffers and a channel-major output (see nnfs.layers) ----------------------

def test_leaves_its_input_and_upstream_gradient_alone(backend, rng):
    assert_leaves_inputs_alone(Conv2D(3, 4, 3, padding=1), backend, rng)


def test_outputs_survive_the_next_forward_and_backward(backend, rng):
    assert_outputs_survive_the_next_step(Conv2D(3, 4, 3, padding=1), backend, rng)


@pytest.mark.parametrize("block_samples", [1, 2, 4])
def test_input_gradient_in_blocks_of_samples(backend, rng, monkeypatch, block_samples):
    """The stride-1 input gradient is made a block of samples at a time (backend.block_bytes,
    None on a device: one block); blocks of 1, 2 (and a smaller last one) and 4 of a batch
    of 5 give the whole batch's gradient, twice in a row (the reused buffers), and pass the
    finite-difference check."""
    C, C_out, KH, KW, H, W, P = 2, 3, 3, 2, 5, 4, 1
    per_sample = C * KH * KW * H * (W + 2 * P) * 8  # the columns of one sample, float64
    layer = Conv2D(C, C_out, (KH, KW), padding=P, dtype="float64").to(backend)
    X = backend.asarray(rng.normal(size=(5, C, H, W)))
    dY = backend.asarray(rng.normal(size=(5, C_out, H, W + 2 * P - KW + 1)))
    monkeypatch.setattr(backend, "block_bytes", None)
    layer(X)
    whole = to_numpy(layer.backward(dY))
    monkeypatch.setattr(backend, "block_bytes", block_samples * per_sample + per_sample // 2)
    for _ in range(2):
        layer(X)
        np.testing.assert_allclose(to_numpy(layer.backward(dY)), whole, rtol=1e-12, atol=1e-12)
    assert_layer_gradients(layer, rng.normal(size=(3, C, H, W)), backend, rng)


@pytest.mark.parametrize("block_bytes", [None, 1, "default"])
def test_a_new_width_with_the_same_workspace_size_gets_clean_zero_columns(backend, rng, monkeypatch,
                                                                           block_bytes):
    """The widened rows' workspace keeps zeros in its pad columns for one padded width: a batch
    of another width whose workspace has as many elements (4x6x6 and 4x8x4 maps here) must not
    reuse it, or the last batch's values in those columns reach the input gradient."""
    if block_bytes != "default":
        monkeypatch.setattr(backend, "block_bytes", block_bytes)
    nnfs.seed(0)
    layer = Conv2D(2, 3, 3, padding=1, dtype="float64").to(backend)
    for shape in ((4, 2, 6, 6), (4, 2, 8, 4), (4, 2, 6, 6)):
        X = backend.asarray(rng.normal(size=shape))
        dY = backend.asarray(rng.normal(size=(4, 3) + shape[2:]))
        layer(X)
        got = to_numpy(layer.backward(dY))
        layer.cache = {}  # no buffers kept: the plain computation
        layer(X)
        np.testing.assert_allclose(got, to_numpy(layer.backward(dY)), rtol=1e-12, atol=1e-12)


def test_float32_input_gradient_in_blocks_is_the_whole_batch_one_to_rounding(backend, rng, monkeypatch):
    # The products of the blocks are columns of the whole product, which the BLAS may round
    # another way in float32 (not in float64): equal to rounding, not bit for bit.
    layer = Conv2D(4, 5, 3, padding=1).to(backend)
    X = backend.asarray(rng.normal(size=(6, 4, 7, 7)), dtype="float32")
    dY = backend.asarray(rng.normal(size=(6, 5, 7, 7)), dtype="float32")
    monkeypatch.setattr(backend, "block_bytes", None)
    layer(X)
    whole = to_numpy(layer.backward(dY))
    monkeypatch.setattr(backend, "block_bytes", 1)  # one sample a block
    layer(X)
    got = to_numpy(layer.backward(dY))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5)


def test_buffers_follow_the_batch_size(backend, rng):
    """Conv2D reuses its column buffers between steps; a new batch size must get new ones."""
    nnfs.seed(0)
    layer = Conv2D(2, 3, 3, padding=1).to(backend)
    nnfs.seed(0)
    fresh = Conv2D(2, 3, 3, padding=1).to(backend)
    for batch in (4, 3, 4):
        X = backend.asarray(rng.normal(size=(batch, 2, 5, 5)), dtype="float32")
        dY = backend.asarray(rng.normal(size=(batch, 3, 5, 5)), dtype="float32")
        layer(X)
        dX = layer.backward(dY)
        fresh.cache = {}  # no buffers kept: the plain computation
        fresh(X)
        np.testing.assert_allclose(to_numpy(dX), to_numpy(fresh.backward(dY)), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(to_numpy(layer.grads["weight"]), to_numpy(fresh.grads["weight"]),
                                   rtol=1e-6, atol=1e-6)


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 3, 8, 8)])
def test_wrong_rank(shape):
    with pytest.raises(ValueError, match=rf"Conv2D.*{re.escape(str(shape))}"):
        Conv2D(3, 2)(np.zeros(shape, np.float32))


def test_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2D: expected 3 .*\(2, 1, 8, 8\)"):
        Conv2D(3, 2)(np.zeros((2, 1, 8, 8), np.float32))


@pytest.mark.parametrize("layer", [Conv2D(1, 1, 5), Conv2D(1, 1, (2, 6), padding=(0, 1))])
def test_input_smaller_than_the_kernel(layer):
    with pytest.raises(ValueError, match="Conv2D"):
        layer(np.zeros((1, 1, 4, 3), np.float32))


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2D(0, 2), "in_channels"),
    (lambda: Conv2D(1, 2, kernel_size=0), "kernel_size"),
    (lambda: Conv2D(1, 2, stride=(1, 0)), "stride"),
    (lambda: Conv2D(1, 2, padding=-1), "padding"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_kernel_type():
    with pytest.raises(TypeError, match="Conv2D: kernel_size"):
        Conv2D(1, 2, kernel_size=2.5)


def test_numpy_integers_as_sizes_give_the_same_layer(rng):
    sizes = np.array([3, 4, 3, 2, 1])  # e.g. read from an array of settings
    layer = Conv2D(sizes[0], sizes[1], kernel_size=(sizes[2], np.int32(2)), stride=np.int64(1),
                   padding=sizes[4])
    assert layer.get_config() == Conv2D(3, 4, (3, 2), 1, 1).get_config()
    assert layer(layer.backend.asarray(rng.normal(size=(2, 3, 5, 5)), dtype="float32")).shape == (2, 4, 5, 6)
