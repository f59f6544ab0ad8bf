"""The strict stand-in's array and ufuncs: NumPy underneath, CuPy 14's rules on top.

A :class:`StrictArray` holds a NumPy array and offers what ``cupy.ndarray`` offers,
no more (the names and parameters recorded in ``cupy_api.json``), with CuPy's
behaviour where it differs from NumPy's:

- **No implicit host conversion.** ``numpy.asarray(d)`` (hence ``numpy.testing``,
  ``numpy.lib.stride_tricks.as_strided`` and any NumPy function that converts its
  input) raises TypeError, as CuPy's ``__array__`` does; so does mixing with a
  NumPy array or a list in an operation (:class:`HostArrayError`). NumPy functions
  and ufuncs applied to device arrays dispatch to the device versions, as CuPy's
  ``__array_function__`` and ``__array_ufunc__`` do, or fail where CuPy has none.
- **Operands.** A ufunc takes device arrays and scalars only (a list or a 0-d NumPy
  array is refused) and only CuPy's keywords (``out``, ``dtype``, ``casting``: no
  ``where=``, no ``order=``). Its ``reduce``, ``accumulate``, ``reduceat`` and ``at``
  exist for the ufuncs (and ``at`` for the dtypes) CuPy implements them for.
- **Elementwise results are C-ordered** whatever the inputs' layout: CuPy's
  elementwise kernels always allocate a C-contiguous output, where NumPy's ufuncs
  follow the inputs' layout (``order="K"``). Functions that take an ``order``
  argument (``copy``, ``astype``, ``*_like``, ``matmul``) keep NumPy's layout rule,
  which CuPy shares; other new arrays are C-ordered too.
- **Out-of-range integer indices wrap around** (``d[[0, 5]]`` on 3 rows reads rows 0
  and 2), in indexing, assignment, ``take``, ``take_along_axis`` and ``ufunc.at``:
  CuPy does not check indices on the device, where NumPy raises IndexError.
- **Reductions give 0-d device arrays**, never host scalars (so do ``allclose``,
  ``array_equal`` and ``count_nonzero``, where NumPy gives a Python bool or int); ``item()`` takes no
  index, and a 0-d array is not a Python index (no ``__index__``).
- **Host reads can be forbidden.** Inside :func:`no_sync`, everything that reads
  device values on the host (``float``, ``int``, ``bool``, ``item``, ``tolist``,
  ``get``, printing, ``Backend.to_numpy``) raises :class:`HostSyncError`, and so does
  every operation CuPy synchronises on (indexing with a boolean mask, ``nonzero``,
  ``unique``, ...: ``cupy_api.SYNCHRONIZING``): on a GPU each of these waits for the device.
"""

import numpy as np

from nnfs.backend import cupy_api
from nnfs.backend.strict_guard import HostArrayError, check_sync, count_operation

__all__ = ["StrictArray", "StrictUfunc", "plain", "wrap", "refuse_host", "wrap_indices", "check_mask"]


# -- moving between the plain NumPy world and the strict one ------------------------------------

_SCALARS = (bool, int, float, complex, np.generic)


def refuse_host(values, what):
    """Raise :class:`HostArrayError` if a NumPy array hides in ``values`` (nested lists too)."""
    for value in values:
        if isinstance(value, (list, tuple)):
            refuse_host(value, what)
        elif isinstance(value, np.ndarray):
            raise HostArrayError(
                f"{what}: a NumPy array of shape {value.shape} met a device array; move it with "
                "Backend.asarray (CuPy raises here too)")


def check_call(qualified, params, args, kwargs, refuse=True):
    """What every call into the stand-in checks before it runs: counts it (for the no-sync
    guard's tests), refuses keywords CuPy 14 does not take (``params``, from cupy_api.json),
    and, unless ``refuse`` is False, NumPy arrays among the arguments; a call CuPy synchronises
    on (cupy_api.SYNCHRONIZING, or SYNCHRONIZING_WHEN for these arguments) is one for the
    no-sync guard. Returns the arguments by parameter name (empty where ``params`` is None)."""
    count_operation()
    arguments = cupy_api.check_arguments(qualified, params, args, kwargs)
    if refuse:
        refuse_host(args, qualified)
        refuse_host(kwargs.values(), qualified)
    if qualified in cupy_api.SYNCHRONIZING:
        check_sync(f"{qualified} (CuPy synchronises on it)")
    when = cupy_api.SYNCHRONIZING_WHEN.get(qualified)
    if when is not None and when[1](arguments):
        check_sync(f"{qualified} {when[0]} (CuPy synchronises on it)")
    return arguments


def to_host(array, order, out, what):
    """A device array's values as a NumPy array (into ``out`` when given): a synchronisation."""
    check_sync(what)
    if out is not None:
        out[...] = array._array
        return out
    return np.array(array._array, order=order)


def plain(value):
    """The NumPy array inside a strict array; lists, tuples and dicts are unwrapped item by item."""
    if isinstance(value, StrictArray):
        return value._array
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _arrays_in(values):
    for value in values:
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _arrays_in(value)


def _c_ordered(result):
    """A NumPy result as a C-contiguous array (0-d for scalars), copied only when needed."""
    result = np.asarray(result)
    return result if result.flags.c_contiguous else result.copy(order="C")


def wrap(result, c_order=False, inputs=()):
    """A NumPy result as strict arrays (scalars become 0-d arrays, as CuPy's reductions give).

    With ``c_order``, a new array (one that shares no memory with ``inputs``, i.e. not a
    view) is made C-contiguous, as CuPy allocates it.
    """
    if isinstance(result, np.ndarray):
        if c_order and not result.flags.c_contiguous and not any(
                np.may_share_memory(result, x) for x in _arrays_in(inputs)):
            result = result.copy(order="C")
        return StrictArray._of(result)
    if isinstance(result, np.generic):
        return StrictArray._of(np.asarray(result))
    if isinstance(result, tuple):
        return tuple(wrap(r, c_order, inputs) for r in result)
    if isinstance(result, list):
        return [wrap(r, c_order, inputs) for r in result]
    return result


# -- indices wrap around, as on CuPy ------------------------------------------------------------

def _axes_taken(part):
    if part is None or isinstance(part, (bool, np.bool_)):
        return 0
    if isinstance(part, (StrictArray, np.ndarray)) and part.dtype.kind == "b":
        return part.ndim
    return 1


def wrap_indices(shape, index, what):
    """``index`` for NumPy, with every integer array taken modulo its axis's length.

    CuPy computes ``i % n`` on the device for integer array indices instead of
    checking them, so ``[0, 5]`` on an axis of 3 means ``[0, 2]``. Python integers
    and slices stay as they are (CuPy checks those on the host, as NumPy does).
    """
    parts = index if isinstance(index, tuple) else (index,)
    refuse_host(parts, what)
    taken = sum(_axes_taken(p) for p in parts if p is not Ellipsis)
    axis, result = 0, []
    for part in parts:
        if part is Ellipsis:
            axis += len(shape) - taken
            result.append(part)
            continue
        if isinstance(part, StrictArray):
            part = part._array
        elif isinstance(part, list):  # CuPy turns a list into a device array first
            part = np.asarray(part)
            if part.size == 0:
                part = part.astype(np.intp)
        if isinstance(part, np.ndarray) and part.dtype.kind in "iu" and axis < len(shape) \
                and shape[axis] > 0:
            part = part % shape[axis]
        axis += _axes_taken(part)
        result.append(part)
    return tuple(result)


def check_mask(index):
    """A boolean mask among the parts of ``index`` (from :func:`wrap_indices`) waits for the
    device: CuPy counts its True values on the host to size the selection, to get or to set."""
    if any(isinstance(part, np.ndarray) and part.dtype.kind == "b" for part in index):
        check_sync("indexing with a boolean mask (CuPy counts its True values on the host)")


# -- the ufuncs -----------------------------------------------------------------------------------

def _operand(value, qualified):
    if isinstance(value, StrictArray):
        return value._array
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        raise HostArrayError(
            f"{qualified}: a host value of type {type(value).__name__} met a device array; "
            "CuPy takes device arrays and scalars only (move it with Backend.asarray)")
    if isinstance(value, _SCALARS):
        return value
    raise TypeError(f"{qualified}: unsupported operand type {type(value).__name__} (CuPy raises here too)")


def _outputs(out, qualified):
    if out is None:
        return None
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if not isinstance(o, StrictArray):
            raise HostArrayError(
                f"{qualified} out=: the output must be a device array, got {type(o).__name__}")
    return tuple(o._array for o in outs)


class StrictUfunc:
    """A NumPy ufunc called as CuPy calls its ufunc: CuPy's operands, keywords and output layout.

    Args:
        name: the ufunc's name (``"add"``); ``params`` its recorded call parameters.
    """

    def __init__(self, name, params):
        self.name = self.__name__ = name
        self._numpy = getattr(np, name)
        self._params = tuple(params) if params is not None else None

    def __call__(self, *args, **kwargs):
        count_operation()
        qualified = f"cupy.{self.name}"
        cupy_api.check_arguments(qualified, self._params, args, kwargs)
        out = kwargs.pop("out", None)
        nin = self._numpy.nin
        if len(args) > nin:  # outputs given by position
            out, args = tuple(args[nin:]), args[:nin]
        inputs = [_operand(a, qualified) for a in args]
        outs = _outputs(out, qualified)
        if outs is not None:
            self._numpy(*inputs, out=outs if len(outs) > 1 else outs[0], **kwargs)
            return out if not isinstance(out, tuple) or len(out) > 1 else out[0]
        result = self._numpy(*inputs, **kwargs)
        if isinstance(result, tuple):
            return tuple(StrictArray._of(_c_ordered(r)) for r in result)
        return StrictArray._of(_c_ordered(result))

    def __getattr__(self, name):
        methods = cupy_api.ufunc_methods()
        if name in methods:
            return self._method(name, methods[name])
        if name in cupy_api.ufunc_attributes():
            return getattr(self._numpy, name)
        raise AttributeError(f"cupy.ufunc has no attribute {name!r} (CuPy 14)")

    def _method(self, name, params):
        qualified = f"cupy.{self.name}.{name}"
        numpy_method = getattr(self._numpy, name)
        params = tuple(params) if params is not None else None

        def method(*args, **kwargs):
            check_call(qualified, params, args, kwargs)
            if name in _METHOD_UFUNCS and self.name not in _METHOD_UFUNCS[name]:
                raise NotImplementedError(f"`{self.name}.{name}` is not supported yet (as on CuPy 14, "
                                          f"whose {name} exists for {', '.join(sorted(_METHOD_UFUNCS[name]))} only)")
            if name == "at":
                target = args[0]
                index = wrap_indices(target.shape, args[1], qualified)
                check_mask(index)
                if any(isinstance(part, np.ndarray) and part.dtype.kind in "iu" for part in index) \
                        and target.dtype.name not in _AT_DTYPES[self.name]:
                    raise TypeError(f"cupy.{self.name}.at only supports "
                                    f"{', '.join(sorted(_AT_DTYPES[self.name]))} as data type (CuPy 14)")
                numpy_method(target._array, index, *plain(args[2:]), **plain(kwargs))
                return None
            return wrap(numpy_method(*plain(args), **plain(kwargs)), c_order=True)

        method.__name__ = name
        return method

    def __repr__(self):
        return f"<ufunc {self.name!r} (strict)>"


# The ufunc methods CuPy 14 implements for some ufuncs only; the others raise NotImplementedError
# ("`maximum.reduce` is not supported yet": ufunc.at, reduce, accumulate and reduceat in
# cupy/_core/_kernel.pyx). reduce and accumulate are sum/prod and cumsum/cumprod; at is a scatter
# kernel, whose atomics exist for these dtypes only (_scatter_op_single in
# cupy/_core/_routines_indexing.pyx: cupy.subtract.at of float32 is a TypeError, and add, maximum
# and minimum have no int64 kernel, which the bitwise ones have).
_ATOMIC_INTEGERS = {"int32", "uint32", "uint64"}
_INTEGERS = _ATOMIC_INTEGERS | {"int64"}
_AT_DTYPES = {"add": _ATOMIC_INTEGERS | {"float16", "float32", "float64"}, "subtract": {"int32", "uint32"},
              "maximum": _ATOMIC_INTEGERS | {"float32", "float64"},
              "minimum": _ATOMIC_INTEGERS | {"float32", "float64"},
              "bitwise_and": _INTEGERS, "bitwise_or": _INTEGERS, "bitwise_xor": _INTEGERS}
_METHOD_UFUNCS = {"reduce": {"add", "multiply"}, "accumulate": {"add", "multiply"}, "reduceat": {"add"},
                  "at": set(_AT_DTYPES)}


def _ufunc(name):
    found = _UFUNCS.get(name)
    if found is None:
        params = cupy_api.module_names("cupy")[name]["params"]
        found = _UFUNCS[name] = StrictUfunc(name, params)
    return found


_UFUNCS = {}


# -- the array ------------------------------------------------------------------------------------

class _Flags:
    """CuPy's ``ndarray.flags``: the three layout flags, by attribute or by name."""

    def __init__(self, flags):
        self.c_contiguous, self.f_contiguous, self.owndata = (
            flags.c_contiguous, flags.f_contiguous, flags.owndata)

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]

    def __repr__(self):
        return (f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n"
                f"  OWNDATA : {self.owndata}")


def _binary(name, reflected=False, inplace=False):
    def operation(self, other):
        if not isinstance(other, (StrictArray, np.ndarray, list, tuple) + _SCALARS):
            return NotImplemented
        if inplace:
            return _ufunc(name)(self, other, out=self)
        return _ufunc(name)(other, self) if reflected else _ufunc(name)(self, other)
    return operation


def _unary(name):
    def operation(self):
        return _ufunc(name)(self)
    return operation


def _host_read(convert, what):
    def read(self, *args):
        check_sync(what)
        return convert(self._array, *args)
    return read


class StrictArray:
    """A device array for CPU-only machines: a NumPy array behind CuPy 14's interface and rules.

    Construct one with ``Backend.asarray`` (the explicit transfer); ``StrictArray(shape,
    dtype)`` makes an uninitialised one, as ``cupy.ndarray(shape, dtype)`` does.
    """

    __slots__ = ("_array",)
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("StrictArray: memptr and strides are not modelled")
        self._array = np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _of(cls, array):
        """Wrap a NumPy array (no copy)."""
        new = object.__new__(cls)
        new._array = array
        return new

    # -- NumPy's protocols, answered as CuPy answers them ----------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (as on CuPy): copy it to the "
            "host explicitly with nnfs.backend.to_numpy (or .get())")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        entry = cupy_api.module_names("cupy").get(ufunc.__name__)
        if entry is None or entry["kind"] != "ufunc":
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        strict = _ufunc(ufunc.__name__)
        return (strict if method == "__call__" else getattr(strict, method))(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from nnfs.backend.strict_namespace import CUPY
        namespace = CUPY
        try:
            for part in func.__module__.split(".")[1:]:
                namespace = getattr(namespace, part)
            strict = getattr(namespace, func.__name__)
        except AttributeError:
            return NotImplemented
        return strict(*args, **kwargs)

    # -- attributes ------------------------------------------------------------------------------
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: _Flags(self._array.flags))
    T = property(lambda self: StrictArray._of(self._array.T))
    mT = property(lambda self: StrictArray._of(self._array.mT))
    real = property(lambda self: StrictArray._of(self._array.real))
    imag = property(lambda self: StrictArray._of(self._array.imag))

    @property
    def base(self):
        base = self._array.base
        return StrictArray._of(base) if isinstance(base, np.ndarray) else None

    # -- container -------------------------------------------------------------------------------
    def __len__(self):
        if self._array.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._array)

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._array)))

    def __getitem__(self, index):
        count_operation()
        index = wrap_indices(self._array.shape, index, "indexing")
        check_mask(index)
        result = self._array[index]
        return wrap(result, c_order=True, inputs=(self._array,))

    def __setitem__(self, index, value):
        count_operation()
        index = wrap_indices(self._array.shape, index, "indexing")
        check_mask(index)
        if not isinstance(value, (StrictArray,) + _SCALARS):
            raise HostArrayError(
                f"item assignment: a host value of type {type(value).__name__} met a device "
                "array; move it with Backend.asarray (CuPy raises here too)")
        self._array[index] = plain(value)

    def __index__(self):
        raise TypeError(
            "a device array is not a Python index (cupy.ndarray has no __index__); "
            "int(x) reads it on the host (a synchronisation)")

    # -- host reads: allowed, but each one waits for the device ----------------------------------
    __float__ = _host_read(float, "float() of a device array")
    __int__ = _host_read(int, "int() of a device array")
    __complex__ = _host_read(complex, "complex() of a device array")
    __bool__ = _host_read(bool, "bool() of a device array (an `if` on it)")
    __repr__ = _host_read(repr, "printing a device array")
    __str__ = _host_read(str, "printing a device array")
    __format__ = _host_read(format, "formatting a device array")

    def __reduce__(self):
        check_sync("pickling a device array")
        return (_from_host, (self._array.copy(),))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # -- operators: the ufuncs -------------------------------------------------------------------
    __neg__, __pos__ = _unary("negative"), _unary("positive")
    __abs__, __invert__ = _unary("absolute"), _unary("invert")
    __matmul__ = lambda self, other: _matmul(self, other)  # noqa: E731
    __rmatmul__ = lambda self, other: _matmul(other, self)  # noqa: E731

    def __imatmul__(self, other):
        return _matmul(self, other, out=self)

    def __pow__(self, other, mod=None):
        return _ufunc("power")(self, other)

    def __rpow__(self, other, mod=None):
        return _ufunc("power")(other, self)

    def __ipow__(self, other):
        return _ufunc("power")(self, other, out=self)

    def __divmod__(self, other):
        return _ufunc("divmod")(self, other)

    def __rdivmod__(self, other):
        return _ufunc("divmod")(other, self)


def _matmul(a, b, out=None):
    from nnfs.backend.strict_namespace import CUPY
    return CUPY.matmul(a, b) if out is None else CUPY.matmul(a, b, out=out)


def _from_host(array):
    return StrictArray._of(array)


_OPERATORS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "and": "bitwise_and",
              "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift",
              "rshift": "right_shift"}
for _short, _name in _OPERATORS.items():
    setattr(StrictArray, f"__{_short}__", _binary(_name))
    setattr(StrictArray, f"__r{_short}__", _binary(_name, reflected=True))
    setattr(StrictArray, f"__i{_short}__", _binary(_name, inplace=True))
for _short, _name in {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                      "gt": "greater", "ge": "greater_equal"}.items():
    setattr(StrictArray, f"__{_short}__", _binary(_name))


# cupy.ndarray's methods, installed on StrictArray (they need the class, the class needs nothing of them).
from nnfs.backend import strict_methods  # noqa: E402,F401
