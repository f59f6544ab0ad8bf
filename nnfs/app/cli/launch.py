"""The installed commands: ``nnfs-train`` and ``nnfs-predict`` (``[project.scripts]`` in pyproject.toml).

They run the same programs as ``examples/CNN_custom_dataset.py`` and ``examples/predict.py``:
:func:`nnfs.app.cli.train.main` and :func:`nnfs.app.cli.predict.main`.

Why a launcher for training: OpenBLAS and MKL read their thread count
(``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) once, when NumPy is first imported. The
matrices of the networks trained here are too small to gain from several BLAS threads,
and on a shared CPU the threads wait for each other (measured: up to 5x slower), so the
training program runs with one unless you set the variables yourself. Setting them must
happen before NumPy's import, hence before the program module is imported: this module,
like the packages above it (``nnfs``, ``nnfs.app``, ``nnfs.app.cli``), imports no NumPy,
so :func:`train` can set them and only then import the program.
"""

import os
import sys

#: The variables :func:`single_threaded_blas` sets to 1 where they are not set.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas():
    """One BLAS thread unless the environment says otherwise; effective only before NumPy's import."""
    for variable in BLAS_THREADS:
        os.environ.setdefault(variable, "1")
    return "numpy" not in sys.modules


def train(argv=None):
    """``nnfs-train``: the training program with one BLAS thread (see the module docstring)."""
    single_threaded_blas()
    from nnfs.app.cli.train import main

    return main(argv)


__all__ = ["train", "single_threaded_blas", "BLAS_THREADS"]
