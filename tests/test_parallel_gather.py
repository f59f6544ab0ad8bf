"""The shards' meeting point that hands every shard's values around (batch_gather), and the
BatchNorm statistics combined through it: each shard's mean and spread, merged exactly."""

import numpy as np
import pytest

from nnfs import parallel
from nnfs.layers import BatchNorm1D, BatchNorm2D, Flatten, Linear
from nnfs.layers.base import Layer
from nnfs.losses import MeanSquareLoss
from nnfs.net import Net


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_SHARD_SAMPLES", 1)
    monkeypatch.setattr(parallel, "MIN_SHARD_ELEMENTS", 1)


class Gatherer(Layer):
    """Records what batch_gather gives each shard: (first row, rows, the values of all shards)."""

    log = []  # on the class: the replicas' copies of the layer write to the same list

    def forward(self, X):
        first, _ = parallel.shard_rows(X.shape[0])
        rows, sums = parallel.batch_gather(X.shape[0], X.sum(axis=0))
        alone = parallel.batch_gather(first)
        Gatherer.log.append((first, X.shape[0], rows, [s.copy() for s in sums], alone))
        return X


def test_outside_a_step_each_list_holds_the_value_alone():
    value = np.arange(3.0)
    rows, values = parallel.batch_gather(5, value)
    assert rows == [5] and len(values) == 1 and values[0] is value
    assert parallel.batch_gather(7) == [7]


@pytest.mark.parametrize("threads", [2, 3])
def test_every_shard_gets_every_shards_values_in_shard_order(small_shards, threads):
    Gatherer.log = []
    X = np.arange(30.0).reshape(10, 3)
    net = Net([Gatherer(), Linear(3, 2)], MeanSquareLoss(), backend="numpy", dtype="float64")
    with parallel.using_threads(threads):
        net(X)
    assert net._shards.active and len(Gatherer.log) == threads
    bounds = sorted((first, first + rows) for first, rows, *_ in Gatherer.log)
    for first, rows, counts, sums, alone in Gatherer.log:
        assert counts == [stop - start for start, stop in bounds]
        for (start, stop), total in zip(bounds, sums):
            np.testing.assert_array_equal(total, X[start:stop].sum(axis=0))
        assert alone == [start for start, _ in bounds]  # a second meeting in the same step


def _train(net, X, threads, steps=3):
    with parallel.using_threads(threads):
        for _ in range(steps):
            out = net(X)
            net.loss(out, np.zeros_like(out))
            net.backward()
            net.update_weights(0.01)
    return out, net.state_dict()


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_shards_with_far_apart_means_give_the_batchs_statistics(small_shards, dtype, rtol):
    """Half the batch around +500, half around -500: each shard's own mean is far from the
    batch's, which the combination must bridge without cancellation."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3, 4, 4))
    X[:4] += 500.0
    X[4:] -= 500.0

    def make():
        net = Net([BatchNorm2D(3, momentum=0.5), Flatten()], MeanSquareLoss(), backend="numpy",
                  dtype=dtype)
        net.layers[0].params["weight"][...] = [0.5, 1.0, 2.0]
        return net

    single, sharded = make(), make()
    out_1, state_1 = _train(single, X, threads=1)
    out_2, state_2 = _train(sharded, X, threads=2)
    assert sharded._shards.active
    for name in state_1:
        np.testing.assert_allclose(state_2[name], state_1[name], rtol=rtol, atol=rtol, err_msg=name)
    np.testing.assert_allclose(out_2, out_1, rtol=rtol, atol=rtol)
    # The first step's batch statistics, in float64 from the data itself.
    fresh = make()
    with parallel.using_threads(2):
        fresh(X)
    var = X.transpose(1, 0, 2, 3).reshape(3, -1).var(axis=1)
    expected = 0.5 * 1.0 + 0.5 * var * (X.size / 3) / (X.size / 3 - 1)
    np.testing.assert_allclose(fresh.layers[0].buffers["running_var"], expected, rtol=rtol)


def test_a_large_common_offset_keeps_the_variance_in_float32(small_shards):
    """Values of 10,000 +- 1: the variance comes out right in float32 (a sum of squares minus
    the squared mean would lose it entirely)."""
    rng = np.random.default_rng(1)
    X = (1e4 + rng.normal(size=(64, 5))).astype(np.float32)
    net = Net([BatchNorm1D(5, momentum=1.0)], backend="numpy", dtype="float32")
    with parallel.using_threads(2):
        Y = net(X)
    assert net._shards.active
    np.testing.assert_allclose(net.layers[0].buffers["running_var"],
                               X.astype(np.float64).var(axis=0, ddof=1), rtol=2e-3)
    np.testing.assert_allclose(Y.std(axis=0), 1.0, rtol=2e-3)
