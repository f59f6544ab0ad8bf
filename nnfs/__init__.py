"""nnfs: neural networks from scratch, one code path for NumPy (CPU) and CuPy (GPU).

The core library:

- :mod:`nnfs.layers`: ``Linear``, ``Conv2D``, pooling, BatchNorm, ``Dropout``, ``Sequential``, ...
- :mod:`nnfs.activations`: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``
- :mod:`nnfs.losses`: ``CrossEntropyLoss``, ``MeanSquareLoss``, ``softmax``
- :mod:`nnfs.net`: ``Net``, layers plus a loss on one device
- :mod:`nnfs.gradcheck`: ``check_layer``, ``check_loss``, finite-difference checks of layers and losses of your own
- :mod:`nnfs.optim`: optimizers (SGD, Adam, AdamW), gradient clipping, learning-rate schedules
- :mod:`nnfs.checkpoint`: saving and loading a net to one ``.npz``, never unpickled
- :mod:`nnfs.data`: image folders, the split, normalisation, augmentation, batches
- :mod:`nnfs.distributed`: data-parallel training over MPI (``init``, ``DataParallel``)
- :mod:`nnfs.parallel`: every CPU core in one process, large batches in shards on threads
- :mod:`nnfs.backend`: the array backends (NumPy, CuPy, the strict stand-in), ``nnfs.seed``
- :mod:`nnfs.checks`, :mod:`nnfs.files`: argument checks; the atomic file writer

The training application, which the core never imports:

- :mod:`nnfs.app`: the epoch loop, guard, resuming, progress, metrics, plots, inference, models
- :mod:`nnfs.app.cli`: the programs ``nnfs-train`` and ``nnfs-predict``
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
