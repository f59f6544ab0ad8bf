"""The strict stand-in's array module: CuPy 14's names over NumPy's implementations.

``StrictBackend.xp`` is :data:`CUPY`, a model of the ``cupy`` module: a name
exists if CuPy 14 has it (``cupy_api.json``), a call binds if CuPy's parameters
take its arguments, and the work is done by the NumPy function of the same name
on the arrays inside the strict arrays. So ``xp.errstate`` and ``xp.sum(d,
initial=0)`` fail here as they fail on a GPU, and so does ``xp.asarray`` of a
NumPy array (the only way onto this device is the explicit ``Backend.asarray``,
so that a hidden transfer in a layer is found). The submodules CuPy has and
nnfs may use (``linalg``, ``random``, ``fft``, ``lib.stride_tricks``) are modelled
the same way. A name CuPy has but this model does not cover (``cupy.cuda``,
``cupy.RawKernel``, ``cupy.random.default_rng``, ...) raises NotImplementedError
rather than behaving like something it is not.
"""

import numpy as np

from nnfs.backend import cupy_api
from nnfs.backend.strict_array import (
    StrictArray, StrictUfunc, _ufunc, check_call, plain, to_host, wrap, wrap_indices)
from nnfs.backend.strict_guard import check_sync

__all__ = ["StrictNamespace", "CUPY"]

# Names NumPy 2 dropped that CuPy still has.
_OLD_CONSTANTS = {"Inf": np.inf, "Infinity": np.inf, "PINF": np.inf, "infty": np.inf, "NINF": -np.inf,
                  "NAN": np.nan, "NaN": np.nan, "NZERO": -0.0, "PZERO": 0.0}
# Constants and types that would hand out host arrays or host generators.
_HOST_MAKERS = {"c_", "r_", "mgrid", "ogrid", "flatiter", "broadcast", "vectorize", "poly1d",
                "ndindex", "DataSource", "format_parser", "default_rng", "RandomState",
                "BitGenerator", "get_random_state", "set_random_state"}


class _NotModelled:
    """Stands for a CuPy name that the strict backend does not reproduce: using it raises."""

    def __init__(self, qualified):
        self.qualified = qualified

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f"{self.qualified} exists in CuPy, but the strict backend does not model it")

    def __getattr__(self, name):
        if name.startswith("_"):  # copy, pickle and introspection probe these: no such thing
            raise AttributeError(name)
        self(name)

    def __repr__(self):
        return f"<{self.qualified}: not modelled by the strict backend>"


class StrictNamespace:
    """The CuPy module ``qualified`` (``"cupy"``, ``"cupy.linalg"``, ...) over NumPy's ``module``."""

    def __init__(self, qualified, module):
        self.__name__ = qualified
        self._numpy = module
        self._names = cupy_api.module_names(qualified)

    def __getattr__(self, name):
        if name.startswith("_"):  # the instance's own fields and Python's protocols
            raise AttributeError(name)
        entry = self._names.get(name)
        if entry is None:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r}: CuPy "
                f"{cupy_api.load()['cupy_version']} has no {self.__name__}.{name} (the strict "
                "backend refuses what CuPy refuses)")
        value = self._build(name, entry)
        self.__dict__[name] = value  # built once
        return value

    def __dir__(self):
        return sorted(self._names)

    def __repr__(self):
        return f"<strict model of module {self.__name__!r}>"

    def _build(self, name, entry):
        qualified = f"{self.__name__}.{name}"
        kind = entry["kind"]
        found = getattr(self._numpy, name, None)
        if name in _HOST_MAKERS:
            return _NotModelled(qualified)
        if kind == "module":
            if cupy_api.module_names(qualified) is None or found is None:
                return _NotModelled(qualified)
            return StrictNamespace(qualified, found)
        if kind == "ufunc":
            return _ufunc(name) if isinstance(found, np.ufunc) else _NotModelled(qualified)
        if kind == "type":
            if name == "ndarray":
                return StrictArray
            if name == "ufunc":
                return StrictUfunc
            if isinstance(found, type) and (issubclass(found, (np.generic, np.dtype, BaseException))
                                            or found in (np.iinfo, np.finfo)):
                return found
            return _NotModelled(qualified)
        if kind == "constant":
            if name in _OLD_CONSTANTS:
                return _OLD_CONSTANTS[name]
            return found if found is not None else _NotModelled(qualified)
        params = entry.get("params")
        override = _OVERRIDES.get(qualified)
        if override is not None:
            return _checked(qualified, params, override, refuse=qualified not in _TAKE_HOST_ARRAYS)
        if found is None or not callable(found):
            return _NotModelled(qualified)
        return _function(qualified, found, params, _OPERAND_CHECKS.get(qualified))


def _function(qualified, numpy_function, params, check_operands=None):
    """``numpy_function`` behind CuPy's parameters, refusing host arrays, returning strict arrays;
    ``check_operands(qualified, arguments)`` refuses what else CuPy's code refuses, given the
    arguments by CuPy's parameter names (a joined sequence may come by keyword, after others)."""
    params = tuple(params) if params is not None else None
    # As for the methods: a function with an order argument lays out its result as NumPy
    # does; any other new array is C-ordered, as CuPy allocates it.
    c_order = params is not None and "order=" not in params and not any(
        p.startswith("**") for p in params)

    # CuPy's default for these is None, which NumPy's functions do not take: not passed on.
    defaults_only = cupy_api.REFUSED_UNLESS_NONE.get(qualified, ())

    zero_d = qualified in _ZERO_D_RESULTS

    def function(*args, **kwargs):
        arguments = check_call(qualified, params, args, kwargs)
        if check_operands is not None:
            check_operands(qualified, arguments)
        if defaults_only:  # most functions have none: no copy of their arguments
            kwargs = {k: v for k, v in kwargs.items() if not (v is None and k in defaults_only)}
        plain_args, plain_kwargs = plain(args), plain(kwargs)
        result = numpy_function(*plain_args, **plain_kwargs)
        if zero_d and isinstance(result, (bool, int)):
            result = np.asarray(result)
        return wrap(result, c_order, (plain_args, tuple(plain_kwargs.values())))

    function.__name__ = qualified.rsplit(".", 1)[1]
    function.__qualname__ = qualified
    return function


def _checked(qualified, params, implementation, refuse=True):
    params = tuple(params) if params is not None else None

    def function(*args, **kwargs):
        check_call(qualified, params, args, kwargs, refuse)
        return implementation(*args, **kwargs)

    function.__name__ = qualified.rsplit(".", 1)[1]
    function.__qualname__ = qualified
    return function


# -- where CuPy behaves differently from NumPy ------------------------------------------------

# NumPy answers these with a Python bool or int (count_nonzero without an axis); CuPy with a 0-d
# device array, which an `if` or an int() then has to wait for (cupy/_logic/comparison.py,
# cupy/_sorting/count.py).
_ZERO_D_RESULTS = {"cupy.allclose", "cupy.array_equal", "cupy.array_equiv", "cupy.count_nonzero"}

def _axis_length(a, axis):
    return a.size if axis is None else a.shape[axis]


def _take_along_axis(a, indices, axis):
    # CuPy indexes with the indices as they are: out-of-range ones wrap around.
    length = _axis_length(a, axis)
    wrapped = indices._array % length if length else indices._array
    return wrap(np.take_along_axis(a._array, wrapped, axis=axis), c_order=True)


def _take(a, indices, axis=None, out=None):
    index = wrap_indices((_axis_length(a, axis),), (indices,), "cupy.take")[0]
    result = np.take(a._array, index, axis=axis, out=plain(out))
    return out if out is not None else wrap(result, c_order=True)


def _put(a, ind, v, mode="wrap"):  # CuPy's default mode is "wrap", NumPy's "raise"
    np.put(a._array, plain(ind), plain(v), mode=mode)


def _asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if not isinstance(a, StrictArray):
        return np.asarray(a, order=order)
    return to_host(a, order, out, "cupy.asnumpy of a device array")


def _where(condition, x=None, y=None):
    if (x is None) != (y is None):  # as CuPy; NumPy would take the None as an object value
        raise ValueError("Must give either both or none of x and y")
    if x is None and y is None:  # the condition alone is nonzero(condition): a synchronisation
        check_sync("cupy.where with the condition alone (it is cupy.nonzero)")
        return wrap(np.where(condition._array))
    if not isinstance(condition, StrictArray):  # CuPy calls condition.astype("?")
        raise AttributeError(f"cupy.where: the condition must be a device array, got "
                             f"{type(condition).__name__} (CuPy calls its astype method)")
    return wrap(np.where(condition._array, plain(x), plain(y)), c_order=True)


def _device_arrays_only(qualified, arguments):
    # cupy.concatenate takes device arrays of one or more dimensions only, and cupy.stack hands
    # each to expand_dims, which takes a device array only (concatenate_method and _expand_dims
    # in cupy/_core/_routines_manipulation.pyx): NumPy turns numbers and lists into arrays.
    # With axis=None, concatenate ravels each array first (cupy/_manipulation/join.py), so a
    # zero-dimensional one is joined as one of one element.
    flattened = qualified == "cupy.concatenate" and "axis" in arguments and arguments["axis"] is None
    for array in arguments.get("tup", ()):
        if not isinstance(array, StrictArray):
            raise TypeError(f"{qualified}: only device arrays can be joined, got {type(array).__name__} "
                            "(CuPy 14 raises here too; make it one with xp.asarray or xp.full)")
        if qualified == "cupy.concatenate" and array.ndim == 0 and not flattened:
            raise TypeError(f"{qualified}: zero-dimensional arrays cannot be concatenated (CuPy 14's "
                            "TypeError; use cupy.stack)")


def _nested_shape(value):
    """The shape of a (nested) sequence of device arrays of one shape, as CuPy joins them on the
    device; None for anything else."""
    if isinstance(value, StrictArray):
        return value.shape
    if not isinstance(value, (list, tuple)) or not value:
        return None
    shapes = {_nested_shape(item) for item in value}
    return (len(value),) + shapes.pop() if len(shapes) == 1 and None not in shapes else None


def _has_device_array(value):
    return isinstance(value, StrictArray) or (
        isinstance(value, (list, tuple)) and any(_has_device_array(item) for item in value))


def _sequence_of_device_arrays(qualified, arguments):
    # cupy.array joins a (nested) sequence on the device only when every item is a device array
    # and they all have one shape (_array_info_from_nested_sequence in cupy/_core/core.pyx);
    # anything else goes to numpy.array on the host, which calls each device array's __array__.
    value = arguments.get("obj" if qualified == "cupy.array" else "a")
    if isinstance(value, (list, tuple)) and _has_device_array(value) and _nested_shape(value) is None:
        raise TypeError(
            f"{qualified}: a sequence that mixes device arrays with numbers, lists or arrays of "
            "other shapes is built on the host, and implicit conversion of its device arrays to "
            "NumPy is not allowed (as on CuPy 14); use xp.stack of device arrays")


_OPERAND_CHECKS = {"cupy.concatenate": _device_arrays_only, "cupy.stack": _device_arrays_only,
                   "cupy.array": _sequence_of_device_arrays, "cupy.asarray": _sequence_of_device_arrays,
                   "cupy.asanyarray": _sequence_of_device_arrays}


def _get_array_module(*args):
    return CUPY if any(isinstance(a, StrictArray) for a in args) else np


_OVERRIDES = {"cupy.take_along_axis": _take_along_axis, "cupy.take": _take, "cupy.put": _put,
              "cupy.where": _where,
              "cupy.asnumpy": _asnumpy, "cupy.get_array_module": _get_array_module}

# These two take host arrays on CuPy as well.
_TAKE_HOST_ARRAYS = {"cupy.asnumpy", "cupy.get_array_module"}

CUPY = StrictNamespace("cupy", np)
