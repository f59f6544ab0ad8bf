"""The NCCL transport: found the way CuPy 14 offers it, bootstrapped over MPI, on the current stream.

Without a GPU the plumbing runs against a fake CuPy laid out as CuPy 14 is (tests/fakecupy.py);
where CuPy is installed the lookup also runs against the real module layout, and on a GPU
one rank trains over NCCL and must match one process.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from tests.fakecupy import fake_cupy  # noqa: F401 (a fixture)
from nnfs.backend.cupy_backend import CupyBackend, find_nccl

ROOT = pathlib.Path(__file__).resolve().parents[2]
DDP_STEPS = ROOT / "tests" / "distributed" / "mpi_scripts" / "ddp_steps.py"


# -- finding the bindings --------------------------------------------------------------------------

def test_cupy_14_has_no_nccl_enabled_flag_and_nccl_is_found_anyway(fake_cupy):
    cupy = fake_cupy(nccl="loads")
    # What the first version of nnfs looked for: gone since CuPy 9.
    assert not hasattr(cupy.cuda, "nccl_enabled")
    assert "nccl" not in vars(cupy.cuda)  # a submodule that `import cupy` does not import
    nccl = CupyBackend().nccl()
    assert nccl is sys.modules["cupy.cuda.nccl"] and nccl.available is True
    assert CupyBackend().nccl_problem() is None


@pytest.mark.parametrize("cuda", [12, 13])
def test_a_missing_nccl_library_says_which_wheel_to_install(fake_cupy, cuda):
    fake_cupy(nccl="missing-library", cuda=cuda)
    backend = CupyBackend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CuPy's own warning is turned into our message, not shown
        assert backend.nccl() is None
        problem = backend.nccl_problem()
    assert "libnccl.so.2" in problem
    assert f"pip install nvidia-nccl-cu{cuda}`" in problem and f"CUDA {cuda}" in problem


def test_a_cupy_without_the_nccl_module_has_no_nccl(fake_cupy):
    fake_cupy(nccl="no-module")
    assert CupyBackend().nccl() is None
    assert "no cupy.cuda.nccl" in CupyBackend().nccl_problem()


def test_the_host_backends_have_no_nccl(backend):
    if backend.name == "cupy":
        pytest.skip("the GPU backend: see the tests above and the one-rank run below")
    assert backend.nccl() is None and "no GPUs" in backend.nccl_problem()


def test_the_lookup_matches_an_installed_cupy():
    # Runs wherever CuPy is installed, GPU or not: `import cupy.cuda.nccl` needs no device.
    cupy = pytest.importorskip("cupy")
    nccl, reason = find_nccl()
    import cupy.cuda.nccl as real
    assert (nccl is real) == bool(real.available)
    if nccl is None:
        assert reason
    else:
        assert callable(nccl.get_unique_id) and hasattr(nccl, "NcclCommunicator")
        assert {"NCCL_FLOAT32", "NCCL_FLOAT64", "NCCL_SUM"} <= set(dir(nccl))
    assert not hasattr(cupy.cuda, "nccl_enabled")


# -- the communicator ------------------------------------------------------------------------------

class FakeMPIComm:
    """``size`` ranks of one machine, seen from ``rank``; ``bcast`` through a shared dict."""

    def __init__(self, rank, size, shared):
        self.rank, self.size, self.shared = rank, size, shared

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def bcast(self, value, root=0):
        if self.rank == root:
            self.shared["bcast"] = value
        return self.shared["bcast"]

    def Split_type(self, kind, key=0):
        return FakeMPIComm(self.rank, self.size, self.shared)

    def Free(self):
        pass


def _buffer(cupy, dtype="float32"):
    return cupy.ndarray(10, np.dtype(dtype), ptr=1234)


def test_the_communicator_bootstraps_over_mpi_and_reduces_on_the_current_stream(fake_cupy):
    from nnfs.distributed.nccl import NCCLCommunicator
    cupy = fake_cupy(nccl="loads")
    backend, shared = CupyBackend(), {}
    comms = [NCCLCommunicator(None, FakeMPIComm(rank, 2, shared), backend, local_rank=rank,
                              local_size=2, device_id=rank) for rank in range(2)]
    # Rank 0's unique id (bytes, since CuPy 14) reached rank 1 over MPI.
    assert [c.nccl_comm.created for c in comms] == [(2, bytes(range(128)), 0), (2, bytes(range(128)), 1)]
    del cupy.calls[:]
    buffer = _buffer(cupy)
    comms[1].allreduce_sum(buffer)
    comms[1].broadcast(buffer, root=0)
    current = cupy.cuda.get_current_stream().ptr
    assert current != cupy.cuda.Stream.null.ptr
    assert cupy.calls == [("allReduce", 1234, 1234, 10, 7, 0, current), ("bcast", 1234, 10, 7, 0, current)]
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        comms[1].allreduce_sum(_buffer(cupy, "int64"))


def test_the_communicator_without_nccl_says_what_to_install(fake_cupy):
    from nnfs.distributed.nccl import NCCLCommunicator
    fake_cupy(nccl="missing-library", cuda=13)
    with pytest.raises(RuntimeError, match=r"nvidia-nccl-cu13.*NNFS_TRANSPORT=host"):
        NCCLCommunicator(None, FakeMPIComm(0, 2, {}), CupyBackend())


# -- init() chooses it -----------------------------------------------------------------------------

@pytest.fixture
def fake_world(monkeypatch):
    """``init()`` on rank 0 of ``size`` ranks of one machine, without MPI."""
    from nnfs.distributed import world

    def make(size):
        monkeypatch.setattr(world, "_world", None)
        comm = FakeMPIComm(0, size, {})
        monkeypatch.setattr(world, "import_mpi",
                            lambda: SimpleNamespace(COMM_WORLD=comm, COMM_TYPE_SHARED=1, IN_PLACE=None))
        monkeypatch.delenv("NNFS_TRANSPORT", raising=False)
        return world
    yield make
    world._world = None


def test_auto_chooses_nccl_on_gpus_when_cupy_14_has_it(fake_cupy, fake_world):
    cupy = fake_cupy(nccl="loads", devices=2)
    world = fake_world(size=2)
    comm = world.init(backend=CupyBackend())
    assert comm.transport == "nccl" and comm.device_id == 0
    assert ("use_device", 0) in cupy.calls


def test_auto_falls_back_to_host_memory_without_nccl(fake_cupy, fake_world):
    fake_cupy(nccl="missing-library", devices=2)
    world = fake_world(size=2)
    assert world.init(backend=CupyBackend()).transport == "host"


def test_asking_for_nccl_without_it_is_an_error_with_the_install_hint(fake_cupy, fake_world):
    fake_cupy(nccl="missing-library", cuda=12, devices=2)
    world = fake_world(size=2)
    with pytest.raises(RuntimeError, match="nvidia-nccl-cu12"):
        world.init(transport="nccl", backend=CupyBackend())


# -- on a GPU: one rank over NCCL equals one process -----------------------------------------------

@pytest.mark.gpu
@pytest.mark.nccl
def test_one_rank_over_nccl_trains_like_one_process(tmp_path):
    """A real NCCL communicator (one rank, no mpiexec needed) through DataParallel's
    broadcast and allreduce for two epochs: the same model as one process without it."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    from tests.conftest import load_backend
    from tests.distributed.mpi_scripts import ddp_steps
    backend = load_backend("cupy")
    if backend.nccl() is None:
        pytest.fail(f"NCCL is not usable on this GPU machine: {backend.nccl_problem()}")
    env = dict(os.environ, NNFS_BACKEND="cupy", NNFS_TRANSPORT="nccl",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(DDP_STEPS), "--out", str(tmp_path)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "rank0.json").read_text())
    assert report["transport"] == "nccl" and report["size"] == 1
    with np.load(tmp_path / "rank0.npz") as saved:
        state = dict(saved)
    expected, _ = ddp_steps.reference(batchnorm=False, dtype="float64", replicas=1)
    assert sorted(state) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(state[name], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)
