"""The prediction program: classify images with a model saved by the training program.

``examples/predict.py`` and the ``nnfs-predict`` command run it:

    nnfs-predict runs/cnn.npz data/digits/7/3500.png
    nnfs-predict runs/cnn.npz path/to/folder --top 1
    nnfs-predict runs/cnn.npz --split val --csv runs/val_predictions.csv

The options may come anywhere among the paths (``nnfs-predict runs/cnn.npz --top 1 a.png b.png``).

Each image is prepared as in training (channels, size, normalisation stored in
the checkpoint). For a folder, every image below it is classified; when an
image sits in a folder named like a class, the accuracy over those is printed.
The checkpoint remembers which files trained the model and which were held out:
``--split val`` scores exactly the held-out ones (with per-class results), and
scoring folders that contain training images says how many did.
"""


if __name__ == "__main__":  # python -m nnfs.app.cli.predict: armed before NumPy loads, as the commands are
    import sys

    from nnfs.app.cli.process import launch_predict

    sys.exit(launch_predict())

import contextlib
import csv
import io
import os
import sys
from collections import namedtuple

from nnfs.app.cli import console
from nnfs.app.cli.options import Parser, environment_epilog, file_path, positive_int
from nnfs.app.cli.outputs import is_output_of, same_file, same_file_among
from nnfs.app.cli.process import EXIT_ERROR, EXIT_OK, Interrupted, stop_on_signals
from nnfs.app.inference import Classifier, find_images, report_skipped
from nnfs.app.metrics import class_report, format_report
from nnfs.app.resume import check_extra
from nnfs.backend import default_backend, default_dtype
from nnfs.checkpoint import CheckpointError
from nnfs.data import DatasetError, is_image_file
from nnfs.files import as_found, check_writable, file_key, local_name, name_key, write_atomically

SPLITS = ("val", "train")
#: What this program reads from a checkpoint's ``extra`` (the other fields are not its business).
READ_FROM_EXTRA = ("dataset", "split")
CSV_COLUMNS = ("path", "label", "predicted", "confidence", "correct", "split")
#: One scored image: ``label`` is the class of its folder ("" if none), ``correct`` 1, 0 or ""
#: (unknown), ``split`` "train", "val" or "" (not used by the training run).
Row = namedtuple("Row", CSV_COLUMNS)
CSV_HEADER = ",".join(CSV_COLUMNS)
#: ``--csv -``: the CSV on standard output (for a pipe), the program's other lines on standard error.
STDOUT = "-"
from nnfs.data.decoding import DecoderWarnings


def parse_args(argv):
    parser = build_parser()
    # Intermixed: options may come anywhere, between the checkpoint and the paths or among the
    # paths (`predict.py m.npz --top 2 a.png`), which parse_args takes for surplus arguments.
    args = parser.parse_intermixed_args(argv)
    check_paths(args, parser)
    return args


def build_parser():
    """The prediction program's options, each with its help text and default."""
    parser = Parser(description="Classify images with a saved nnfs model.",
                    epilog=environment_epilog("NNFS_BACKEND", "NNFS_DTYPE"))
    parser.add_argument("checkpoint", help="a .npz file written by the training program")
    # default=[]: argparse counts a "*" positional without a default as required, and named the
    # paths in "the following arguments are required", though --split needs none.
    parser.add_argument("paths", nargs="*", default=[],
                        help="image files or folders; with --split, optionally the dataset folder "
                             "(default: the one the model was trained on)")
    parser.add_argument("--top", type=positive_int, default=3, help="how many classes to show per image")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="score exactly the images the checkpoint held out for validation (val) or "
                             "trained on (train), with per-class results (default: the given paths)")
    parser.add_argument("--csv", type=file_path, default=None,
                        help="also write every prediction to this CSV file: path, label, predicted, "
                             "confidence, correct, split; '-' writes it to standard output, and the "
                             "other lines to standard error (default: none)")
    return parser


class SplitRecord:
    """Which files trained the model in a checkpoint and which were held out, as absolute paths.

    Args:
        checkpoint: a loaded :class:`~nnfs.checkpoint.Checkpoint` whose ``extra`` holds
            ``"split"`` (relative paths, see the training program) and ``"dataset"``.
        root: where the dataset is now; default where it was when the model was trained.

    Raises:
        CheckpointError: for an ``extra`` whose ``dataset`` or ``split`` has the wrong form
            (:func:`~nnfs.app.resume.check_extra`).

    Attributes:
        root: the dataset folder the relative paths are resolved against.
        files: ``{"train": [...], "val": [...]}`` absolute paths, or None when the
            checkpoint records no split.
    """

    def __init__(self, checkpoint, root=None):
        extra = check_extra(checkpoint.path, checkpoint.extra, READ_FROM_EXTRA)
        # Recorded names, as this locale names those files (a run under LC_ALL=C reads the
        # files of a UTF-8 one, and the other way round).
        self.root = root or (local_name(extra["dataset"]) if extra.get("dataset") else None)
        split = extra.get("split")
        self.files = None
        if self.root and split is not None:
            # As the file system spells them now (as_found): a dataset copied from a Mac to
            # another system holds its names composed, the split recorded them decomposed.
            listings = {}
            self.files = {name: [as_found(self.root, local_name(rel).split("/"), listings) for rel in split[name]]
                          for name in SPLITS}
        self._membership = None

    def split_of(self, path):
        """``"train"``, ``"val"`` or ``""`` (a file the training run did not use)."""
        if self.files is None:
            return ""
        if self._membership is None:
            self._membership = {os.path.realpath(p): name for name, paths in self.files.items() for p in paths}
        return self._membership.get(os.path.realpath(path), "")


def classes_by_key(class_names):
    """``{name_key(name): name}`` of a model's classes (the first of any alike), for
    :func:`label_of`: made once per model, not per image (a thousand classes normalised again
    for each of 50,000 images took 7 s)."""
    keys = {}
    for name in class_names:
        keys.setdefault(name_key(name), name)
    return keys


def label_of(path, classes):
    """The class an image belongs to by its folder's name, or None; ``classes`` is
    :func:`classes_by_key` of the model's, so the names are compared whatever the locale and
    the Unicode form that wrote them (:func:`~nnfs.files.name_key`: a model trained under
    ``LC_ALL=C`` holds ``café`` as the escapes of its bytes, one trained on a Mac holds it
    decomposed)."""
    return classes.get(name_key(os.path.basename(os.path.dirname(os.path.abspath(path)))))


def check_paths(args, parser):
    """The paths the command line gives must fit ``--split`` (a usage error otherwise)."""
    if args.split is None and not args.paths:
        parser.error("give image files or folders to classify, or --split val/train")
    if args.split is not None and len(args.paths) > 1:
        parser.error("with --split give at most one path: the dataset folder, if it moved")
    if args.csv == STDOUT:  # no file to keep from harm
        return
    # The CSV is written after everything was read: over the checkpoint or an image it would
    # replace them for good.
    for path in [args.checkpoint, *args.paths] if args.csv else []:
        if same_file(args.csv, path):
            parser.error(f"--csv {args.csv} would replace {path}, which this command reads; "
                         "write the predictions to another file")
    # A model of another run, an image, notes, an archive: never lost to a CSV.
    if args.csv and not is_output_of(args.csv, "csv", CSV_HEADER):
        parser.error(f"--csv {args.csv} would replace a file that is not a CSV of predictions (its first "
                     f"line is not {CSV_HEADER}); write the predictions to another file")


def images_to_score(args, classifier):
    """The image paths and the :class:`SplitRecord` for this command line."""
    if args.split is None:
        record = SplitRecord(classifier.checkpoint)  # a damaged record: refused before any folder is walked
        skipped = {}  # folders given together may overlap: each skipped entry is said once
        images = [image for path in args.paths for image in find_images(path, skipped=skipped)]
        report_skipped(skipped, console.warn)
        return distinct(images), record
    record = SplitRecord(classifier.checkpoint, args.paths[0] if args.paths else None)
    if record.files is None:
        raise CheckpointError(f"{args.checkpoint} does not record which images it was trained and validated "
                              "on (saved by an older version); give the folders to score instead")
    files = record.files[args.split]
    if not files:
        raise CheckpointError(f"{args.checkpoint} records no {args.split} images")
    if not os.path.isdir(record.root):  # moved or mistyped: said as such, not as images missing from it
        given = "given" if args.paths else f"recorded in {args.checkpoint}"
        raise DatasetError(f"the dataset folder {record.root} ({given}) is not "
                           f"{'a folder' if os.path.exists(record.root) else 'there'}; give the dataset folder "
                           "the model was trained on")
    if not any(os.path.isfile(path) for path in files):  # a wrong folder: one line, not one per image
        raise DatasetError(f"none of the {console.count(len(files), args.split + ' image')} recorded in {args.checkpoint} is in "
                           f"{record.root} (no {files[0]}, ...); give the dataset folder the model was trained on")
    return distinct(files), record


def distinct(paths):
    """``paths`` with each file once (by its device and inode, so through links and hard links
    too; by its real path where there is no inode), in the order first given: a file named
    twice, or also found in a folder given, would count twice in the accuracy."""
    seen, kept = set(), []
    for path in paths:
        key = file_key(path)  # a hard link is the same file under another real path; unreadable: reported later
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept


def write_csv(path, rows):
    """The CSV of ``rows``, with its header, written atomically to ``path``, or to standard
    output for :data:`STDOUT`."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    # A file name that was not valid UTF-8 (Python keeps its bytes as lone surrogates) is
    # written back as those bytes; another lone surrogate (in a class name) as an escape.
    try:
        data = text.getvalue().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.getvalue().encode("utf-8", "backslashreplace")
    if path == STDOUT:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomically(path, lambda f: f.write(data))


def summarize(rows, class_names, scored_split):
    """The lines after the predictions: accuracy, and where the images came from."""
    labelled = [row for row in rows if row.label]
    lines = []
    if labelled:
        lines.append(f"accuracy {accuracy(labelled):.2f}% on the {console.count(len(labelled), 'image')} in folders "
                     "named after a class")
    if scored_split is None:
        trained_on = sum(row.split == "train" for row in rows)
        if trained_on:
            held = [row for row in labelled if row.split == "val"]
            detail = (f"; on the {console.count(len(held), 'held-out image')} among them: {accuracy(held):.2f}%"
                      if held else "")
            which = "this image" if len(rows) == 1 else f"{trained_on} of these {len(rows)} images"
            lines.append(f"note: {which} trained this model, so the accuracy "
                         f"overstates how it does on new images{detail}; --split val scores the held-out "
                         "images alone")
    elif labelled:
        true = [class_names.index(row.label) for row in labelled]
        predicted = [class_names.index(row.predicted) for row in labelled]
        kind = {"val": "held-out (validation)", "train": "training"}[scored_split]
        lines.append(f"per class on the {console.count(len(labelled), kind + ' image')}:")
        lines += [f"  {line}" for line in format_report(class_report(true, predicted, class_names))]
    return lines


def accuracy(rows):
    """Percentage of ``rows`` classified correctly."""
    return 100 * sum(row.correct == 1 for row in rows) / len(rows)


def main(argv=None):
    """The prediction program; returns its exit status (0; 1 when the checkpoint cannot be used
    or an image cannot be read; 2 for a bad option; 130 / 143 / 129 when stopped by SIGINT / SIGTERM / SIGHUP)."""
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


def csv_unwritable(path, error):
    """Report that the ``--csv`` file cannot be written (found before or while writing it), in
    one line; returns the exit status."""
    console.error(f"--csv {path} cannot be written: {error.strerror or error}")
    return EXIT_ERROR


def _predict(args):
    try:
        default_backend()  # a bad NNFS_BACKEND, or cupy without a GPU, is reported here in one line
        default_dtype()  # likewise a bad NNFS_DTYPE
    except (RuntimeError, ValueError) as error:
        console.error(error)
        return EXIT_ERROR
    csv_file = args.csv if args.csv != STDOUT else None  # a file to write, and so to check
    if csv_file:  # found now, not after every image was classified (as the training program does)
        try:
            check_writable(csv_file)
        except OSError as error:
            return csv_unwritable(args.csv, error)
    try:
        classifier = Classifier(args.checkpoint)
    except CheckpointError as error:
        if is_image_file(args.checkpoint) or os.path.isdir(args.checkpoint):  # the arguments' order, most likely
            raise CheckpointError(f"{error}; the checkpoint comes first: {build_parser().prog} CHECKPOINT "
                                  "IMAGE_OR_FOLDER ...") from None
        raise
    paths, record = images_to_score(args, classifier)
    if csv_file:  # an image found below a folder, or of --split
        clash = same_file_among(csv_file, paths)
        if clash is not None:
            raise DatasetError(f"--csv {args.csv} would replace the image {clash}, which this command "
                               "classifies; write the predictions to another file")
    with DecoderWarnings() as notes:  # Pillow's warnings about files: one counted line each
        predictions = classifier.predict(paths, top=args.top)
    notes.forget(p.path for p in predictions if p.error)  # said as errors, not as "read with a warning"
    notes.report(console.warn)

    # With the CSV on standard output, what is said for people goes to standard error.
    with contextlib.redirect_stdout(sys.stderr) if args.csv == STDOUT else contextlib.nullcontext():
        failed, rows = report_predictions(predictions, classifier, record, args.split)
    if args.csv:
        try:
            write_csv(args.csv, rows)
        except OSError as error:  # a full disk: the one cause the check above cannot find
            return csv_unwritable(args.csv, error)
        if csv_file:
            console.say(f"predictions written to {args.csv}")
    if failed:
        console.notice(f"{failed} of {console.count(len(predictions), 'image')} could not be read")
        return EXIT_ERROR
    return EXIT_OK


def report_predictions(predictions, classifier, record, scored_split):
    """Say each prediction (or its error) and the summary; returns ``(failed, rows)``, the number
    of images that could not be read and the CSV's rows."""
    failed, rows, classes = 0, [], classes_by_key(classifier.class_names)
    for prediction in predictions:
        if prediction.error:
            failed += 1
            console.error(prediction.error)
            continue
        shown = "  ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
        console.say(f"{prediction.path}: {shown}")
        label = label_of(prediction.path, classes)
        correct = "" if label is None else int(prediction.label == label)
        rows.append(Row(prediction.path, label or "", prediction.label, f"{prediction.top[0][1]:.6f}", correct,
                        record.split_of(prediction.path)))
    for line in summarize(rows, classifier.class_names, scored_split):
        console.say(line)
    return failed, rows

