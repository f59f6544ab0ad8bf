"""nnfs: neural networks from scratch, one code path for NumPy (CPU) and CuPy (GPU).

Subpackages: :mod:`nnfs.layers`, :mod:`nnfs.activations`, :mod:`nnfs.losses`,
:mod:`nnfs.net`; the array backend is :mod:`nnfs.backend`.
"""

__version__ = "0.1.0"

__all__ = ["seed", "__version__"]


def __getattr__(name):
    # nnfs.seed comes from the backend on first use, not when the package is imported:
    # importing nnfs must not import NumPy, so that the nnfs-train command can set the BLAS
    # thread count before NumPy reads it (see nnfs.app.cli.launch).
    if name == "seed":
        from nnfs.backend import seed
        return seed
    raise AttributeError(f"module 'nnfs' has no attribute {name!r}")
