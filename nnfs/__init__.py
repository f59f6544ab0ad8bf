"""nnfs: neural networks from scratch, one code path for NumPy (CPU) and CuPy (GPU).

Subpackages: :mod:`nnfs.layers`, :mod:`nnfs.activations`, :mod:`nnfs.losses`,
:mod:`nnfs.net`; the array backend is :mod:`nnfs.backend`.
"""

from nnfs.backend import seed

__version__ = "0.1.0"

__all__ = ["seed", "__version__"]
