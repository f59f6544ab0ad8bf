"""The GPU backend: CuPy on an NVIDIA GPU, imported only when asked for.

Everything nnfs needs from CuPy beyond the array module lives here, so that the
rest of the library (the distributed transports, the benchmark) asks the backend
instead of reaching into ``cupy.cuda``: the current stream, the NCCL bindings,
the CUDA version CuPy was built for, and the peak memory of a piece of work.
"""

import importlib
import sys
import warnings

from nnfs.backend.base import Backend

INSTALL_HINT = (
    "install the CuPy wheel for your CUDA version, e.g. `pip install -e .[gpu-cuda13]` "
    "(cupy-cuda13x) or `pip install -e .[gpu-cuda12]` (cupy-cuda12x), with CuPy's `[ctk]` "
    "extra where no CUDA toolkit is installed; or run on the CPU with NNFS_BACKEND=numpy")


def _import_cupy():
    """Import CuPy and prove a GPU is usable, with errors that say which part is missing."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(f"CuPy is not installed (the cupy backend needs it): {INSTALL_HINT}") from error
    # `import cupy` succeeds on a machine without a GPU; the first allocation would
    # then fail with a raw CUDARuntimeError, so ask up front.
    try:
        usable = cupy.is_available()
    except Exception:  # driver libraries missing or broken
        usable = False
    if not usable:
        raise RuntimeError(
            "CuPy found no usable NVIDIA GPU for the cupy backend (no device, or no working "
            "CUDA driver); check `nvidia-smi`, or run on the CPU with NNFS_BACKEND=numpy")
    return cupy


def find_nccl():
    """CuPy's NCCL bindings and, when they are unusable, why: ``(module or None, reason)``.

    Since CuPy 9 the bindings are the submodule ``cupy.cuda.nccl``, which ``import cupy``
    does not import and which sets ``available = False`` when the NCCL library cannot
    be loaded (CuPy then warns once; the reason goes into the returned text instead, and
    is remembered, since a second import does not warn again).
    """
    cupy = sys.modules.get("cupy")
    if _found.get("cupy") is not cupy or cupy is None:
        _found.update(cupy=cupy, result=_import_nccl())
    return _found["result"]


_found = {}


def _import_nccl():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            nccl = importlib.import_module("cupy.cuda.nccl")
        except ImportError as error:
            return None, f"this CuPy has no cupy.cuda.nccl ({error})"
    if getattr(nccl, "available", hasattr(nccl, "NcclCommunicator")):
        return nccl, None
    lines = [line.strip() for w in caught for line in str(w.message).splitlines()]
    reason = next((line for line in lines if line.startswith("Reason:")),
                  "the NCCL library did not load (cupy.cuda.nccl.available is False)")
    return None, reason.removeprefix("Reason:").strip()


class CupyBackend(Backend):
    name = "cupy"
    is_device = True

    def __init__(self):
        self.xp = _import_cupy()

    @staticmethod
    def recognises(x):
        # A CuPy array can only exist once CuPy is imported: never import it just to ask.
        cupy = sys.modules.get("cupy")
        return cupy is not None and isinstance(x, cupy.ndarray)

    def from_host(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return self.xp.asnumpy(x)

    def synchronize(self):
        # The current stream: the one nnfs's kernels were queued on (inside a
        # `with cupy.cuda.Stream():` block that is not the null stream).
        self.xp.cuda.get_current_stream().synchronize()

    def current_stream(self):
        """The handle (``cudaStream_t`` as an int) of CuPy's current stream, for NCCL calls."""
        return self.xp.cuda.get_current_stream().ptr

    def device_pointer(self, x):
        return x.data.ptr

    def cuda_major(self):
        """The CUDA major version this CuPy was built for (12 for cupy-cuda12x, 13 for cupy-cuda13x)."""
        return self.xp.cuda.runtime.runtimeGetVersion() // 1000

    def nccl(self):
        return find_nccl()[0]

    def nccl_problem(self):
        """Why :meth:`nccl` is None, with what to install; None when NCCL is usable."""
        nccl, reason = find_nccl()
        if nccl is not None:
            return None
        return (f"{reason}; install NCCL for CUDA {self.cuda_major()} with "
                f"`pip install nvidia-nccl-cu{self.cuda_major()}`")

    def measure_peak_memory(self, run):
        """Bytes held by live CuPy arrays at the peak of ``run()``.

        CuPy's pool calls a memory hook's ``malloc_postprocess`` each time it hands
        out a block; its ``used_bytes()`` then counts every block held by a live array,
        rounded up to CuPy's 512-byte unit. That is the measure
        ``torch.cuda.max_memory_allocated`` takes for PyTorch: memory in use by arrays,
        not what the pool caches for reuse (``total_bytes``), and not the workspaces
        that libraries such as cuBLAS allocate outside the pool. The hook runs on every
        allocation, so measure outside of timed code.
        """
        pool = self.xp.get_default_memory_pool()

        class PeakTracker(self.xp.cuda.MemoryHook):
            name = "nnfs_peak_memory"

            def __init__(self):
                self.peak = pool.used_bytes()

            def malloc_postprocess(self, **kwargs):
                self.peak = max(self.peak, pool.used_bytes())

        with PeakTracker() as tracker:
            run()
            self.synchronize()
        return tracker.peak

    def device_count(self):
        return self.xp.cuda.runtime.getDeviceCount()

    def use_device(self, index):
        self.xp.cuda.Device(index).use()

    def device_of(self, x):
        return x.device.id

