"""Communicators: how ranks add up arrays. One class per transport.

:class:`DataParallel` only needs four collective operations, so a transport
is a small class with ``allreduce_sum``, ``broadcast``, ``sum_host`` and
``barrier``. Every rank must call each of them, in the same order.

- :class:`HostMPICommunicator` (``"host"``): MPI on host memory. NumPy
  buffers go to MPI as they are (no copy); device buffers (CuPy, the strict
  stand-in) are copied to the host with ``to_numpy``, reduced, and copied
  back with ``Backend.asarray``. Works with any MPI and any backend: the
  tested path and the fallback for GPUs.
- :class:`CudaAwareMPICommunicator` (``"cuda-aware-mpi"``): hands device
  buffers to an MPI built with CUDA support, without the host round trip.
- :class:`~nnfs.distributed.nccl.NCCLCommunicator` (``"nccl"``): NCCL on
  the GPUs, bootstrapped over MPI.
"""

import hashlib
import json

from nnfs.backend import backend_of, host_zeros, to_numpy


def differ_between_ranks(comm, records):
    """For each JSON-able value of ``records`` (this rank's), whether the ranks of ``comm`` hold
    different ones: one :meth:`~Communicator.sum_host` of two numbers a record, on every rank.

    Each record becomes 20 bits of a hash, whose square still sums exactly, so the ranks'
    values are all equal exactly when size * sum of squares == (sum) ** 2. The same list
    length on every rank: one collective of one length.
    """
    digests = []
    for record in records:
        text = json.dumps(record, sort_keys=True, default=str)
        digest = int(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:5], 16)
        digests += [digest, digest * digest]
    sums = comm.sum_host(digests)
    return [comm.size * sums[2 * index + 1] != sums[2 * index] ** 2 for index in range(len(records))]


class Communicator:
    """The collective operations data-parallel training needs.

    Attributes:
        rank: this process's index, ``0 <= rank < size``.
        size: the number of processes (ranks).
        local_rank: index among the ranks on this machine (picks the GPU).
        local_size: number of ranks on this machine.
        transport: ``"host"``, ``"cuda-aware-mpi"``, ``"nccl"`` (or a test double's name).
        device_id: the GPU this rank uses, or None on the CPU.
    """

    transport = None

    def __init__(self, rank=0, size=1, local_rank=0, local_size=1, device_id=None):
        self.rank = rank
        self.size = size
        self.local_rank = local_rank
        self.local_size = local_size
        self.device_id = device_id

    @property
    def is_root(self):
        """True on rank 0, the rank that prints and writes files."""
        return self.rank == 0

    def allreduce_sum(self, buffer):
        """Replace the 1-d array ``buffer`` in place by its sum over all ranks."""
        raise NotImplementedError

    def broadcast(self, buffer, root=0):
        """Overwrite the 1-d array ``buffer`` in place with rank ``root``'s copy."""
        raise NotImplementedError

    def sum_host(self, values):
        """Sum a short list of numbers over all ranks; returns Python floats (for metrics)."""
        raise NotImplementedError

    def barrier(self):
        """Wait until every rank gets here."""
        raise NotImplementedError

    def abort(self, code=1):
        """End every rank of the job (after an error on one rank, so the others do not hang)."""
        raise SystemExit(code)

    def __repr__(self):
        return (f"{type(self).__name__}(rank={self.rank}, size={self.size}, "
                f"local_rank={self.local_rank}, transport={self.transport!r})")


class HostMPICommunicator(Communicator):
    """MPI collectives on host memory; device buffers are staged through the host.

    Args:
        mpi: the ``mpi4py.MPI`` module.
        mpi_comm: an MPI communicator (``MPI.COMM_WORLD``).
        local_rank, local_size, device_id: see :class:`Communicator`.
    """

    transport = "host"

    def __init__(self, mpi, mpi_comm, local_rank=0, local_size=1, device_id=None):
        super().__init__(mpi_comm.Get_rank(), mpi_comm.Get_size(), local_rank, local_size, device_id)
        self.mpi = mpi
        self.mpi_comm = mpi_comm

    def allreduce_sum(self, buffer):
        host = to_numpy(buffer)  # the very same array for NumPy buffers: no copy
        self.mpi_comm.Allreduce(self.mpi.IN_PLACE, host, op=self.mpi.SUM)
        _copy_back(buffer, host)

    def broadcast(self, buffer, root=0):
        host = to_numpy(buffer)
        self.mpi_comm.Bcast(host, root=root)
        _copy_back(buffer, host)

    def sum_host(self, values):
        totals = host_zeros(len(values))
        for index, value in enumerate(values):
            totals[index] = float(to_numpy(value))
        self.mpi_comm.Allreduce(self.mpi.IN_PLACE, totals, op=self.mpi.SUM)
        return [float(total) for total in totals]

    def barrier(self):
        self.mpi_comm.Barrier()

    def abort(self, code=1):
        self.mpi_comm.Abort(code)


class CudaAwareMPICommunicator(HostMPICommunicator):
    """MPI collectives straight on device buffers; needs an MPI built with CUDA support.

    mpi4py passes CuPy arrays to MPI through ``__cuda_array_interface__``. The
    device work queued before the call must be finished first, since MPI does
    not know CuPy's stream. With an MPI that lacks CUDA support this crashes
    (usually a segmentation fault): use ``"host"`` or ``"nccl"`` there.
    """

    transport = "cuda-aware-mpi"

    def allreduce_sum(self, buffer):
        backend_of(buffer).synchronize()
        self.mpi_comm.Allreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM)

    def broadcast(self, buffer, root=0):
        backend_of(buffer).synchronize()
        self.mpi_comm.Bcast(buffer, root=root)


def _copy_back(buffer, host):
    """Write the reduced host copy into a device buffer (nothing to do when they are one array)."""
    if host is not buffer:
        buffer[...] = backend_of(buffer).asarray(host)
