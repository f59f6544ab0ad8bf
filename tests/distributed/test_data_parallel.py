"""DataParallel without MPI: one allreduce per step over one flat buffer, weighted averages,
BatchNorm statistics averaged at eval time.

A fake communicator stands in for the other ranks, so these run anywhere;
tests/distributed/test_mpi.py runs the real thing under mpiexec.
"""

import hashlib
import json

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU
from nnfs.distributed import DataParallel
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests.distributed.fakes import FakeCommunicator


def small_net(backend, batchnorm=True, dtype="float64"):
    nnfs.seed(3)
    layers = [Conv2D(1, 3, 3, padding=1, dtype=dtype)]
    if batchnorm:
        layers.append(BatchNorm2D(3, dtype=dtype))
    layers += [ReLU(), MaxPool2D(2), Flatten(), Linear(3 * 3 * 3, 4, dtype=dtype)]
    return Net(layers, CrossEntropyLoss(), backend=backend, dtype=dtype)


def batch(rng, n=6):
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 4, size=n)


def grads_of(net):
    return {name: net.to_numpy(grad) for name, _, grad in net.named_parameters()}


def test_data_parallel_needs_parameters():
    with pytest.raises(ValueError, match="DataParallel: the net has no parameters"):
        DataParallel(Net([ReLU()], CrossEntropyLoss()), FakeCommunicator())


def test_replicas_that_differ_are_refused_on_every_rank(backend):
    """Another layer size, another layer or another dtype on one rank: the broadcast that
    follows failed inside MPI (a stack of its lines) or waited forever."""
    mine = DataParallel(small_net(backend), FakeCommunicator(size=2))._layout()
    assert mine == DataParallel(small_net(backend), FakeCommunicator(size=2))._layout()

    class OtherRank(FakeCommunicator):  # the other rank's replica is ``other``'s
        def __init__(self, other):
            super().__init__(size=2)
            layout = DataParallel(other, FakeCommunicator(size=1))._layout()
            self.digest = int(hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:5], 16)

        def sum_host(self, values):
            return [float(values[0] + self.digest), float(values[1] + self.digest ** 2)]

    DataParallel(small_net(backend), OtherRank(small_net(backend)))  # the same net: accepted
    for other in (small_net(backend, batchnorm=False), small_net(backend, dtype="float32"),
                  Net([Conv2D(1, 3, 3, padding=1), Flatten(), Linear(3 * 6 * 6, 4)], CrossEntropyLoss(),
                      backend=backend, dtype="float64")):
        with pytest.raises(ValueError, match=r"DataParallel: the nets of the 2 ranks differ \(their layers, sizes "
                                             r"or dtype\); build the same net on every rank \(rank 0's has "):
            DataParallel(small_net(backend), OtherRank(other))


def test_one_allreduce_over_one_flat_buffer_per_step(backend, rng):
    net = small_net(backend)
    comm = FakeCommunicator(size=2)
    ddp = DataParallel(net, comm)
    n_values = sum(param.size for param in net.parameters())
    n_buffers = sum(b.size for layer in net.layers for b in layer.buffers.values())
    assert comm.calls == [("sum_host", 2), ("broadcast", n_values + n_buffers)]  # the replicas checked alike
    comm.calls.clear()
    buffers_seen = set()
    for step in range(3):
        X, y = batch(rng)
        ddp.loss(ddp(X), y)
        ddp.backward()
        net.update_weights(0.1)
        assert comm.calls == [("allreduce", n_values + 1)] * (step + 1)
        buffers_seen.add(id(ddp._grads.data))
    assert len(buffers_seen) == 1  # allocated once, reused every step


def test_averaged_gradients_are_views_of_the_flat_buffer(backend, rng):
    net = small_net(backend)
    ddp = DataParallel(net, FakeCommunicator(size=2))
    X, y = batch(rng)
    ddp.loss(ddp(X), y)
    ddp.backward()
    ddp._grads.data[...] = 7.0  # no copies in between: every gradient shows the write
    for name, grad in grads_of(net).items():
        np.testing.assert_array_equal(grad, 7.0, err_msg=name)


def test_identical_peers_leave_the_gradients_unchanged(backend, rng):
    """Two ranks with the same data: the average is this rank's own gradient."""
    reference = small_net(backend)
    X, y = batch(rng)
    reference.loss(reference(X), y)
    reference.backward()
    net = small_net(backend)
    ddp = DataParallel(net, FakeCommunicator(size=2))
    ddp.loss(ddp(X), y)
    ddp.backward()
    expected, got = grads_of(reference), grads_of(net)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, err_msg=name)


def test_average_is_weighted_by_each_rank_sample_count(backend, rng):
    """A peer with 3 samples and zero gradient: ours (6 samples) are scaled by 6 / (6 + 3)."""
    def empty_peer(buffer):
        other = backend.xp.zeros_like(buffer)
        other[-1] = 3
        return other

    reference = small_net(backend)
    X, y = batch(rng, n=6)
    reference.loss(reference(X), y)
    reference.backward()
    net = small_net(backend)
    ddp = DataParallel(net, FakeCommunicator(size=2, peer=empty_peer))
    ddp.loss(ddp(X), y)
    ddp.backward()
    expected, got = grads_of(reference), grads_of(net)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name] * 6 / 9, rtol=1e-12, err_msg=name)


def test_a_rank_without_samples_contributes_zero(backend):
    def peer_with_ones(buffer):
        other = backend.xp.ones_like(buffer)
        other[-1] = 4
        return other

    net = small_net(backend, batchnorm=False)
    ddp = DataParallel(net, FakeCommunicator(size=2, peer=peer_with_ones))
    ddp.average_gradients(n_samples=0)
    for name, grad in grads_of(net).items():
        np.testing.assert_allclose(grad, 0.25, err_msg=name)  # the peer's ones / its 4 samples


def test_float32_stays_float32(backend, rng):
    net = small_net(backend, dtype="float32")
    ddp = DataParallel(net, FakeCommunicator(size=2))
    X, y = batch(rng)
    ddp.loss(ddp(X), y)
    ddp.backward()
    assert all(grad.dtype == np.float32 for _, _, grad in net.named_parameters())


def peer_statistics(backend, value, had_samples):
    """A peer whose buffers all hold ``value``, counted in the average when it had samples."""
    def peer(buffer):
        other = backend.xp.full_like(buffer, value if had_samples else 0.0)
        other[-1] = 1 if had_samples else 0
        return other
    return peer


def test_eval_averages_batchnorm_running_statistics(backend):
    net = small_net(backend)
    comm = FakeCommunicator(size=2, peer=peer_statistics(backend, 4.0, had_samples=True))
    ddp = DataParallel(net, comm)
    ddp.average_gradients(n_samples=3)  # a step with samples (its statistics are left as they are here)
    comm.calls.clear()
    ddp.eval()
    bn = net.layers[1]
    # Ours: mean 0 and variance 1 (fresh); the peer's: 4. The average over 2 ranks.
    np.testing.assert_allclose(backend.to_numpy(bn.buffers["running_mean"]), 2.0)
    np.testing.assert_allclose(backend.to_numpy(bn.buffers["running_var"]), 2.5)
    assert comm.calls == [("allreduce", 7)] and not net.training  # the buffers and who counts


def test_a_rank_without_samples_since_the_last_average_is_left_out_of_it(backend):
    """Its statistics are the ones it started from: counting them pulled the average back."""
    net = small_net(backend)
    ddp = DataParallel(net, FakeCommunicator(size=2, peer=peer_statistics(backend, 4.0, had_samples=True)))
    ddp.average_gradients(n_samples=0)  # every step of ours was empty
    ddp.eval()
    np.testing.assert_allclose(backend.to_numpy(net.layers[1].buffers["running_mean"]), 4.0)  # the peer's alone
    # The peer had none either: nothing to average, each rank keeps its own.
    net = small_net(backend)
    ddp = DataParallel(net, FakeCommunicator(size=2, peer=peer_statistics(backend, 4.0, had_samples=False)))
    ddp.average_gradients(n_samples=0)
    ddp.eval()
    np.testing.assert_allclose(backend.to_numpy(net.layers[1].buffers["running_var"]), 1.0)
