"""The array backend: the only place in nnfs that imports NumPy or CuPy.

Every layer is written once against an *array module* ``xp`` that is either
NumPy (CPU) or CuPy (NVIDIA GPU). Layers never pick the module themselves:
they take it from the data (:func:`get_array_module`), so the same code runs
wherever its inputs and parameters live.

Which device new parameters and batches go to is chosen once per process by
the environment variable ``NNFS_BACKEND`` (``numpy``, the default, or
``cupy``) and can be overridden per network with ``net.to("cupy")``.
The default floating point type is float32; ``NNFS_DTYPE=float64`` or
``net.to(dtype="float64")`` selects double precision.

A third backend, ``strict``, exists for testing: NumPy arrays behind CuPy 14's
interface and rules (its names and keywords only, no implicit conversion to or
mixing with NumPy arrays, C-ordered elementwise results, wrapped indices, and a
guard against host reads). Running a model on it proves on a CPU-only machine
that the same code meets CuPy's rules.

This package is also the only place that knows which array library an array
belongs to: everything else asks :func:`backend_of`, :func:`is_host_array`,
``Backend.device_count()`` and so on. Its modules:

- ``base``: the :class:`Backend` interface; ``numpy_backend``, ``cupy_backend``
  and ``strict``: the three backends. The strict one is built from ``strict_array``
  (its array and ufuncs), ``strict_methods`` (the array's methods), ``strict_namespace``
  (its array module), ``strict_guard`` (its errors and the host-read guard) and
  ``cupy_api`` (CuPy's names and parameters, recorded in ``cupy_api.json``).
- ``images`` and ``augment``: host uint8 image arrays, their statistics and the
  augmentation kernels, for :mod:`nnfs.data`.
- ``archive``: ``.npz`` archives and JSON records, for :mod:`nnfs.checkpoint`.
"""

import contextlib
import os
import threading

import numpy as np

from nnfs.backend.base import Backend
from nnfs.checks import integer
from nnfs.backend.cupy_backend import CupyBackend
from nnfs.backend.numpy_backend import NumpyBackend
from nnfs.backend.strict import StrictBackend

ENV_BACKEND = "NNFS_BACKEND"
ENV_DTYPE = "NNFS_DTYPE"
BACKEND_NAMES = ("numpy", "cupy", "strict")
DTYPE_NAMES = ("float32", "float64")

# The classes by name; instances are made on first use (CuPy is imported only then).
_CLASSES = {"numpy": NumpyBackend, "cupy": CupyBackend, "strict": StrictBackend}
_backends = {}
_default_name = None
_scoped = threading.local()  # the stack of using() blocks, per thread
_host_rng = np.random.default_rng()

__all__ = [
    "Backend", "BACKEND_NAMES", "get_backend", "default_backend", "using", "get_array_module",
    "backend_of", "is_host_array", "to_numpy", "host_view", "check_real", "default_dtype", "as_dtype", "seed",
    "host_rng", "host_generator", "host_array", "host_zeros", "host_ones",
]


def _check_name(name, source):
    if name not in BACKEND_NAMES:
        # .to("float64") puts a dtype where the backend goes, the first positional argument.
        hint = f"; for a dtype, write .to(dtype={name!r})" if name in DTYPE_NAMES else ""
        raise ValueError(
            f"unknown nnfs backend {name!r} (from {source}); "
            f"expected one of: {', '.join(BACKEND_NAMES)}{hint}")


def get_backend(name=None):
    """Return the backend called ``name``, or the process default when None.

    A :class:`Backend` instance is passed through unchanged, so every function
    that takes a backend also takes its name.

    Raises:
        ValueError: for an unknown name.
        RuntimeError: for ``cupy`` when CuPy is not installed or no GPU is usable.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        return default_backend()
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    name = name.strip().lower()
    _check_name(name, "argument")
    if name not in _backends:
        _backends[name] = _CLASSES[name]()
    return _backends[name]


@contextlib.contextmanager
def using(backend):
    """Within the block, :func:`default_backend` is ``backend``: new layers put their
    parameters there, as ``torch.device`` does as a context manager.

    It scopes where *new* arrays go (for this thread only); arrays that exist stay
    where they are, so nothing is moved mid-run behind anyone's back::

        with nnfs.backend.using("cupy"):
            net = Net([Linear(784, 10)], CrossEntropyLoss())   # built on the GPU

    Yields:
        The :class:`Backend` in use.
    """
    target = get_backend(backend)
    stack = _scoped.__dict__.setdefault("stack", [])
    stack.append(target)
    try:
        yield target
    finally:
        stack.pop()


def default_backend():
    """The backend named by ``NNFS_BACKEND`` (read once per process; default ``numpy``),
    or the one of the innermost :func:`using` block."""
    global _default_name
    stack = getattr(_scoped, "stack", None)
    if stack:
        return stack[-1]
    if _default_name is None:
        name = os.environ.get(ENV_BACKEND, "numpy").strip().lower() or "numpy"
        _check_name(name, f"environment variable {ENV_BACKEND}")
        _default_name = name
    try:
        return get_backend(_default_name)
    except RuntimeError as error:  # only the variable names a backend that can fail (cupy)
        raise RuntimeError(f"{ENV_BACKEND}={_default_name}: {error}") from error.__cause__


def get_array_module(x):
    """The array module (``numpy``, ``cupy`` or the strict stand-in) that owns ``x``."""
    return backend_of(x).xp


def backend_of(x):
    """The backend whose arrays ``x`` is; plain Python values and NumPy arrays give NumPy."""
    # Asked for every layer call (the checks of nnfs.layers.base), about 75 times a step: a
    # plain NumPy array, the common case on the CPU, skips asking the other backends (no
    # other backend's array is one); the backends already made are taken from the registry
    # directly, not through get_backend's checks.
    if type(x) is not np.ndarray:
        for name, cls in _CLASSES.items():
            if name != "numpy" and cls.recognises(x):
                return _backends.get(name) or get_backend(name)
    return _backends.get("numpy") or get_backend("numpy")


def is_host_array(x):
    """True when ``x`` is an array in host memory (NumPy), whose values can be read without a
    device synchronisation; False for device arrays and for things that are not arrays."""
    return NumpyBackend.recognises(x)


def to_numpy(x):
    """``x`` as a plain NumPy array: a copy from a device, the array itself if already on the host."""
    return backend_of(x).to_numpy(x)


def host_view(x):
    """``x`` as host data: device arrays are copied to NumPy, anything else is returned as it is."""
    owner = backend_of(x)
    return x if owner.name == "numpy" else owner.to_numpy(x)


def check_real(owner, x, what="the input"):
    """Refuse data that would not become the same real numbers in a float array.

    NumPy converts more than it should for a network's input: complex values lose their
    imaginary part (with a warning), and text is parsed (``"1"`` becomes 1.0). Booleans,
    integers and floats of any width pass; so do numbers and nested lists of them.

    Raises:
        TypeError: naming ``owner``, ``what`` it checked and the dtype found.
        ValueError: for nested lists that are not rectangular (rows of different lengths).
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:  # a number or nested lists: the dtype NumPy would give them
        try:
            dtype = np.asarray(x).dtype
        except ValueError:  # NumPy's "inhomogeneous shape after 1 dimensions"
            raise ValueError(f"{owner}: {what} must be a rectangular array; its nested lists have "
                             "different lengths") from None
    if getattr(dtype, "kind", None) not in ("b", "i", "u", "f"):
        raise TypeError(f"{owner}: {what} must hold real numbers (bool, integer or float values), "
                        f"got dtype {dtype}")


def default_dtype():
    """float32, unless ``NNFS_DTYPE=float64`` is set."""
    name = os.environ.get(ENV_DTYPE, "float32").strip().lower() or "float32"
    if name not in DTYPE_NAMES:
        raise ValueError(
            f"unknown dtype {name!r} in environment variable {ENV_DTYPE}; "
            f"expected one of: {', '.join(DTYPE_NAMES)}")
    return np.dtype(name)


def as_dtype(dtype):
    """Normalise a dtype argument (None means :func:`default_dtype`); only float32/float64."""
    if dtype is None:
        return default_dtype()
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"not a dtype: {dtype!r}") from error
    if dtype.name not in DTYPE_NAMES:
        raise ValueError(f"nnfs computes in float32 or float64, got dtype {dtype.name}")
    return dtype


def seed(value):
    """Seed the host generator that draws initial weights (same seed, same weights on any device).

    ``value`` is an integer >= 0 (NumPy's too); None draws fresh entropy from the operating
    system (other weights every run). Anything else is a one-line error naming ``nnfs.seed``.
    """
    global _host_rng
    if value is not None:
        value = integer("nnfs.seed", "the seed", value, minimum=0)
    _host_rng = np.random.default_rng(value)


def host_array(values, dtype):
    """A new host (NumPy) array of ``dtype`` from a list or any array-like."""
    return np.array(values, dtype=dtype)


def host_zeros(shape):
    """A float64 NumPy array of zeros, for parameters that start at zero (biases, BatchNorm)."""
    return np.zeros(shape)


def host_ones(shape):
    """A float64 NumPy array of ones (BatchNorm scales, running variances)."""
    return np.ones(shape)


def host_rng():
    """The host random generator used for weight initialisation (see :func:`seed`)."""
    return _host_rng


def host_generator(seed):
    """A host random generator (a NumPy ``Generator``) of its own, seeded with ``seed``:
    drawing from it leaves the weight-initialisation stream of :func:`host_rng` alone.

    ``seed`` is what NumPy's ``default_rng`` takes: None (fresh entropy), an int, or a
    ``Generator``, which is returned itself (so a caller's generator keeps its place)."""
    return np.random.default_rng(seed)
