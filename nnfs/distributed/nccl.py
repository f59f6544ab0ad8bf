"""NCCL transport: allreduce on GPU buffers, bootstrapped over MPI.

NCCL (through CuPy's ``cupy.cuda.nccl``, which the backend finds:
:meth:`~nnfs.backend.cupy_backend.CupyBackend.nccl`) reduces device memory
directly, GPU to GPU, without copies through the host. Its communicator is
created from a unique id (bytes, since CuPy 14) that rank 0 draws and MPI
broadcasts to every rank; the small host-side collectives (metrics, barrier)
stay on MPI. Every NCCL call is queued on CuPy's current stream, after the
kernels that computed the gradients.

The continuous integration has no GPU: there the plumbing runs against a copy
of CuPy 14's module layout (``tests/distributed/test_nccl.py``); on a GPU
machine a one-rank NCCL training run is compared with one process
(``scripts/gpu_check.sh``).
"""

from nnfs.distributed.comm import Communicator, HostMPICommunicator


def nccl_module(backend):
    """The backend's NCCL bindings, or None (no GPU, or CuPy cannot load NCCL)."""
    return backend.nccl()


class NCCLCommunicator(Communicator):
    """NCCL collectives on CuPy buffers, one GPU per rank.

    Args:
        mpi: the ``mpi4py.MPI`` module.
        mpi_comm: the MPI communicator whose ranks take part.
        backend: the CuPy backend.
        local_rank, local_size, device_id: see :class:`~nnfs.distributed.comm.Communicator`;
            the current CuPy device must already be ``device_id``.

    Raises:
        RuntimeError: when CuPy cannot load NCCL (the message says what to install).
    """

    transport = "nccl"

    def __init__(self, mpi, mpi_comm, backend, local_rank=0, local_size=1, device_id=None):
        self.host = HostMPICommunicator(mpi, mpi_comm, local_rank, local_size, device_id)
        super().__init__(self.host.rank, self.host.size, local_rank, local_size, device_id)
        self.nccl = nccl_module(backend)
        if self.nccl is None:
            raise RuntimeError(
                f"nnfs.distributed: transport 'nccl' was asked for, but NCCL is not usable: "
                f"{backend.nccl_problem()}; or use NNFS_TRANSPORT=host")
        self.backend = backend
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
        ptr = self.backend.device_pointer(buffer)
        self.nccl_comm.allReduce(ptr, ptr, buffer.size, self._type(buffer), self.nccl.NCCL_SUM,
                                 self.backend.current_stream())

    def broadcast(self, buffer, root=0):
        self.nccl_comm.bcast(self.backend.device_pointer(buffer), buffer.size, self._type(buffer), root,
                             self.backend.current_stream())

    def sum_host(self, values):
        return self.host.sum_host(values)

    def barrier(self):
        self.host.barrier()

    def abort(self, code=1):
        self.host.abort(code)
