"""What CuPy 14 offers, as recorded from an installed CuPy in ``cupy_api.json``.

``scripts/make_cupy_api.py`` writes the JSON file (every public name of ``cupy``
and of the submodules the strict backend models, the parameters of every
function, of the ufuncs and their methods, and of every ``cupy.ndarray``
method). The strict backend asks this module whether a name exists and
whether a call's arguments would bind, so that it refuses exactly what CuPy
would refuse, on a machine without CuPy. A few refusals are in CuPy's code rather
than in its signatures (``einsum(..., out=...)``, ``astype(casting=...)``); they are
listed here, in :data:`KEYWORDS_READ` and :data:`REFUSED_UNLESS_NONE`, and so are the
operations that wait for the device (:data:`SYNCHRONIZING`), for the strict backend's
``no_sync()`` guard.
"""

import functools
import inspect
import json
import operator
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cupy_api.json")

__all__ = ["load", "module_names", "ndarray_methods", "ndarray_attributes", "ufunc_methods",
           "ufunc_attributes", "signature", "check_arguments", "KEYWORDS_READ", "REFUSED_UNLESS_NONE",
           "SYNCHRONIZING", "SYNCHRONIZING_WHEN"]

# What the recorded signatures cannot show, read from CuPy 14's source. Two kinds of call bind to
# a signature and still raise TypeError on CuPy; the strict backend refuses them as well.

#: Functions written in Python as ``f(*args, **kwargs)`` that read these keywords out of
#: ``kwargs`` and raise for any other (``cupy/linalg/_einsum.py``, ``cupy/_creation/ranges.py``,
#: ``cupy/random/_sample.py``). ``einsum`` is the one that matters: NumPy's takes ``out=``,
#: ``order=`` and ``casting=`` too, CuPy's only ``dtype=`` and ``optimize=``.
KEYWORDS_READ = {
    "cupy.einsum": ("dtype", "optimize"),
    "cupy.meshgrid": ("indexing", "copy", "sparse"),
    "cupy.random.rand": ("dtype",),
    "cupy.random.randn": ("dtype",),
}

#: Parameters CuPy declares but refuses with "... is not supported yet" unless they are None
#: (``_ndarray_base._astype`` in ``cupy/_core/core.pyx``; the ``*_like`` functions in
#: ``cupy/_creation/basic.py``).
REFUSED_UNLESS_NONE = {
    "cupy.ndarray.astype": ("casting", "subok"),
    "cupy.empty_like": ("subok",),
    "cupy.zeros_like": ("subok",),
    "cupy.ones_like": ("subok",),
    "cupy.full_like": ("subok",),
}

#: Functions and methods that read device values on the host on every call, mostly because
#: the size of their result depends on them (CuPy's docstrings: "may synchronize the device";
#: its code: ``int(scan_index[-1])  # synchronize!``). So do indexing with a boolean mask, to
#: get and to set (``_prepare_mask_indexing_single`` in ``cupy/_core/_routines_indexing.pyx``),
#: and ``where`` with the condition alone (``nonzero``).
SYNCHRONIZING = frozenset({
    "cupy.nonzero", "cupy.flatnonzero", "cupy.argwhere", "cupy.compress", "cupy.extract",
    "cupy.place", "cupy.delete", "cupy.unique", "cupy.trim_zeros", "cupy.bincount",
    "cupy.histogram", "cupy.histogram2d", "cupy.histogramdd", "cupy.unravel_index",
    "cupy.mask_indices", "cupy.nanmin", "cupy.nanmax", "cupy.asarray_chkfinite",
    "cupy.real_if_close", "cupy.ndarray.nonzero", "cupy.ndarray.compress",
})


def _not_an_int(value):
    try:
        operator.index(value)  # a device array has no __index__
    except TypeError:
        return True
    return False


#: Calls that wait for the device for some arguments only: ``{name: (which ones, test of the bound
#: arguments)}``. ``repeat`` reads the repeats on the host unless they are a Python integer (a list
#: is moved to the device and read back; ``_repeat`` in ``cupy/_core/_routines_manipulation.pyx``:
#: ``reps_arr.item()  # synchronize!``), and ``average`` checks the weights' sum for zeros
#: (``cupy/_statistics/meanvar.py``: ``if cupy.any(scl == 0.0):  # synchronize!``).
SYNCHRONIZING_WHEN = {
    "cupy.repeat": ("with repeats other than an int", lambda bound: _not_an_int(bound.get("repeats", 0))),
    "cupy.ndarray.repeat": ("with repeats other than an int",
                            lambda bound: _not_an_int(bound.get("repeats", 0))),
    "cupy.average": ("with weights", lambda bound: bound.get("weights") is not None),
}


@functools.lru_cache(maxsize=None)
def load():
    """The recorded API: ``{"cupy_version", "modules", "ufunc", "ndarray", ...}``."""
    with open(PATH, encoding="utf-8") as f:
        return json.load(f)


def module_names(module):
    """``{name: {"kind": ..., "params": [...]}}`` of ``module`` (``"cupy"``, ``"cupy.linalg"``, ...),
    or None when the module was not recorded."""
    return load()["modules"].get(module)


def ndarray_methods():
    """``{method name: parameter list}`` of ``cupy.ndarray``."""
    return load()["ndarray"]["methods"]


def ndarray_attributes():
    """The names of ``cupy.ndarray``'s data attributes (``shape``, ``T``, ``data``, ...)."""
    return frozenset(load()["ndarray"]["attributes"])


def ufunc_methods():
    """``{method name: parameter list}`` of ``cupy.ufunc`` (``reduce``, ``at``, ...)."""
    return load()["ufunc"]["methods"]


def ufunc_attributes():
    return frozenset(load()["ufunc"]["attributes"])


class _Default:
    """What a recorded default stands for: only its existence matters here."""

    def __repr__(self):
        return "..."


_NO_DEFAULT = inspect.Parameter.empty
_DEFAULT = _Default()


@functools.lru_cache(maxsize=None)
def signature(params):
    """An ``inspect.Signature`` from a recorded parameter list (a tuple of strings, see the script).

    Returns None for None (a callable whose parameters CuPy does not document): its
    calls are then not checked.
    """
    if params is None:
        return None
    kinds = inspect.Parameter
    built, kind = [], kinds.POSITIONAL_OR_KEYWORD
    names = list(params)
    if "/" in names:
        kind = kinds.POSITIONAL_ONLY
    for name in names:
        if name == "/":
            kind = kinds.POSITIONAL_OR_KEYWORD
        elif name == "*":
            kind = kinds.KEYWORD_ONLY
        elif name.startswith("**"):
            built.append(inspect.Parameter(name[2:], kinds.VAR_KEYWORD))
        elif name.startswith("*"):
            built.append(inspect.Parameter(name[1:], kinds.VAR_POSITIONAL))
            kind = kinds.KEYWORD_ONLY
        else:
            default = _DEFAULT if name.endswith("=") else _NO_DEFAULT
            built.append(inspect.Parameter(name.rstrip("="), kind, default=default))
    return inspect.Signature(built)


def check_arguments(qualified, params, args, kwargs):
    """Raise the TypeError CuPy would raise when ``args``/``kwargs`` do not fit ``params``.

    Beyond binding, it applies :data:`KEYWORDS_READ` and :data:`REFUSED_UNLESS_NONE`.

    Returns:
        The arguments by parameter name (empty for ``params`` None), for
        :data:`SYNCHRONIZING_WHEN`.

    Args:
        qualified: the name to report (``"cupy.sum"``, ``"cupy.ndarray.item"``).
        params: the recorded parameter list (a tuple), or None to accept anything.
    """
    found = signature(params)
    if found is None:
        return {}
    try:
        bound = found.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"{qualified}{found}: {error} (CuPy {load()['cupy_version']} takes no more than this; "
            "the strict backend refuses what CuPy refuses)") from None
    read = KEYWORDS_READ.get(qualified)
    if read is not None:
        extra = sorted(set(kwargs) - set(read) - set(found.parameters))
        if extra:
            _refuse(qualified, f"it reads only {', '.join(k + '=' for k in read)} from its keywords, "
                               f"not {', '.join(k + '=' for k in extra)}")
    for name in REFUSED_UNLESS_NONE.get(qualified, ()):
        if bound.arguments.get(name) is not None:
            _refuse(qualified, f"{name}= is not supported (CuPy raises unless it is None)")
    return bound.arguments


def _refuse(qualified, why):
    raise TypeError(f"{qualified}: {why} (CuPy {load()['cupy_version']}; the strict backend refuses "
                    "what CuPy refuses)")
