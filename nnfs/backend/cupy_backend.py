"""The GPU backend: CuPy on an NVIDIA GPU, imported only when asked for."""

import sys

from nnfs.backend.base import Backend

INSTALL_HINT = (
    "install the CuPy wheel that matches your CUDA driver, e.g. "
    "`pip install -e .[gpu]` (cupy-cuda12x) or `pip install -e .[gpu-cuda13]` (cupy-cuda13x), "
    "or run on the CPU with NNFS_BACKEND=numpy")


def _import_cupy():
    """Import CuPy and prove a GPU is usable, with errors that say which part is missing."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(f"NNFS_BACKEND=cupy, but CuPy is not installed: {INSTALL_HINT}") from error
    # `import cupy` succeeds on a machine without a GPU; the first allocation would
    # then fail with a raw CUDARuntimeError, so ask up front.
    try:
        usable = cupy.is_available()
    except Exception:  # driver libraries missing or broken
        usable = False
    if not usable:
        raise RuntimeError(
            "NNFS_BACKEND=cupy, but CuPy found no usable NVIDIA GPU (no device, or no working "
            "CUDA driver); check `nvidia-smi`, or run on the CPU with NNFS_BACKEND=numpy")
    return cupy


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
        self.xp.cuda.Stream.null.synchronize()

    def peak_memory_bytes(self):
        # The pool keeps freed blocks for reuse, so what it holds is its high-water mark.
        return self.xp.get_default_memory_pool().total_bytes()

    def device_count(self):
        return self.xp.cuda.runtime.getDeviceCount()

    def use_device(self, index):
        self.xp.cuda.Device(index).use()

    def device_of(self, x):
        return x.device.id
