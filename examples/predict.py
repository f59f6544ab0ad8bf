"""Classify images with a model saved by CNN_custom_dataset.py.

    python examples/predict.py runs/cnn.npz data/digits/7/3500.png
    python examples/predict.py runs/cnn.npz path/to/folder --top 1
    python examples/predict.py runs/cnn.npz --split val --csv runs/val_predictions.csv

The program is nnfs.app.cli.predict (installed as the nnfs-predict command); --help lists its options.
"""

import sys

# The launcher imports only the standard library: it catches Ctrl-C and SIGTERM from here on,
# while NumPy and the program load, then runs the program (nnfs.app.cli.predict).
try:
    from nnfs.app.cli.process import launch_predict
except ModuleNotFoundError as error:  # run from a checkout before the install step
    if error.name != "nnfs":
        raise
    sys.exit("nnfs is not installed: run `python -m pip install -e .` in the checkout first")

if __name__ == "__main__":
    sys.exit(launch_predict())
