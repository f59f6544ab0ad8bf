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

from nnfs.app.cli import console
from nnfs.app.cli.options import Parser, positive_int
from nnfs.app.cli.process import EXIT_ERROR, EXIT_OK, Interrupted, stop_on_signals
from nnfs.app.inference import Classifier, find_images
from nnfs.backend import default_backend, default_dtype
from nnfs.checkpoint import CheckpointError
from nnfs.data import DatasetError
from nnfs.data.decoding import DecoderWarnings


def parse_args(argv):
    parser = Parser(description="Classify images with a saved nnfs model.")
    parser.add_argument("checkpoint", help="a .npz file written by CNN_custom_dataset.py")
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--top", type=positive_int, default=3, help="how many classes to show (default 3)")
    return parser.parse_args(argv)


def main(argv=None):
    """The prediction program; returns its exit status (0; 1 when the checkpoint cannot be used
    or an image cannot be read; 2 for a bad option; 130 / 143 when stopped by SIGINT / SIGTERM)."""
    with stop_on_signals():
        console.safe_streams()
        try:
            return _predict(parse_args(argv))
        except Interrupted as stop:
            console.notice(f"interrupted ({stop.name})")
            return stop.exit_status
        except BrokenPipeError:  # stdout closed early (a pipe into head): stop quietly
            console.silence_stdout()
            return EXIT_ERROR
        except (DatasetError, CheckpointError, OSError, MemoryError) as error:
            if isinstance(error, MemoryError):
                console.error("out of memory")
            else:
                console.error(console.os_error_message(error) if isinstance(error, OSError) else error)
            return EXIT_ERROR


def _predict(args):
    try:
        default_backend()  # a bad NNFS_BACKEND, or cupy without a GPU, is reported here in one line
        default_dtype()  # likewise a bad NNFS_DTYPE
    except (RuntimeError, ValueError) as error:
        console.error(error)
        return EXIT_ERROR
    classifier = Classifier(args.checkpoint)
    paths = [image for path in args.paths for image in find_images(path, console.warn)]
    with DecoderWarnings() as notes:  # Pillow's warnings about files: one counted line each
        predictions = classifier.predict(paths, top=args.top)
    notes.report(console.warn)

    failed = labelled = correct = 0
    for prediction in predictions:
        if prediction.error:
            failed += 1
            console.error(prediction.error)
            continue
        shown = "  ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
        console.say(f"{prediction.path}: {shown}")
        folder = os.path.basename(os.path.dirname(os.path.abspath(prediction.path)))
        if folder in classifier.class_names:
            labelled += 1
            correct += prediction.label == folder
    if labelled:
        console.say(f"accuracy {100 * correct / labelled:.2f}% on the {labelled} images in folders named "
                    "after a class")
    if failed:
        console.notice(f"{failed} of {len(predictions)} images could not be read")
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
