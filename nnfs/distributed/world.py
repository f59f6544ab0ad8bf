"""Joining the MPI job: ranks, this rank's GPU, and the transport.

mpi4py is imported here, lazily, on the first :func:`init`: ``import nnfs``
and ``import nnfs.distributed`` never need it.
"""

import os

from nnfs.backend import get_backend

ENV_TRANSPORT = "NNFS_TRANSPORT"
TRANSPORTS = ("auto", "host", "nccl", "cuda-aware-mpi")
INSTALL_HINT = (
    "install mpi4py and an MPI library, e.g. `python -m pip install -e \".[mpi]\"` "
    "(or `python -m pip install mpi4py mpich`), then start the script with "
    "`mpiexec -n K python script.py`")

# Environment variables that the common MPI launchers set in every process they start.
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                       "MPI_LOCALNRANKS")

_world = None


def is_available():
    """True when mpi4py can be imported (without importing it)."""
    import importlib.util
    try:
        return importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked installation
        return False


def launched_with_mpiexec():
    """True when this process was started by ``mpiexec``/``mpirun`` (read from the environment).

    Lets a script switch to data-parallel training under ``mpiexec`` and stay
    single-process otherwise, without importing mpi4py.
    """
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def import_mpi():
    """The ``mpi4py.MPI`` module (starting MPI), or a RuntimeError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(f"nnfs.distributed needs MPI, but mpi4py is not installed: {INSTALL_HINT}"
                           ) from error
    return MPI


def init(transport=None, backend=None):
    """Join the MPI job and return this rank's communicator (the same one on later calls).

    Call it before building the net: on the GPU it selects this rank's device
    (the local rank modulo the number of visible GPUs), and the parameters must
    be allocated there.

    Args:
        transport: ``"auto"`` (default, or ``NNFS_TRANSPORT``): NCCL for CuPy when available
            and every rank on a machine has its own GPU, host-memory MPI otherwise;
            ``"host"``, ``"nccl"`` or ``"cuda-aware-mpi"`` force one.
        backend: the backend the net will use; default ``NNFS_BACKEND``.

    Returns:
        a :class:`~nnfs.distributed.comm.Communicator` with ``rank``, ``size``, ``local_rank``.

    Raises:
        RuntimeError: without mpi4py (the message says what to install), or when the
            requested transport cannot work here.
        ValueError: for an unknown transport.
    """
    global _world
    if _world is not None:
        return _world
    transport = _transport_name(transport)
    backend = get_backend(backend)
    MPI = import_mpi()
    from nnfs.distributed.comm import CudaAwareMPICommunicator, HostMPICommunicator

    world = MPI.COMM_WORLD
    # The ranks that share memory are the ranks on one machine: their order picks the GPU.
    local = world.Split_type(MPI.COMM_TYPE_SHARED, key=world.Get_rank())
    local_rank, local_size = local.Get_rank(), local.Get_size()
    local.Free()
    device_id = None
    n_devices = backend.device_count()  # 0 on the host backends
    if n_devices:
        device_id = local_rank % n_devices
        backend.use_device(device_id)

    if transport == "auto":
        transport = "host"
        if n_devices and world.Get_size() > 1 and local_size <= n_devices:
            from nnfs.distributed.nccl import nccl_module
            if nccl_module(backend) is not None:
                transport = "nccl"
    if transport in ("nccl", "cuda-aware-mpi") and not n_devices:
        raise RuntimeError(
            f"nnfs.distributed: transport {transport!r} needs GPUs (NNFS_BACKEND=cupy), "
            f"but the backend is {backend.name!r}; use NNFS_TRANSPORT=host")
    args = (MPI, world, local_rank, local_size, device_id)
    if transport == "nccl":
        from nnfs.distributed.nccl import NCCLCommunicator
        _world = NCCLCommunicator(MPI, world, backend, local_rank, local_size, device_id)
    elif transport == "cuda-aware-mpi":
        _world = CudaAwareMPICommunicator(*args)
    else:
        _world = HostMPICommunicator(*args)
    return _world


def join_to_abort():
    """This process's communicator, joined only to end the job with ``abort``: for a rank that
    failed before :func:`init` (a bad option or environment variable) while the other ranks
    wait for it in MPI's start-up, where no signal reaches Python and nothing else ends them.
    No GPU or transport is chosen (what failed may be the choice itself); the result is good
    for ``rank``, ``size``, ``is_root`` and ``abort``. After :func:`init`, its communicator.

    Raises:
        RuntimeError: without mpi4py, as :func:`init`.
    """
    if _world is not None:
        return _world
    MPI = import_mpi()
    from nnfs.distributed.comm import HostMPICommunicator
    return HostMPICommunicator(MPI, MPI.COMM_WORLD)


def _transport_name(transport):
    source = "argument"
    if transport is None:
        transport, source = os.environ.get(ENV_TRANSPORT, "auto"), f"environment variable {ENV_TRANSPORT}"
    name = str(transport).strip().lower() or "auto"
    if name not in TRANSPORTS:
        raise ValueError(
            f"nnfs.distributed: unknown transport {transport!r} (from {source}); "
            f"expected one of: {', '.join(TRANSPORTS)}")
    return name
