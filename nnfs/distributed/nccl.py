"""NCCL transport: allreduce on GPU buffers, bootstrapped over MPI.

NCCL (through CuPy's ``cupy.cuda.nccl``) reduces device memory directly,
GPU to GPU, without copies through the host. Its communicator is created
from a unique id that rank 0 draws and MPI broadcasts to every rank; the
small host-side collectives (metrics, barrier) stay on MPI.

This module is not exercised by the continuous integration (no GPU there);
the host transport is. It is kept small on purpose.
"""

from nnfs.distributed.comm import Communicator, HostMPICommunicator


def nccl_module(backend):
    """CuPy's NCCL bindings, or None when this CuPy build has none."""
    cuda = backend.xp.cuda
    if not getattr(cuda, "nccl_enabled", False):
        return None
    nccl = cuda.nccl
    return nccl if getattr(nccl, "available", True) else None


class NCCLCommunicator(Communicator):
    """NCCL collectives on CuPy buffers, one GPU per rank.

    Args:
        mpi: the ``mpi4py.MPI`` module.
        mpi_comm: the MPI communicator whose ranks take part.
        backend: the CuPy backend.
        local_rank, local_size, device_id: see :class:`~nnfs.distributed.comm.Communicator`;
            the current CuPy device must already be ``device_id``.

    Raises:
        RuntimeError: when this CuPy build has no NCCL.
    """

    transport = "nccl"

    def __init__(self, mpi, mpi_comm, backend, local_rank=0, local_size=1, device_id=None):
        self.host = HostMPICommunicator(mpi, mpi_comm, local_rank, local_size, device_id)
        super().__init__(self.host.rank, self.host.size, local_rank, local_size, device_id)
        self.nccl = nccl_module(backend)
        if self.nccl is None:
            raise RuntimeError(
                "nnfs.distributed: transport 'nccl' was asked for, but this CuPy has no NCCL "
                "support; install NCCL for your CUDA version (e.g. `pip install nvidia-nccl-cu12`) "
                "or use NNFS_TRANSPORT=host")
        self.xp = backend.xp
        unique_id = self.nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi_comm.bcast(unique_id, root=0)
        self.nccl_comm = self.nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self._types = {"float32": self.nccl.NCCL_FLOAT32, "float64": self.nccl.NCCL_FLOAT64}

    def _type(self, buffer):
        try:
            return self._types[buffer.dtype.name]
        except KeyError:
            raise TypeError(
                f"NCCLCommunicator: buffers must be float32 or float64, got {buffer.dtype}") from None

    def allreduce_sum(self, buffer):
        # Queued on CuPy's current stream, so it runs after the gradients are computed
        # and before anything later on that stream reads the buffer.
        stream = self.xp.cuda.get_current_stream().ptr
        ptr = buffer.data.ptr
        self.nccl_comm.allReduce(ptr, ptr, buffer.size, self._type(buffer), self.nccl.NCCL_SUM, stream)

    def broadcast(self, buffer, root=0):
        stream = self.xp.cuda.get_current_stream().ptr
        self.nccl_comm.bcast(buffer.data.ptr, buffer.size, self._type(buffer), root, stream)

    def sum_host(self, values):
        return self.host.sum_host(values)

    def barrier(self):
        self.host.barrier()

    def abort(self, code=1):
        self.host.abort(code)
