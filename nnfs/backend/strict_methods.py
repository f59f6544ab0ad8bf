"""cupy.ndarray's methods on the strict stand-in's array, each behind CuPy's parameters.

Every method that ``cupy_api.json`` records for ``cupy.ndarray`` is put on
:class:`~nnfs.backend.strict_array.StrictArray`: most run NumPy's method of the same name
on the array inside; those that read values on the host (``item``, ``tolist``, ``get``,
``tobytes``, ...) pass the :func:`~nnfs.backend.strict_guard.no_sync` guard first; a few
follow CuPy where it differs (``take`` wraps indices, ``astype`` takes only ``casting=None``);
the ones without a NumPy counterpart (``scatter_add``, ``toDlpack``, ...) raise
NotImplementedError rather than pretend.
"""

import numpy as np

from nnfs.backend import cupy_api
from nnfs.backend.strict_array import _SCALARS, StrictArray, check_call, plain, to_host, wrap
from nnfs.backend.strict_guard import check_sync, count_operation

# -- the methods: cupy.ndarray's, with its parameters --------------------------------------------

def _not_modelled(qualified):
    def refuse(self, *args, **kwargs):
        raise NotImplementedError(
            f"{qualified} exists in CuPy, but the strict backend does not model it")
    return refuse


def _method(name, params):
    qualified = f"cupy.ndarray.{name}"
    numpy_method = getattr(np.ndarray, name, None)
    if numpy_method is None:
        return _not_modelled(qualified)
    params = tuple(params) if params is not None else None
    # Methods with an order argument (copy, astype, ravel, ...) lay out their result as
    # NumPy does (so does CuPy); any other new array comes out C-ordered, as on CuPy.
    c_order = params is not None and "order=" not in params

    def method(self, *args, **kwargs):
        check_call(qualified, params, args, kwargs)
        result = numpy_method(self._array, *plain(args), **plain(kwargs))
        return wrap(result, c_order, (self._array,))

    method.__name__ = name
    return method


def _item(self):
    check_sync("item() of a device array")
    return self._array.item()


def _tolist(self):
    check_sync("tolist() of a device array")
    return self._array.tolist()


def _get(self, stream=None, order="C", out=None, blocking=True):
    return to_host(self, order, out, "get() of a device array")


def _set(self, arr, stream=None):
    self._array[...] = arr


def _astype(self, dtype, order="K", casting=None, subok=None, copy=True):
    # casting and subok are refused unless None, as CuPy does (cupy_api.REFUSED_UNLESS_NONE);
    # CuPy casts as NumPy's default, "unsafe".
    count_operation()
    return StrictArray._of(self._array.astype(dtype, order=order, casting="unsafe", copy=copy))


def _take(self, indices, axis=None, out=None):
    from nnfs.backend.strict_namespace import CUPY
    return CUPY.take(self, indices, axis=axis, out=out)


def _fill(self, value):
    if not isinstance(value, _SCALARS) and not (isinstance(value, StrictArray) and value.ndim == 0):
        raise TypeError(f"cupy.ndarray.fill: a scalar is expected, got {type(value).__name__}")
    self._array.fill(plain(value))


def _host_method(name):
    numpy_method = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        check_sync(f"{name}() of a device array")
        return numpy_method(self._array, *args, **kwargs)
    method.__name__ = name
    return method


_OVERRIDES = {"item": _item, "tolist": _tolist, "get": _get, "set": _set, "astype": _astype,
              "take": _take, "fill": _fill}
_HOST_METHODS = ("tobytes", "tofile", "dump", "dumps")


def _checked(name, params, method):
    """``method`` behind the argument check of cupy.ndarray's method ``name``."""
    params = tuple(params) if params is not None else None

    def checked(self, *args, **kwargs):
        cupy_api.check_arguments(f"cupy.ndarray.{name}", params, args, kwargs)
        return method(self, *args, **kwargs)
    checked.__name__ = name
    return checked


def _install_methods():
    for name, params in cupy_api.ndarray_methods().items():
        if name in _OVERRIDES:
            setattr(StrictArray, name, _checked(name, params, _OVERRIDES[name]))
        elif name in _HOST_METHODS:
            setattr(StrictArray, name, _host_method(name))
        else:
            setattr(StrictArray, name, _method(name, params))
    for name in cupy_api.ndarray_attributes() - set(dir(StrictArray)):
        # cupy.ndarray.data (a device pointer), .device, .flat, .cstruct: nothing on the CPU
        # stands for them, so they are refused rather than faked.
        setattr(StrictArray, name, property(_not_modelled(f"cupy.ndarray.{name}")))


_install_methods()
