"""nnfs: neural networks from scratch, one code path for NumPy (CPU) and CuPy (GPU).

Subpackages: :mod:`nnfs.layers`, :mod:`nnfs.activations`, :mod:`nnfs.losses`,
:mod:`nnfs.net`; the array backend is :mod:`nnfs.backend`.
"""

__version__ = "0.2.0"

__all__ = ["seed", "__version__"]


def __getattr__(name):
    # nnfs.seed comes from nnfs.backend, which imports NumPy: loaded on first use, so that
    # importing a standard-library-only module such as nnfs.app.cli.process (what the example
    # scripts and the installed commands do first, to catch Ctrl-C and to set the BLAS threads
    # before NumPy loads) does not load NumPy.
    if name == "seed":
        from nnfs.backend import seed
        return seed
    raise AttributeError(f"module 'nnfs' has no attribute {name!r}")
