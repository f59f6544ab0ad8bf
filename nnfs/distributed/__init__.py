"""Data-parallel training over MPI: several processes, GPUs and machines.

Start K processes with ``mpiexec -n K python script.py``. Each one (a *rank*)
holds a full replica of the net and trains on its own shard of every global
batch; :class:`DataParallel` averages the gradients across ranks with one
allreduce per step, so the replicas stay identical.

- :func:`init`: join the MPI job, pick this rank's GPU, choose the transport
  (:func:`join_to_abort`: join it only to end it, for a rank that failed before).
- :class:`DataParallel`: wraps a ``Net``; ``ddp.backward()`` = backward + allreduce.
- :func:`shard`, :func:`shard_range`: this rank's share of a batch or dataset.
- :func:`reduce_metrics`: sum of losses, correct counts and counts over ranks.
- Transports (one communicator class each): host-memory MPI (any backend),
  NCCL on GPUs, CUDA-aware MPI.

mpi4py is imported only when :func:`init` runs; without it, :func:`init` and
``DataParallel(net)`` raise a RuntimeError saying what to install, and
everything single-process works as before.
"""

from nnfs.distributed.comm import Communicator, CudaAwareMPICommunicator, HostMPICommunicator, differ_between_ranks
from nnfs.distributed.data_parallel import DataParallel
from nnfs.distributed.flat import FlatBuffer
from nnfs.distributed.sharding import reduce_metrics, shard, shard_range
from nnfs.distributed.world import INSTALL_HINT, init, is_available, join_to_abort, launched_with_mpiexec

__all__ = [
    "init", "join_to_abort", "is_available", "launched_with_mpiexec", "DataParallel", "shard", "shard_range",
    "reduce_metrics", "FlatBuffer", "Communicator", "HostMPICommunicator",
    "CudaAwareMPICommunicator", "INSTALL_HINT", "differ_between_ranks",
]
