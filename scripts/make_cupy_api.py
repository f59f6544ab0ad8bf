"""Write ``nnfs/backend/cupy_api.json``: what CuPy offers, read from an installed CuPy.

The strict backend (``nnfs/backend/strict.py``) refuses every name and keyword
argument that CuPy lacks, so that code which passes on the CPU cannot trip over
a missing one on the first GPU run. This script is where that list comes from:
it imports CuPy (which works without a GPU: ``import cupy`` succeeds and
``cupy.is_available()`` is False) and records

- every public name of ``cupy`` and of the submodules the strict backend models
  (``linalg``, ``random``, ``fft``, ``lib``, ``lib.stride_tricks``), with its kind
  (function, ufunc, type, constant, module) and, for callables, its parameters;
- the parameters of ``cupy.ufunc.__call__`` per ufunc and of the ufunc methods
  (``reduce``, ``accumulate``, ``reduceat``, ``outer``, ``at``);
- every public method and attribute of ``cupy.ndarray``, with the parameters
  of each method.

Parameters come from ``inspect.signature`` where Python can read one; CuPy's
compiled (Cython) functions and methods carry theirs on the first line of their
docstring instead (``sum(self, axis=None, dtype=None, out=None, keepdims=False)``),
which is parsed here, C types and all. A parameter list is written as a list of
strings: ``"name"`` (required), ``"name="`` (has a default), ``"/"`` and ``"*"``
(the positional-only and keyword-only markers), ``"*args"`` and ``"**kwargs"``.

Usage (any machine; no GPU needed)::

    python -m pip install "cupy-cuda13x==14.2.*"
    python scripts/make_cupy_api.py            # rewrites nnfs/backend/cupy_api.json
    python -m pip uninstall -y cupy-cuda13x    # if the test suite should not see it
"""

import argparse
import inspect
import json
import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's nnfs, installed or not
OUTPUT = os.path.join(ROOT, "nnfs", "backend", "cupy_api.json")
SUBMODULES = ("linalg", "random", "fft", "lib", "lib.stride_tricks")
UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "outer", "at")


# -- parameter lists ------------------------------------------------------------------------------

def from_signature(signature):
    """An ``inspect.Signature`` as the list-of-strings form (without ``self``)."""
    params, marked_keyword_only = [], False
    kinds = inspect.Parameter
    items = [p for p in signature.parameters.values() if p.name != "self"]
    for index, param in enumerate(items):
        if param.kind is kinds.VAR_POSITIONAL:
            params.append("*" + param.name)
            marked_keyword_only = True
        elif param.kind is kinds.VAR_KEYWORD:
            params.append("**" + param.name)
        else:
            if param.kind is kinds.KEYWORD_ONLY and not marked_keyword_only:
                params.append("*")
                marked_keyword_only = True
            params.append(param.name + ("=" if param.default is not param.empty else ""))
            following = items[index + 1] if index + 1 < len(items) else None
            if param.kind is kinds.POSITIONAL_ONLY and (
                    following is None or following.kind is not kinds.POSITIONAL_ONLY):
                params.append("/")
    return params


def _split_top_level(text):
    """Split at the commas that are not inside brackets or quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def from_docstring(doc):
    """The parameter list on the first line of a Cython docstring, or None when there is none.

    ``"_ndarray_base.swapaxes(self, Py_ssize_t axis1, Py_ssize_t axis2) -> _ndarray_base"``
    gives ``["axis1", "axis2"]``; ``"isfinite(x, /, out=None, \\*, casting='same_kind', dtype=None)"``
    gives ``["x", "/", "out=", "*", "casting=", "dtype="]``.
    """
    if not doc:
        return None
    line = doc.strip().splitlines()[0]
    start = line.find("(")
    if start < 0:
        return None
    depth, end = 0, None
    for index in range(start, len(line)):
        depth += {"(": 1, ")": -1}.get(line[index], 0)
        if depth == 0:
            end = index
            break
    if end is None:
        return None
    params = []
    for part in _split_top_level(line[start + 1:end].replace("\\*", "*")):
        part = part.strip()
        if not part:
            continue
        if part in ("/", "*"):
            params.append(part)
            continue
        declaration, has_default = (part.split("=", 1)[0], True) if "=" in part else (part, False)
        name = declaration.split()[-1]  # "Py_ssize_t axis1" -> "axis1"; "*args" stays
        if name.startswith("**") or name.startswith("*"):
            params.append(name)
        elif name != "self":
            params.append(name + ("=" if has_default else ""))
    return params


def parameters(function):
    """The parameter list of any callable, or None when neither source says."""
    try:
        return from_signature(inspect.signature(function))
    except (TypeError, ValueError):
        return from_docstring(getattr(function, "__doc__", None))


# -- what CuPy has --------------------------------------------------------------------------------

def describe_module(cupy, module, qualified):
    names = {}
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if type(value).__name__ == "_Feature":  # `from __future__ import annotations` leaks a name
            continue
        if inspect.ismodule(value):
            if not value.__name__.startswith("cupy"):  # e.g. `np` in cupy.lib.stride_tricks
                continue
            names[name] = {"kind": "module"}
        elif isinstance(value, cupy.ufunc):
            names[name] = {"kind": "ufunc", "params": parameters(value)}
        elif isinstance(value, type):
            names[name] = {"kind": "type"}
        elif callable(value):
            names[name] = {"kind": "function", "params": parameters(value)}
        else:
            names[name] = {"kind": "constant"}
    return names


def describe_ndarray(cupy):
    methods, attributes = {}, []
    for name in sorted(dir(cupy.ndarray)):
        if name.startswith("_"):
            continue
        value = inspect.getattr_static(cupy.ndarray, name)
        if callable(value) and not isinstance(value, (property, type)) and \
                type(value).__name__ != "getset_descriptor":
            methods[name] = parameters(getattr(cupy.ndarray, name))
        else:
            attributes.append(name)
    return {"methods": methods, "attributes": attributes}


def describe_ufunc(cupy):
    methods = {name: from_docstring(getattr(cupy.ufunc, name).__doc__) for name in UFUNC_METHODS
               if hasattr(cupy.ufunc, name)}
    attributes = sorted(name for name in dir(cupy.ufunc)
                        if not name.startswith("_") and name not in methods)
    return {"methods": methods, "attributes": attributes}


def describe(cupy, numpy):
    modules = {"cupy": describe_module(cupy, cupy, "cupy")}
    for path in SUBMODULES:
        module = cupy
        for part in path.split("."):
            module = getattr(module, part)
        modules["cupy." + path] = describe_module(cupy, module, "cupy." + path)
    return {
        "about": ("What CuPy offers, for the strict backend to refuse everything else. "
                  "Made by scripts/make_cupy_api.py; do not edit by hand."),
        "cupy_version": cupy.__version__,
        "numpy_version": numpy.__version__,
        "modules": modules,
        "ufunc": describe_ufunc(cupy),
        "ndarray": describe_ndarray(cupy),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=OUTPUT, help=f"where to write (default {OUTPUT})")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CuPy warns about optional libraries it cannot load
        try:
            import cupy
        except ImportError as error:
            sys.exit(f"make_cupy_api.py: CuPy is not installed ({error}); "
                     "`python -m pip install \"cupy-cuda13x==14.2.*\"` (no GPU needed)")
        import numpy
        api = describe(cupy, numpy)
    from nnfs.files import write_atomically
    text = json.dumps(api, indent=1, sort_keys=True) + "\n"
    write_atomically(args.output, lambda f: f.write(text.encode("utf-8")))
    counts = ", ".join(f"{name}: {len(names)}" for name, names in api["modules"].items())
    print(f"make_cupy_api.py: CuPy {api['cupy_version']} -> {args.output} ({counts}; "
          f"ndarray: {len(api['ndarray']['methods'])} methods)")


if __name__ == "__main__":
    main()
