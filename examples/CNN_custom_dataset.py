"""Train a small CNN on a folder of images (one subfolder per class) and save it.

With no arguments it trains on the 5,000 MNIST digits shipped in data/digits:

    python examples/CNN_custom_dataset.py
    python examples/CNN_custom_dataset.py --dataset path/to/images --epochs 20 --image_size 64
    NNFS_BACKEND=cupy python examples/CNN_custom_dataset.py        # on an NVIDIA GPU
    mpiexec -n 2 python examples/CNN_custom_dataset.py             # data parallel, 2 processes

The program is nnfs.app.cli.train (installed as the nnfs-train command); --help lists its options.
On the CPU it uses every core: each batch runs in shards on threads (docs/speed.md);
--threads 1 or NNFS_NUM_THREADS=1 runs it on one.
"""

import sys

# The launcher imports only the standard library: it pins NumPy's BLAS to one thread (unless
# OPENBLAS_NUM_THREADS / MKL_NUM_THREADS are set) before NumPy loads, catches Ctrl-C and
# SIGTERM from here on, then runs the program (nnfs.app.cli.train). nnfs.app.cli.process says why.
try:
    from nnfs.app.cli.process import launch_train
except ModuleNotFoundError as error:  # run from a checkout before the install step
    if error.name != "nnfs":
        raise
    sys.exit("nnfs is not installed: run `python -m pip install -e .` in the checkout first")

if __name__ == "__main__":
    sys.exit(launch_train())
