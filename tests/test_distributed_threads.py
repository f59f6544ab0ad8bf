"""Data-parallel equivalence without MPI: two ranks as two threads of one process.

A thread-backed communicator implements the same collectives as MPI, so the
whole DataParallel step (flat buffer, weighted average, broadcast, buffer
averaging, metric reduction) runs on every backend even where mpi4py is not
installed. The same training loop runs under a real mpiexec in
tests/test_distributed_mpi.py.
"""

import importlib.util
import pathlib
import threading

import numpy as np
import pytest

import nnfs
from nnfs.distributed import Communicator

SCRIPT = pathlib.Path(__file__).resolve().parent / "mpi_scripts" / "ddp_steps.py"
RANKS = 2


def _load_script():
    spec = importlib.util.spec_from_file_location("ddp_steps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ddp_steps = _load_script()


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


def train_in_threads(backend, batchnorm, dtype):
    """Run ddp_steps' training loop on RANKS threads; returns each rank's (state, report)."""
    nets = []
    for rank in range(RANKS):
        nnfs.seed(ddp_steps.SEED + rank)  # different on purpose: the broadcast must fix it
        nets.append(ddp_steps.build_net(batchnorm, dtype).to(backend))
    slots, barrier = [None] * RANKS, threading.Barrier(RANKS, timeout=60)
    results, errors = [None] * RANKS, []

    def run(rank):
        try:
            world = ThreadCommunicator(rank, RANKS, slots, barrier)
            results[rank] = ddp_steps.train_replica(world, nets[rank])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(RANKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def assert_states_close(state, expected, rtol):
    assert sorted(state) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(state[name], expected[name], rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_two_replicas_stay_identical_and_match_the_oracle(backend, batchnorm):
    (state0, report0), (state1, report1) = train_in_threads(backend, batchnorm, "float64")
    for name in state0:
        np.testing.assert_array_equal(state0[name], state1[name], err_msg=name)
    assert report0["replica_difference"] == 0.0 and report0["totals"] == report1["totals"]
    # Without BatchNorm: one process on the whole global batches. With it: per-shard statistics.
    expected, totals = ddp_steps.reference(batchnorm, "float64", replicas=RANKS if batchnorm else 1)
    assert_states_close(state0, expected, rtol=1e-12)
    assert report0["totals"]["count"] == 12
    assert report0["totals"]["loss_sum"] == pytest.approx(totals["loss_sum"], rel=1e-12)
