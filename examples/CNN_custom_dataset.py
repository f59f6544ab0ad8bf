"""Train a small CNN on a folder of images (one subfolder per class) and save it.

With no arguments it trains on the 5,000 MNIST digits shipped in data/digits:

    python examples/CNN_custom_dataset.py
    python examples/CNN_custom_dataset.py --dataset path/to/images --epochs 20 --image_size 64
    NNFS_BACKEND=cupy python examples/CNN_custom_dataset.py        # on an NVIDIA GPU
    mpiexec -n 2 python examples/CNN_custom_dataset.py             # data parallel, 2 processes

The program is nnfs.app.cli.train; --help lists its options.
"""

import os
import sys

# The matrices of a small CNN are too small to gain from several BLAS threads, and on a
# shared CPU the threads wait for each other (measured: up to 5x slower). Set
# OPENBLAS_NUM_THREADS / MKL_NUM_THREADS yourself to override; this must precede NumPy's import.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# The launcher imports only the standard library: it catches Ctrl-C and SIGTERM from here on,
# while NumPy and the program load, then runs the program (nnfs.app.cli.train).
from nnfs.app.cli.process import launch_train  # noqa: E402  (after the thread settings above)

if __name__ == "__main__":
    sys.exit(launch_train())
