"""A stand-in device backend for CPU-only machines, strict about mixing like CuPy.

CuPy refuses to combine its arrays with NumPy arrays (``TypeError``), so a
NumPy array that leaks into a GPU run crashes there, on a machine the
continuous integration never sees. This backend brings that check to the
CPU: its arrays are NumPy arrays of the subclass :class:`StrictArray`, and
every operation that mixes one with a plain NumPy array (or a list) raises
:class:`HostArrayError`. Its array module refuses plain NumPy arrays too, so
the only way onto this "device" is the explicit ``Backend.asarray``.

Select it with ``NNFS_BACKEND=strict`` or ``net.to("strict")``; it is for
tests, not for speed.
"""

import types

import numpy as np

from nnfs.backend.base import Backend


class HostArrayError(TypeError):
    """A host (plain NumPy) array met a device array without an explicit transfer."""


def _is_host_array(x):
    return isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and not isinstance(x, StrictArray))


def _refuse_host(values, what):
    for value in values:
        if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
            _refuse_host(value, what)
        elif _is_host_array(value) and not isinstance(value, (list, tuple)):
            raise HostArrayError(
                f"{what}: a NumPy array of shape {value.shape} met a device array; "
                "move it with Backend.asarray (CuPy raises here too)")


def _wrap(result):
    if isinstance(result, StrictArray):
        return result
    if isinstance(result, np.ndarray):
        return result.view(StrictArray)
    if isinstance(result, np.generic):
        # CuPy reductions give 0-d device arrays, never host scalars.
        return np.asarray(result).view(StrictArray)
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, StrictArray) else x


class StrictArray(np.ndarray):
    """A NumPy array that behaves like a device array: no silent mixing with host arrays."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method == "at":  # ufunc.at(a, index, b): the index may be a tuple of device arrays
            index = inputs[1] if isinstance(inputs[1], tuple) else (inputs[1],)
            _refuse_host(index, f"numpy.{ufunc.__name__}.at index")
            index = tuple(_plain(i) for i in index)
            inputs = (inputs[0], index) + inputs[2:]
            checked = inputs[:1] + inputs[2:]
        else:
            checked = inputs
        for value in checked:
            if _is_host_array(value):
                raise HostArrayError(
                    f"numpy.{ufunc.__name__}: a host value of type {type(value).__name__} met a "
                    "device array; move it with Backend.asarray (CuPy raises here too)")
        inputs = tuple(_plain(x) for x in inputs)
        if out is not None:
            _refuse_host(out, f"numpy.{ufunc.__name__} out=")
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host(args, f"numpy.{func.__name__}")
        _refuse_host(kwargs.values(), f"numpy.{func.__name__}")
        plain_args = [
            [_plain(v) for v in a] if isinstance(a, (list, tuple)) else _plain(a) for a in args]
        plain_kwargs = {k: _plain(v) for k, v in kwargs.items()}
        return _wrap(func(*plain_args, **plain_kwargs))

    def __getitem__(self, index):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        return _wrap(super().__getitem__(index))

    def __setitem__(self, index, value):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        _refuse_host((value,), "item assignment")
        super().__setitem__(index, value)


class _StrictModule:
    """Wraps a NumPy (sub)module: arrays it makes are StrictArrays, host arrays are refused."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        if name == "ndarray":
            return StrictArray
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            return _StrictModule(attr)
        if isinstance(attr, np.ufunc):
            return _StrictUfunc(attr)
        if callable(attr) and not isinstance(attr, type):
            qualified = f"{self._module.__name__}.{name}"

            def strict_call(*args, **kwargs):
                _refuse_host(args, qualified)
                _refuse_host(kwargs.values(), qualified)
                return _wrap(attr(*args, **kwargs))

            strict_call.__name__ = name
            return strict_call
        return attr


class _StrictUfunc:
    """A ufunc whose call and methods (``reduce``, ``at``, ...) refuse host arrays."""

    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        _refuse_host(args, f"numpy.{self._ufunc.__name__}")
        return _wrap(self._ufunc(*args, **kwargs))

    def __getattr__(self, name):
        method = getattr(self._ufunc, name)
        if not callable(method):
            return method

        def strict_method(*args, **kwargs):
            _refuse_host(args, f"numpy.{self._ufunc.__name__}.{name}")
            return _wrap(method(*args, **kwargs))

        return strict_method


class StrictBackend(Backend):
    name = "strict"
    xp = _StrictModule(np)
    is_device = True

    @staticmethod
    def recognises(x):
        return isinstance(x, StrictArray)

    def from_host(self, x, dtype=None):
        # Always a copy, as a real transfer is: no memory shared with the host array.
        return np.array(x, dtype=dtype).view(StrictArray)

    def to_numpy(self, x):
        return np.array(_plain(x))
