"""The prediction program: classify images with a model saved by the training program.

``examples/predict.py`` runs it:

    python examples/predict.py runs/cnn.npz data/digits/7/3500.png
    python examples/predict.py runs/cnn.npz path/to/folder --top 1

Each image is prepared as in training (channels, size, normalisation stored in
the checkpoint). For a folder, every image below it is classified; when an
image sits in a folder named like a class, the accuracy over those is printed.
"""

import os
import sys

from nnfs.app.cli.options import Parser, positive_int
from nnfs.app.inference import Classifier, find_images
from nnfs.backend import default_backend, default_dtype
from nnfs.checkpoint import CheckpointError
from nnfs.data import DatasetError
from nnfs.data.decoding import DecoderWarnings


def main(argv=None):
    parser = Parser(description="Classify images with a saved nnfs model.")
    parser.add_argument("checkpoint", help="a .npz file written by CNN_custom_dataset.py")
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--top", type=positive_int, default=3, help="how many classes to show (default 3)")
    args = parser.parse_args(argv)
    try:
        default_backend()  # a bad NNFS_BACKEND, or cupy without a GPU, is reported here in one line
        default_dtype()  # likewise a bad NNFS_DTYPE
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    def warn(message):
        print(f"warning: {message}", file=sys.stderr)

    try:
        classifier = Classifier(args.checkpoint)
        paths = [image for path in args.paths for image in find_images(path, warn)]
        with DecoderWarnings() as notes:  # Pillow's warnings about files: one counted line each
            predictions = classifier.predict(paths, top=args.top)
        notes.report(warn)
    except (DatasetError, CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    failed = labelled = correct = 0
    for prediction in predictions:
        if prediction.error:
            failed += 1
            print(f"error: {prediction.error}", file=sys.stderr)
            continue
        shown = "  ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
        print(f"{prediction.path}: {shown}")
        folder = os.path.basename(os.path.dirname(os.path.abspath(prediction.path)))
        if folder in classifier.class_names:
            labelled += 1
            correct += prediction.label == folder
    if labelled:
        print(f"accuracy {100 * correct / labelled:.2f}% on the {labelled} images in folders named "
              "after a class")
    if failed:
        print(f"{failed} of {len(predictions)} images could not be read", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
