"""Starting the world: launcher detection, transports, and nnfs without mpi4py."""

import subprocess
import sys

import pytest

from nnfs.distributed import launched_with_mpiexec
from tests import environment


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
    result = subprocess.run([sys.executable, "-c", BLOCKED_MPI], env=environment(), capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "mpi4py is not installed" in message
    assert "pip install" in message and ".[mpi]" in message and "mpiexec" in message


def test_importing_nnfs_does_not_import_mpi4py():
    code = ("import sys, nnfs, nnfs.net, nnfs.distributed, nnfs.app.loop; "
            "print('mpi4py' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], env=environment(), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_unknown_transport_is_a_value_error(monkeypatch):
    from nnfs.distributed import world
    monkeypatch.setattr(world, "_world", None)
    with pytest.raises(ValueError, match="unknown transport 'gloo'.*host, nccl"):
        world.init(transport="gloo")
