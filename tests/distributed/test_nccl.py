"""The NCCL transport's plumbing (no GPU here: CuPy's NCCL bindings are faked)."""

import numpy as np
import pytest


class _FakeMPIComm:
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


class _FakeNcclComm:
    def __init__(self, size, unique_id, rank):
        self.created = (size, unique_id, rank)
        self.calls = []

    def allReduce(self, send, recv, count, datatype, op, stream):
        self.calls.append(("allReduce", send, recv, count, datatype, op, stream))

    def bcast(self, buff, count, datatype, root, stream):
        self.calls.append(("bcast", buff, count, datatype, root, stream))


def _fake_cupy_backend():
    from types import SimpleNamespace
    nccl = SimpleNamespace(
        available=True, get_unique_id=lambda: "id-from-rank-0", NcclCommunicator=_FakeNcclComm,
        NCCL_FLOAT32=7, NCCL_FLOAT64=8, NCCL_SUM=0)
    cuda = SimpleNamespace(nccl_enabled=True, nccl=nccl,
                           get_current_stream=lambda: SimpleNamespace(ptr=99))
    return SimpleNamespace(name="cupy", xp=SimpleNamespace(cuda=cuda))


def test_nccl_communicator_bootstraps_over_mpi_and_reduces_device_pointers():
    from types import SimpleNamespace
    from nnfs.distributed.nccl import NCCLCommunicator
    shared = {}
    comms = [NCCLCommunicator(None, _FakeMPIComm(rank, 2, shared), _fake_cupy_backend(),
                              local_rank=rank, local_size=2, device_id=rank)
             for rank in range(2)]
    # Rank 0's unique id reached rank 1 over MPI; each rank joined with its own rank.
    assert [c.nccl_comm.created for c in comms] == [(2, "id-from-rank-0", 0), (2, "id-from-rank-0", 1)]
    buffer = SimpleNamespace(data=SimpleNamespace(ptr=1234), size=10, dtype=np.dtype("float32"))
    comms[1].allreduce_sum(buffer)
    comms[1].broadcast(buffer, root=0)
    assert comms[1].nccl_comm.calls == [("allReduce", 1234, 1234, 10, 7, 0, 99),
                                        ("bcast", 1234, 10, 7, 0, 99)]
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        comms[1].allreduce_sum(SimpleNamespace(data=buffer.data, size=1, dtype=np.dtype("int64")))


def test_nccl_communicator_without_nccl_says_what_to_do():
    from nnfs.distributed.nccl import NCCLCommunicator
    backend = _fake_cupy_backend()
    backend.xp.cuda.nccl_enabled = False
    with pytest.raises(RuntimeError, match="no NCCL support.*NNFS_TRANSPORT=host"):
        NCCLCommunicator(None, _FakeMPIComm(0, 2, {}), backend)
