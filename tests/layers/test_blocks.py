"""Blocks of a batch that fit the cache (nnfs.layers.blocks): where they are cut, and the layers
that work a block at a time (max pooling's backward, BatchNorm) giving exactly the results of
the whole batch at once, in both memory layouts, on every backend."""

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm1D, BatchNorm2D, MaxPool2D
from nnfs.layers.blocks import even_blocks, memory_blocks
from tests.gradcheck import assert_layer_gradients, distinct_values


def channel_major(backend, X):
    """``X`` ``(N, C, H, W)`` on ``backend``, lying in memory channel by channel (Conv2D's layout)."""
    xp = backend.xp
    return xp.ascontiguousarray(backend.asarray(X).transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def test_no_block_bytes_is_one_block(backend, monkeypatch):
    monkeypatch.setattr(backend, "block_bytes", None)
    X = backend.xp.zeros((64, 8, 32, 32), dtype="float32")
    assert memory_blocks(X, touched=3) == [(slice(None), slice(None))]


def test_a_batch_that_fits_is_one_block(backend, monkeypatch):
    monkeypatch.setattr(backend, "block_bytes", 1 << 20)
    X = backend.xp.zeros((4, 2, 8, 8), dtype="float32")  # 2 KB
    assert memory_blocks(X, touched=3) == [(slice(None), slice(None))]


@pytest.mark.parametrize("layout, axis", [("plain", 0), ("channel-major", 1)])
def test_blocks_cut_the_outer_axis_in_memory_exactly_once(backend, monkeypatch, layout, axis):
    X = backend.xp.zeros((6, 10, 4, 4), dtype="float64")
    if layout == "channel-major":
        X = channel_major(backend, to_numpy(X))
    per_index = X.nbytes // X.shape[axis]
    monkeypatch.setattr(backend, "block_bytes", 4 * per_index * 2)  # 4 indices at touched=2
    parts = memory_blocks(X, touched=2)
    cut = [part[axis] for part in parts]
    assert all(part[1 - axis] == slice(None) for part in parts)
    expected = {0: [(0, 3), (3, 6)], 1: [(0, 3), (3, 6), (6, 10)]}[axis]  # as few, as even as can be
    assert [(s.start, s.stop) for s in cut] == expected


@pytest.mark.parametrize("size, most", [(100, 40), (7, 1), (7, 7), (7, 100), (10, 3), (0, 5), (5, 0)])
def test_even_blocks(size, most):
    blocks = even_blocks(size, most)
    lengths = [s.stop - s.start for s in blocks]
    np.testing.assert_array_equal(np.concatenate([np.arange(size)[s] for s in blocks]), np.arange(size))
    assert max(lengths) <= max(1, most) or size == 0
    assert max(lengths) - min(lengths) <= 1
    assert len(blocks) == max(1, -(-size // max(1, most)))


def test_an_axis_can_be_asked_for_and_a_block_is_never_empty(backend, monkeypatch):
    monkeypatch.setattr(backend, "block_bytes", 1)  # smaller than one row: one row per block
    X = backend.xp.zeros((5, 7), dtype="float32").T  # (7, 5), its outer axis in memory is 1
    assert [part[0] for part in memory_blocks(X, axis=0)] == [slice(i, i + 1) for i in range(7)]
    assert [part[1] for part in memory_blocks(X)] == [slice(i, i + 1) for i in range(5)]


LAYERS = {
    "maxpool 2": lambda: MaxPool2D(2),
    "maxpool 3 stride 2 pad 1": lambda: MaxPool2D(3, stride=2, padding=1),
    "maxpool (2, 3) stride 1": lambda: MaxPool2D((2, 3), stride=1),
    "batchnorm2d": lambda: BatchNorm2D(5),
    "batchnorm2d eval": lambda: BatchNorm2D(5).eval(),
}


def forward_backward(layer, X, G):
    Y = layer(X)
    return to_numpy(Y), to_numpy(layer.backward(G)), {k: to_numpy(v) for k, v in layer.grads.items()}


@pytest.mark.parametrize("layout", ["plain", "channel-major"])
@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_layers_give_the_whole_batch_results_in_blocks(backend, rng, monkeypatch, make, layout):
    X_host = distinct_values(rng, (4, 5, 6, 7))
    X = channel_major(backend, X_host) if layout == "channel-major" else backend.asarray(X_host)
    whole, blocked = make().to(backend, "float64"), make().to(backend, "float64")
    G = backend.asarray(rng.normal(size=make().to(backend, "float64")(X).shape))
    monkeypatch.setattr(backend, "block_bytes", None)
    expected = forward_backward(whole, X, G)
    monkeypatch.setattr(backend, "block_bytes", 2 * X.nbytes // 5)  # a block of one or two channels
    got = forward_backward(blocked, X, G)
    for ours, theirs in zip(got[:2], expected[:2]):
        np.testing.assert_array_equal(ours, theirs)
    assert got[2].keys() == expected[2].keys()
    for name in expected[2]:
        np.testing.assert_array_equal(got[2][name], expected[2][name])
    for name in getattr(whole, "buffers", {}):
        np.testing.assert_array_equal(to_numpy(blocked.buffers[name]), to_numpy(whole.buffers[name]))


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_gradients_in_blocks_match_finite_differences(backend, rng, monkeypatch, make):
    monkeypatch.setattr(backend, "block_bytes", 1)  # one channel (or sample) per block
    assert_layer_gradients(make(), distinct_values(rng, (3, 5, 5, 6)), backend, rng)


def test_batchnorm1d_in_blocks_of_features(backend, rng, monkeypatch):
    X = backend.asarray(rng.normal(size=(6, 5)))
    G = backend.asarray(rng.normal(size=(6, 5)))
    whole, blocked = BatchNorm1D(5).to(backend, "float64"), BatchNorm1D(5).to(backend, "float64")
    monkeypatch.setattr(backend, "block_bytes", None)
    expected = forward_backward(whole, X, G)
    monkeypatch.setattr(backend, "block_bytes", 1)
    got = forward_backward(blocked, X, G)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert_layer_gradients(BatchNorm1D(5), rng.normal(size=(6, 5)), backend, rng)
