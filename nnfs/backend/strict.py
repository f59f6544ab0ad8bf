"""A stand-in device backend for CPU-only machines that refuses what CuPy 14 refuses.

A NumPy array that leaks into a GPU run, a NumPy-only keyword, a label that CuPy
silently wraps around, or a ``float()`` inside the training step would all pass
on the CPU and fail (or slow down, or compute the wrong thing) on the first GPU
run, on a machine the continuous integration never sees. This backend brings
those rules to the CPU, so that a test suite that passes on it has met them:

- its arrays (:class:`~nnfs.backend.strict_array.StrictArray`) offer exactly
  ``cupy.ndarray``'s methods and parameters, its array module
  (:data:`~nnfs.backend.strict_namespace.CUPY`) exactly CuPy's names and
  parameters, as recorded from an installed CuPy 14 in ``cupy_api.json``
  (``scripts/make_cupy_api.py``);
- mixing with NumPy arrays or lists raises :class:`HostArrayError`, and NumPy
  cannot convert its arrays implicitly (``numpy.asarray``, ``numpy.testing``):
  the only way on is ``Backend.asarray``, the only way off ``Backend.to_numpy``;
- elementwise results are C-ordered and out-of-range integer indices wrap
  around, as on CuPy;
- :func:`no_sync` forbids every host read of device values for a block, and every
  operation CuPy synchronises on (a boolean mask, ``nonzero``, ...), so a test can
  prove that a whole training step never waits for the device.

What it cannot prove: anything about real GPU kernels (their speed, their
rounding, their memory), and the names CuPy has that it does not model (they
raise NotImplementedError). Select it with ``NNFS_BACKEND=strict`` or
``net.to("strict")``; it is for tests, not for speed.
"""

import numpy as np

from nnfs.backend.base import Backend
from nnfs.backend.strict_array import StrictArray
from nnfs.backend.strict_guard import HostArrayError, HostSyncError, check_sync, no_sync, operation_count
from nnfs.backend.strict_namespace import CUPY

__all__ = ["StrictBackend", "StrictArray", "HostArrayError", "HostSyncError", "no_sync",
           "operation_count"]


class StrictBackend(Backend):
    name = "strict"
    xp = CUPY
    is_device = True

    @staticmethod
    def recognises(x):
        return isinstance(x, StrictArray)

    def from_host(self, x, dtype=None):
        # Always a copy, as a real transfer is: no memory shared with the host array.
        return StrictArray._of(np.array(x, dtype=dtype))

    def to_numpy(self, x):
        check_sync("Backend.to_numpy of a device array")
        return np.array(x._array)
