"""Data-parallel training under a real ``mpiexec -n 2``, compared with one process.

Skipped where mpi4py or mpiexec is missing (``pip install -e ".[mpi]"`` adds both).
"""

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests import ROOT, environment
from tests.distributed.mpi_scripts import ddp_steps  # the script mpiexec runs, imported for its helpers

SCRIPT = pathlib.Path(ddp_steps.__file__)
RANKS = 2

pytestmark = pytest.mark.mpi


def run_mpi(out, *args, backend="numpy"):
    """``mpiexec -n 2 python ddp_steps.py``; returns every rank's (state dict, report)."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    if mpiexec is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    # No NNFS_TRANSPORT: "auto" must choose host-memory MPI on the CPU backends.
    env = environment(NNFS_BACKEND=backend, OMP_NUM_THREADS="1", NNFS_TRANSPORT=None)
    command = [mpiexec, "-n", str(RANKS), sys.executable, str(SCRIPT), "--out", str(out), *args]
    result = subprocess.run(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mpiexec failed:\n{result.stdout}\n{result.stderr}"
    ranks = []
    for rank in range(RANKS):
        with np.load(out / f"rank{rank}.npz") as saved:
            state = dict(saved)
        ranks.append((state, json.loads((out / f"rank{rank}.json").read_text())))
    return ranks


def assert_replicas_identical(ranks):
    (state0, report0), (state1, report1) = ranks
    assert report0["size"] == RANKS and report0["transport"] == "host"
    assert report0["replica_difference"] == 0.0
    assert report0["totals"] == report1["totals"]
    for name in state0:
        np.testing.assert_array_equal(state0[name], state1[name], err_msg=name)


def assert_states_close(state, expected, rtol):
    assert sorted(state) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(state[name], expected[name], rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_two_ranks_equal_one_process_with_the_whole_batch(tmp_path, backend):
    """Without BatchNorm, K ranks with shards of B equal one process with batches of K*B."""
    ranks = run_mpi(tmp_path, "--dtype", "float64", backend=backend)
    assert_replicas_identical(ranks)
    expected, expected_totals = ddp_steps.reference(batchnorm=False, dtype="float64", replicas=1)
    assert_states_close(ranks[0][0], expected, rtol=1e-12)
    totals = ranks[0][1]["totals"]
    assert totals["count"] == 12 and totals["correct"] == expected_totals["correct"]
    assert totals["loss_sum"] == pytest.approx(expected_totals["loss_sum"], rel=1e-12)


def test_with_dropout_two_ranks_equal_one_process_with_the_whole_batch(tmp_path):
    """Each rank draws its own rows of the global batch's Dropout mask (they started from
    different seeds: rank 0's stream is copied with its parameters)."""
    ranks = run_mpi(tmp_path, "--dropout", "--dtype", "float64")
    assert_replicas_identical(ranks)
    assert ranks[0][1]["rng_state"] == ranks[1][1]["rng_state"]
    expected, expected_totals = ddp_steps.reference(batchnorm=False, dtype="float64", replicas=1, dropout=True)
    assert_states_close(ranks[0][0], expected, rtol=1e-12)
    assert ranks[0][1]["totals"]["loss_sum"] == pytest.approx(expected_totals["loss_sum"], rel=1e-12)


def test_batchnorm_replicas_equal_per_shard_statistics(tmp_path):
    """With BatchNorm each rank normalises its own shard: equal to per-shard statistics, not to
    the whole-batch ones; running statistics are averaged over the ranks at eval time."""
    ranks = run_mpi(tmp_path, "--batchnorm", "--dtype", "float64")
    assert_replicas_identical(ranks)
    per_shard, per_shard_totals = ddp_steps.reference(batchnorm=True, dtype="float64", replicas=RANKS)
    assert_states_close(ranks[0][0], per_shard, rtol=1e-12)
    assert ranks[0][1]["totals"]["loss_sum"] == pytest.approx(per_shard_totals["loss_sum"], rel=1e-12)
    whole_batch, _ = ddp_steps.reference(batchnorm=True, dtype="float64", replicas=1)
    difference = max(np.abs(ranks[0][0][name] - whole_batch[name]).max() for name in whole_batch)
    assert difference > 1e-6  # the documented difference from whole-batch statistics is real


def test_float32_replicas_stay_identical(tmp_path):
    """In float32 the replicas are still bit-identical, and close to one process."""
    ranks = run_mpi(tmp_path, "--batchnorm", "--dtype", "float32")
    assert_replicas_identical(ranks)
    assert all(value.dtype == np.float32 for value in ranks[0][0].values())
    expected, _ = ddp_steps.reference(batchnorm=True, dtype="float32", replicas=RANKS)
    assert_states_close(ranks[0][0], expected, rtol=1e-4)


# Rank 1 builds a wider net than rank 0's.
OTHER_NETS = """
import pathlib, sys
import nnfs.distributed as dist
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
world = dist.init()
net = Net([Linear(4, 16 + world.rank), Linear(16 + world.rank, 3)], CrossEntropyLoss())
try:
    dist.DataParallel(net, world)
except ValueError as error:  # a file per rank: lines printed by two ranks at once can run together
    (pathlib.Path(sys.argv[1]) / f"rank{world.rank}.txt").write_text(str(error))
"""


def test_ranks_with_other_nets_are_refused_on_every_rank(tmp_path):
    """Another net on one rank: the broadcast of rank 0's parameters failed inside MPI on the
    other rank (a stack of MPI's lines), and rank 0 waited for it in the next collective forever."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    if mpiexec is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    result = subprocess.run([mpiexec, "-n", str(RANKS), sys.executable, "-c", OTHER_NETS, str(tmp_path)],
                            env=environment(NNFS_BACKEND="numpy", OMP_NUM_THREADS="1", NNFS_TRANSPORT=None),
                            cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [(tmp_path / f"rank{rank}.txt").read_text() for rank in range(RANKS)] == [
        f"DataParallel: the nets of the 2 ranks differ (their layers, sizes or dtype); build the same net on every "
        f"rank (rank {rank}'s has {4 * width + width + width * 3 + 3} parameters in 4 arrays, float32)"
        for rank, width in ((0, 16), (1, 17))]
