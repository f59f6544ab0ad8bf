"""Data-parallel equivalence without MPI: two ranks as two threads of one process.

A thread-backed communicator implements the same collectives as MPI, so the
whole DataParallel step (flat buffer, weighted average, broadcast, buffer
averaging, metric reduction) runs on every backend even where mpi4py is not
installed. The same training loop runs under a real mpiexec in
tests/distributed/test_mpi.py.
"""

import threading

import numpy as np
import pytest

import nnfs
from nnfs.app import loop as training
from nnfs.distributed import Communicator, DataParallel
from nnfs.optim import SGD, Adam
from tests.distributed.mpi_scripts import ddp_steps  # the script mpiexec runs, imported for its helpers

RANKS = 2


class ThreadCommunicator(Communicator):
    """One of ``size`` threads that exchange buffers through shared slots and a barrier."""

    transport = "threads"

    def __init__(self, rank, size, slots, barrier):
        super().__init__(rank=rank, size=size)
        self.slots = slots
        self._barrier = barrier

    def _exchange(self, value):
        self.slots[self.rank] = value
        self._barrier.wait()
        values = list(self.slots)
        self._barrier.wait()  # nobody overwrites a slot before everyone has read it
        return values

    def allreduce_sum(self, buffer):
        parts = self._exchange(buffer.copy())
        total = parts[0].copy()
        for part in parts[1:]:  # rank order on every rank: identical sums everywhere
            total += part
        buffer[...] = total

    def broadcast(self, buffer, root=0):
        buffer[...] = self._exchange(buffer.copy())[root]

    def sum_host(self, values):
        parts = self._exchange([float(v) for v in values])
        return [sum(column) for column in zip(*parts)]

    def barrier(self):
        self._barrier.wait()


def run_in_threads(nets, work):
    """Call ``work(world, net)`` on one thread per net (rank); returns the results by rank."""
    size = len(nets)
    slots, barrier = [None] * size, threading.Barrier(size, timeout=60)
    results, errors = [None] * size, []

    def run(rank):
        try:
            results[rank] = work(ThreadCommunicator(rank, size, slots, barrier), nets[rank])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def replicas(backend, batchnorm, dtype="float64", dropout=False):
    """One net per rank, each from a different seed on purpose: the broadcast must fix it."""
    nets = []
    for rank in range(RANKS):
        nnfs.seed(ddp_steps.SEED + rank)
        nets.append(ddp_steps.build_net(batchnorm, dtype, dropout).to(backend))
    return nets


def assert_states_close(state, expected, rtol):
    assert sorted(state) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(state[name], expected[name], rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_two_replicas_stay_identical_and_match_the_oracle(backend, batchnorm):
    results = run_in_threads(replicas(backend, batchnorm), ddp_steps.train_replica)
    (state0, report0), (state1, report1) = results
    for name in state0:
        np.testing.assert_array_equal(state0[name], state1[name], err_msg=name)
    assert report0["replica_difference"] == 0.0 and report0["totals"] == report1["totals"]
    # Without BatchNorm: one process on the whole global batches. With it: per-shard statistics.
    expected, totals = ddp_steps.reference(batchnorm, "float64", replicas=RANKS if batchnorm else 1)
    assert_states_close(state0, expected, rtol=1e-12)
    assert report0["totals"]["count"] == 12
    assert report0["totals"]["loss_sum"] == pytest.approx(totals["loss_sum"], rel=1e-12)


def test_with_dropout_each_rank_draws_its_rows_of_the_global_batch_mask(backend):
    """Two ranks (uneven and empty shards included) train as one process does on the global
    batches, Dropout's masks included: every rank draws its own rows of the whole batch's mask,
    from rank 0's stream, and a rank with an empty shard keeps its stream in step."""
    results = run_in_threads(replicas(backend, False, dropout=True), ddp_steps.train_replica)
    (state0, report0), (state1, report1) = results
    for name in state0:
        np.testing.assert_array_equal(state0[name], state1[name], err_msg=name)
    expected, totals = ddp_steps.reference(False, "float64", replicas=1, dropout=True)
    assert_states_close(state0, expected, rtol=1e-12)
    assert report0["totals"]["loss_sum"] == pytest.approx(totals["loss_sum"], rel=1e-12)
    # The same stream on both ranks: one mask per global batch, the empty shard's included.
    assert report0["rng_state"] == report1["rng_state"]
    assert [stream["calls"] for stream in report0["rng_state"].values()] == [10]


def test_a_shard_not_cut_by_ddp_shard_is_refused_when_the_net_draws_masks():
    """Its place in the global batch is unknown: guessing it would drop another rank's rows."""
    nnfs.seed(0)
    net = ddp_steps.build_net(False, "float64", dropout=True)
    ddp = DataParallel(net, ThreadCommunicator(0, 1, [None], threading.Barrier(1)))
    (X, y), _ = ddp_steps.make_data()
    with pytest.raises(ValueError, match=r"^DataParallel: the net draws Dropout masks of the global batch, so cut "
                                         r"each batch with ddp.shard\(X, y\) before ddp\(X\); got 4 rows and no "
                                         r"share was cut$"):
        ddp(X[:4])
    ddp.shard(X[:8], y[:8])
    with pytest.raises(ValueError, match="the latest share has 8 rows"):
        ddp(X[:4])
    net.eval()
    assert ddp(X[:4]).shape == (4, 3)  # no masks in eval mode: nothing to place


def test_a_rank_whose_shard_is_always_empty_is_left_out_of_the_batchnorm_average(backend):
    """Three ranks, global batches of two: the third rank never sees a sample, and its running
    statistics (the ones it started from) must not pull the average back towards them."""
    (X, y), _ = ddp_steps.make_data()
    nets = []
    for _ in range(3):
        nnfs.seed(ddp_steps.SEED)
        nets.append(ddp_steps.build_net(True, "float64").to(backend))

    def work(world, replica):
        ddp = DataParallel(replica, world)
        training.train_epoch(ddp, [(X[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)], lr=ddp_steps.LR)
        own = {name: value for name, value in replica.state_dict().items() if "running" in name}
        ddp.eval()
        return own, replica.state_dict()

    results = run_in_threads(nets, work)
    owns = [own for own, _ in results]
    np.testing.assert_array_equal(owns[2]["1.running_var"], 1.0)  # never updated
    for _, state in results:
        for name in owns[0]:
            np.testing.assert_allclose(state[name], (owns[0][name] + owns[1][name]) / 2, rtol=1e-12, err_msg=name)


def test_distributed_epochs_match_single_process_epochs(backend):
    """nnfs.app.loop's epochs on 2 ranks (through DataParallel) = the same loop on one (no BatchNorm)."""
    (X, y), (X_val, y_val) = ddp_steps.make_data()
    batches = [(X[start:stop], y[start:stop]) for start, stop in ddp_steps.BATCH_BOUNDS]
    val_batches = [(X_val[:7], y_val[:7]), (X_val[7:], y_val[7:])]
    nnfs.seed(ddp_steps.SEED)
    net = ddp_steps.build_net(False, "float64").to(backend)
    fit = training.train_epoch(net, batches, lr=ddp_steps.LR)
    check = training.evaluate(net, val_batches)

    def work(world, replica):
        ddp = DataParallel(replica, world)
        return (training.train_epoch(ddp, batches, lr=ddp_steps.LR),
                training.evaluate(ddp, val_batches), replica.state_dict())

    for rank_fit, rank_check, state in run_in_threads(replicas(backend, False), work):
        assert (rank_fit.samples, rank_check.samples) == (32, 12)
        assert rank_fit.loss == pytest.approx(fit.loss, rel=1e-12)
        assert rank_fit.accuracy == fit.accuracy and rank_check.accuracy == check.accuracy
        assert rank_check.loss == pytest.approx(check.loss, rel=1e-12)
        assert_states_close(state, net.state_dict(), rtol=1e-12)


@pytest.mark.parametrize("make_optimizer", [
    lambda net: SGD(net, lr=0.05, momentum=0.9), lambda net: Adam(net, lr=0.01)],
    ids=["sgd-momentum", "adam"])
def test_optimizers_step_on_the_averaged_gradients(backend, make_optimizer):
    """An optimizer that reads net.named_parameters() sees the averaged gradients."""
    (X, y), (X_val, y_val) = ddp_steps.make_data()
    batches = [(X[start:stop], y[start:stop]) for start, stop in ddp_steps.BATCH_BOUNDS]
    nnfs.seed(ddp_steps.SEED)
    net = ddp_steps.build_net(False, "float64").to(backend)
    training.train_epoch(net, batches, optimizer=make_optimizer(net))

    def work(world, replica):
        ddp = DataParallel(replica, world)
        training.train_epoch(ddp, batches, optimizer=make_optimizer(replica))
        return replica.state_dict()

    for state in run_in_threads(replicas(backend, False), work):
        assert_states_close(state, net.state_dict(), rtol=1e-10)
