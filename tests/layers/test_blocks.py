"""Blocks of a batch that fit the cache (nnfs.layers.blocks): where they are cut, and the layers
that work a block at a time (max pooling's backward, BatchNorm) giving exactly the results of
the whole batch at once, in both memory layouts, on every backend."""

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm1D, BatchNorm2D, MaxPool2D
from nnfs.layers.batchnorm import row_blocks
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


def test_a_block_is_never_empty(backend, monkeypatch):
    monkeypatch.setattr(backend, "block_bytes", 1)  # smaller than one row: one row per block
    X = backend.xp.zeros((5, 7), dtype="float32").T  # (7, 5), its outer axis in memory is 1
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


def test_batchnorm1d_rows_are_never_cut(backend, rng, monkeypatch):
    """BatchNorm1D's rows are X.T, strided in memory: cutting them would make every pass
    strided, so they are one block whatever the block size, and the results are the same."""
    X = backend.asarray(rng.normal(size=(16, 5)))
    G = backend.asarray(rng.normal(size=(16, 5)))
    monkeypatch.setattr(backend, "block_bytes", 1)
    assert row_blocks(X.T, 2) == [slice(None)]
    whole, blocked = BatchNorm1D(5).to(backend, "float64"), BatchNorm1D(5).to(backend, "float64")
    got = forward_backward(blocked, X, G)
    monkeypatch.setattr(backend, "block_bytes", None)
    expected = forward_backward(whole, X, G)
    for ours, theirs in zip(got[:2], expected[:2]):
        np.testing.assert_array_equal(ours, theirs)
    monkeypatch.setattr(backend, "block_bytes", 1)
    assert_layer_gradients(BatchNorm1D(5), rng.normal(size=(6, 5)), backend, rng)


def test_channel_rows_are_cut_and_a_single_image_into_channels(backend, monkeypatch):
    monkeypatch.setattr(backend, "block_bytes", 1)
    rows = backend.xp.zeros((3, 40), dtype="float32")
    assert row_blocks(rows, 2) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    image = backend.xp.zeros((1, 4, 8, 8), dtype="float32")  # N = 1: its channels are the blocks
    assert [part[1] for part in memory_blocks(image)] == [slice(i, i + 1) for i in range(4)]


@pytest.mark.parametrize("name", ["strict", "cupy"])
def test_device_backends_work_the_whole_batch_at_once(name):
    from nnfs.backend.cupy_backend import CupyBackend
    from nnfs.backend.strict import StrictBackend
    assert {"strict": StrictBackend, "cupy": CupyBackend}[name].block_bytes is None


@pytest.mark.parametrize("make", [lambda: MaxPool2D(2), lambda: MaxPool2D(3, stride=2, padding=1),
                                  lambda: BatchNorm2D(3)], ids=["maxpool", "maxpool padded", "batchnorm2d"])
def test_on_a_device_the_operations_do_not_grow_with_the_batch(make):
    # On a device every block is kernel launches: the strict stand-in counts its operations,
    # which must be the same for a small batch and one far above the CPU's block size.
    from nnfs.backend import get_backend
    from nnfs.backend.strict import operation_count
    strict = get_backend("strict")

    def operations(n, size):
        layer = make().to(strict)
        X = strict.asarray(np.random.default_rng(0).normal(size=(n, 3, size, size)), dtype="float32")
        start = operation_count()
        Y = layer(X)
        layer.backward(strict.xp.ones_like(Y))
        return operation_count() - start

    # Both with rows of BatchNorm's row_dots longer than a block of 256 and a remainder.
    assert operations(2, 12) == operations(63, 98)  # 7 MB of input: several CPU blocks


def test_a_sharded_net_in_blocks_trains_as_one_thread_without_them(monkeypatch):
    """Two threads, each running its shard's layers a block at a time, give the results of one
    thread on the whole batch (to rounding: the shards' sums are added in another order)."""
    import nnfs
    from nnfs import parallel
    from nnfs.app.models import reference_cnn
    from nnfs.backend import get_backend
    numpy_backend = get_backend("numpy")
    monkeypatch.setattr(parallel, "MIN_SHARD_SAMPLES", 1)
    monkeypatch.setattr(parallel, "MIN_SHARD_ELEMENTS", 1)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2, 12, 12)), rng.integers(0, 4, size=8)

    def trained(threads, block_bytes):
        monkeypatch.setattr(numpy_backend, "block_bytes", block_bytes)
        nnfs.seed(0)
        net = reference_cnn(2, (12, 12), 4, dtype="float64")
        net.to(numpy_backend)
        with parallel.using_threads(threads):
            for _ in range(2):
                net.loss(net(X), y)
                net.backward()
                net.update_weights(0.1)
        assert net._shards.active == (threads > 1)
        return net.state_dict()

    expected, got = trained(1, None), trained(2, 1000)
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)
