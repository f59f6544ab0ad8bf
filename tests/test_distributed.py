"""nnfs.distributed without MPI: the flat buffer, one allreduce per step, sharding, the error.

A fake communicator stands in for the other ranks, so these run anywhere;
tests/test_distributed_mpi.py runs the real thing under mpiexec.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU
from nnfs.distributed import (
    Communicator, DataParallel, FlatBuffer, launched_with_mpiexec, reduce_metrics, shard,
    shard_range)
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net

ROOT = pathlib.Path(__file__).resolve().parents[1]


class FakeCommunicator(Communicator):
    """Rank 0 of ``size`` ranks whose peers all hold ``peer(buffer)`` (default: a copy of ours).

    Records every collective call with the buffer's length.
    """

    transport = "fake"

    def __init__(self, size=2, peer=None):
        super().__init__(rank=0, size=size)
        self.peer = peer
        self.calls = []

    def allreduce_sum(self, buffer):
        self.calls.append(("allreduce", buffer.size))
        other = buffer.copy() if self.peer is None else self.peer(buffer)
        buffer += other * (self.size - 1)

    def broadcast(self, buffer, root=0):
        self.calls.append(("broadcast", buffer.size))

    def sum_host(self, values):
        self.calls.append(("sum_host", len(values)))
        return [float(v) * self.size for v in values]

    def barrier(self):
        self.calls.append(("barrier", 0))


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


# -- the flat buffer -------------------------------------------------------------------------

def test_flat_buffer_round_trip_keeps_shapes_values_and_dtype(backend, rng):
    arrays = [backend.asarray(rng.standard_normal(shape), dtype="float32")
              for shape in [(3, 2, 2), (5,), (1, 4)]]
    flat = FlatBuffer(arrays, extra=1)
    assert flat.data.shape == (12 + 5 + 4 + 1,) and flat.data.dtype == np.float32
    assert backend.is_array(flat.data)
    flat.pack(arrays)
    views = flat.views()
    for view, array in zip(views, arrays):
        assert view.shape == array.shape and view.dtype == array.dtype
        np.testing.assert_array_equal(backend.to_numpy(view), backend.to_numpy(array))
    # The views share memory with the buffer: what the collective writes, they show.
    flat.data[...] = 2.0
    assert all((backend.to_numpy(view) == 2.0).all() for view in views)
    targets = [backend.xp.zeros_like(array) for array in arrays]
    flat.unpack_into(targets)
    assert all((backend.to_numpy(target) == 2.0).all() for target in targets)


def test_data_parallel_needs_parameters():
    with pytest.raises(ValueError, match="DataParallel: the net has no parameters"):
        DataParallel(Net([ReLU()], CrossEntropyLoss()), FakeCommunicator())


def test_flat_buffer_needs_arrays():
    with pytest.raises(ValueError, match="at least one array"):
        FlatBuffer([])


# -- one allreduce per step ---------------------------------------------------------------------

def test_one_allreduce_over_one_flat_buffer_per_step(backend, rng):
    net = small_net(backend)
    comm = FakeCommunicator(size=2)
    ddp = DataParallel(net, comm)
    n_values = sum(param.size for param in net.parameters())
    n_buffers = sum(b.size for layer in net.layers for b in layer.buffers.values())
    assert comm.calls == [("broadcast", n_values + n_buffers)]
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


def test_eval_averages_batchnorm_running_statistics(backend, rng):
    def peer_with_fours(buffer):
        return backend.xp.full_like(buffer, 4.0)

    net = small_net(backend)
    comm = FakeCommunicator(size=2, peer=peer_with_fours)
    ddp = DataParallel(net, comm)
    comm.calls.clear()
    ddp.eval()
    bn = net.layers[1]
    # Ours: mean 0 and variance 1 (fresh); the peer's: 4. The average over 2 ranks.
    np.testing.assert_allclose(backend.to_numpy(bn.buffers["running_mean"]), 2.0)
    np.testing.assert_allclose(backend.to_numpy(bn.buffers["running_var"]), 2.5)
    assert comm.calls == [("allreduce", 6)] and not net.training


def test_reduce_metrics_sums_over_ranks(backend):
    comm = FakeCommunicator(size=3)
    totals = reduce_metrics(comm, loss_sum=backend.asarray(1.5), correct=2, count=4.0)
    assert totals == {"loss_sum": 4.5, "correct": 6.0, "count": 12.0}
    assert comm.calls == [("sum_host", 3)]


# -- sharding --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 8, 31])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_every_item_once_and_balanced(n, size):
    parts = [list(range(n))[shard_range(n, rank, size)] for rank in range(size)]
    assert sum(parts, []) == list(range(n))
    lengths = [len(part) for part in parts]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_shard_takes_this_rank_share_of_an_array():
    X = np.arange(10).reshape(5, 2)
    assert shard(X, Communicator(rank=1, size=2)).tolist() == [[6, 7], [8, 9]]
    assert shard(range(5), Communicator(rank=0, size=2)) == range(0, 3)


def test_shard_range_rejects_bad_ranks():
    with pytest.raises(ValueError, match="rank=2, size=2"):
        shard_range(4, 2, 2)
    with pytest.raises(TypeError, match="rank must be an int"):
        shard_range(4, 0.0, 2)


# -- without MPI -------------------------------------------------------------------------------------

def test_launched_with_mpiexec_reads_the_launcher_environment(monkeypatch):
    for name in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_with_mpiexec()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert launched_with_mpiexec()


BLOCKED_MPI = """
import sys
sys.modules["mpi4py"] = None  # as if mpi4py were not installed
import nnfs, nnfs.net, nnfs.layers, nnfs.distributed
from nnfs.distributed import DataParallel, init
assert "mpi4py" not in sys.modules or sys.modules["mpi4py"] is None
assert not nnfs.distributed.is_available()
from nnfs.layers import Linear
from nnfs.losses import MeanSquareLoss
net = nnfs.net.Net([Linear(2, 1)], MeanSquareLoss())
import numpy
net.loss(net(numpy.ones((3, 2))), numpy.zeros((3, 1)))
net.backward()
net.update_weights(0.1)  # single-process training is untouched
try:
    DataParallel(net)
except RuntimeError as error:
    print(error)
else:
    raise SystemExit("DataParallel without mpi4py did not raise")
"""


def test_without_mpi4py_single_process_works_and_distributed_says_what_to_install():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", BLOCKED_MPI], env=env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "mpi4py is not installed" in message
    assert "pip install" in message and ".[mpi]" in message and "mpiexec" in message


def test_example_asked_for_distributed_without_mpi4py_says_what_to_install(tmp_path):
    code = ("import runpy, sys; sys.modules['mpi4py'] = None; "
            f"sys.argv = ['CNN_custom_dataset.py', '--distributed', '--save', {str(tmp_path / 'm.npz')!r}]; "
            f"runpy.run_path({str(ROOT / 'examples' / 'CNN_custom_dataset.py')!r}, run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "mpi4py is not installed" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_importing_nnfs_does_not_import_mpi4py():
    code = ("import sys, nnfs, nnfs.net, nnfs.distributed, nnfs.app.loop; "
            "print('mpi4py' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_unknown_transport_is_a_value_error(monkeypatch):
    from nnfs.distributed import world
    monkeypatch.setattr(world, "_world", None)
    with pytest.raises(ValueError, match="unknown transport 'gloo'.*host, nccl"):
        world.init(transport="gloo")
