"""Data parallel over MPI with each rank's share in shards on threads: the same training.

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
from tests.distributed.mpi_scripts import ddp_steps

SCRIPT = pathlib.Path(ddp_steps.__file__)
RANKS = 2

pytestmark = pytest.mark.mpi

# Runs ddp_steps.py with two threads per rank and shards of any size (its batches are tiny),
# counting the sharded forward passes of each rank.
LAUNCHER = """
import pathlib, runpy, sys
import nnfs.parallel as parallel
threads, script, out, rest = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3]), sys.argv[4:]
parallel.MIN_SHARD_SAMPLES = parallel.MIN_SHARD_ELEMENTS = 1
parallel.set_num_threads(threads)
sharded = []
forward = parallel.Shards.forward
parallel.Shards.forward = lambda self, *args: sharded.append(args[-1]) or forward(self, *args)
sys.argv = [script, "--out", str(out), *rest]
runpy.run_path(script, run_name="__main__")
from mpi4py import MPI
(out / f"sharded{MPI.COMM_WORLD.Get_rank()}.json").write_text(str(len(sharded)))
"""


def run_mpi(out, threads, *args):
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    if mpiexec is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    out.mkdir()
    launcher = out / "launcher.py"
    launcher.write_text(LAUNCHER)
    env = environment(NNFS_BACKEND="numpy", OMP_NUM_THREADS="1", NNFS_TRANSPORT=None)
    command = [mpiexec, "-n", str(RANKS), sys.executable, str(launcher), str(threads), str(SCRIPT),
               str(out), *args]
    result = subprocess.run(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"mpiexec failed:\n{result.stdout}\n{result.stderr}"
    ranks = []
    for rank in range(RANKS):
        with np.load(out / f"rank{rank}.npz") as saved:
            state = dict(saved)
        report = json.loads((out / f"rank{rank}.json").read_text())
        ranks.append((state, report, int((out / f"sharded{rank}.json").read_text())))
    return ranks


def test_threads_in_every_rank_train_as_one_thread_per_rank(tmp_path):
    """With BatchNorm: each rank's statistics are those of its share of the batch, whether that
    share runs on one thread or in shards on two (their sums combined)."""
    one = run_mpi(tmp_path / "one", 1, "--batchnorm", "--dtype", "float64")
    two = run_mpi(tmp_path / "two", 2, "--batchnorm", "--dtype", "float64")
    assert [sharded for _, _, sharded in one] == [0, 0]
    assert all(sharded > 0 for _, _, sharded in two)  # the ranks' shares really ran in shards
    for (state, report, _), (expected, expected_report, _) in zip(two, one):
        assert report["replica_difference"] == 0.0
        assert sorted(state) == sorted(expected)
        for name in expected:
            np.testing.assert_allclose(state[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
        assert report["totals"]["loss_sum"] == pytest.approx(expected_report["totals"]["loss_sum"],
                                                             rel=1e-12)


def test_dropout_in_shards_of_every_rank_draws_its_rows_of_the_global_batch_mask(tmp_path):
    """Each thread's shard of each rank's share draws its own rows of the global batch's mask:
    the run is the single-process run on the global batches, whatever the threads."""
    expected, expected_totals = ddp_steps.reference(batchnorm=False, dtype="float64", replicas=1, dropout=True)
    two = run_mpi(tmp_path / "two", 2, "--dropout", "--dtype", "float64")
    assert all(sharded > 0 for _, _, sharded in two)
    for state, report, _ in two:
        assert report["replica_difference"] == 0.0 and report["rng_state"] == two[0][1]["rng_state"]
        for name in expected:
            np.testing.assert_allclose(state[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
        assert report["totals"]["loss_sum"] == pytest.approx(expected_totals["loss_sum"], rel=1e-12)
