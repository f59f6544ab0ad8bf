"""Train a small CNN on a folder of images (one subfolder per class) and save it.

With no arguments it trains on the 5,000 MNIST digits shipped in data/digits:

    python examples/CNN_custom_dataset.py
    python examples/CNN_custom_dataset.py --dataset path/to/images --epochs 20 --image_size 64
    NNFS_BACKEND=cupy python examples/CNN_custom_dataset.py        # on an NVIDIA GPU
    mpiexec -n 2 python examples/CNN_custom_dataset.py             # data parallel, 2 processes

The program is nnfs.app.cli.train; --help lists its options. On the CPU it uses every
core: each batch runs in shards on threads, with one BLAS thread per shard, set by
nnfs at run time (docs/speed.md); --threads 1 or NNFS_NUM_THREADS=1 runs it on one.
"""

import sys

# The launcher imports only the standard library: it catches Ctrl-C and SIGTERM from here on,
# while NumPy and the program load, then runs the program (nnfs.app.cli.train).
from nnfs.app.cli.process import launch_train

if __name__ == "__main__":
    sys.exit(launch_train())
