"""The strict stand-in's errors and its guard against host reads.

:class:`HostArrayError` is what mixing a host array with a device array raises (CuPy
raises a TypeError there too). :func:`no_sync` forbids, for a block, every read of a
device value on the host: on a GPU each such read waits for all the queued work, and
a training step must not do one. The strict arrays call :func:`check_sync` wherever
they hand a value to the host, and count their operations for tests
(:func:`operation_count`).
"""

import contextlib
import threading

__all__ = ["HostArrayError", "HostSyncError", "no_sync", "check_sync", "operation_count", "count_operation"]


class HostArrayError(TypeError):
    """A host (plain NumPy) array or a list met a device array without an explicit transfer."""


class HostSyncError(RuntimeError):
    """A device value was read on the host inside :func:`no_sync` (a device synchronisation)."""


# -- the no-synchronisation guard ------------------------------------------------------------------

_state = threading.local()
_operations = [0]  # every array operation, for tests that count them


@contextlib.contextmanager
def no_sync():
    """Within the block (this thread), reading a strict array's values on the host raises.

    Wrap a training step in it to prove that the step never waits for the device::

        with no_sync():
            loss = net.loss(net(X), y)
            net.backward()
            optimizer.step()
    """
    _state.forbidden = getattr(_state, "forbidden", 0) + 1
    try:
        yield
    finally:
        _state.forbidden -= 1


def check_sync(what):
    """Raise :class:`HostSyncError` for ``what`` (a host read) inside :func:`no_sync`."""
    if getattr(_state, "forbidden", 0):
        raise HostSyncError(
            f"{what} reads device values on the host, which waits for the device (a "
            "synchronisation), inside no_sync(); keep the value on the device")


def operation_count():
    """How many strict-array operations (calls, indexing, methods) ran so far in this process."""
    return _operations[0]


def count_operation():
    """Count one strict-array operation (a call, an indexing, a method)."""
    _operations[0] += 1
