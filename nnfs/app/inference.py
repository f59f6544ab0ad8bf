"""Classify image files with a saved model, using the preprocessing stored with it."""

import heapq
import os
import stat
from dataclasses import dataclass

from nnfs.backend import host_zeros
from nnfs.checkpoint import CheckpointError, load
from nnfs.checks import integer
from nnfs.data.images import (
    DatasetError, broken_link, file_type, in_the_cloud, is_cloud_placeholder, is_image_file, is_passed_over,
    unread_kind, unread_photos, unreadable)
from nnfs.data.loader import Preprocessing
from nnfs.files import file_identity, name_order
from nnfs.net import Net
from nnfs.text import count

# The most values (channels x height x width) one prepared image may have: 4096 x 4096 gray or
# about 2365 x 2365 RGB, 64 MB as float32. A record asking for more is damaged, not a model:
# the training program refuses larger sizes before it loads a dataset (ImageFolder's max_values).
MAX_INPUT_VALUES = 1 << 24

# What Classifier.predict takes as one image: a file's path.
_PATH_TYPES = (str, bytes, os.PathLike)
# Where arrays and PIL images (which have ``shape`` and ``getpixel``) go instead.
_IN_MEMORY = ("bring them to uint8 (N, C, H, W) of the model's size and channels and call "
              "classifier.net.predict_proba(classifier.preprocessing.apply(images))")

# What find_images says about each kind of entry it skips, for one and for several (nnfs.text.count).
_SKIPPED = {"not a regular file": ("entry that is not a regular file (not opened)",
                                   "entries that are not regular files (not opened)"),
            "unreadable": ("entry that cannot be read", "entries that cannot be read"),
            "walked": ("folder reached twice (walked once, at another path)",
                       "folders reached twice (walked once, at another path)"),
            # Photos of a format that is not read (HEIC, camera raw: UNREAD_PHOTO_FORMATS):
            # report_skipped says what they are (unread_photos) instead of a count.
            "photo format": None,
            # Any other file without an image name (notes.txt), counted as training counts it.
            "not an image": ("file that is not an image", "files that are not images"),
            "in the cloud": ("photo kept in iCloud only (an .icloud placeholder, not read; download it first)",
                             "photos kept in iCloud only (.icloud placeholders, not read; download them first)")}


@dataclass
class Prediction:
    """The top classes for one image.

    Attributes:
        path: the image file.
        top: ``[(class name, probability), ...]``, most likely first.
        error: why the file could not be classified (then ``top`` is empty), or None.
    """

    path: str
    top: list
    error: str = None

    @property
    def label(self):
        """The most likely class name, or None."""
        return self.top[0][0] if self.top else None


class Classifier:
    """A saved image classifier: the net, its class names and its preprocessing.

    Args:
        path: a checkpoint written with ``class_names`` and ``preprocessing``
            (as ``examples/CNN_custom_dataset.py`` does).
        backend: where to run; default ``NNFS_BACKEND``.
        custom_layers: your own layer classes in the net, as for :func:`~nnfs.checkpoint.load`.

    Raises:
        CheckpointError: when the file cannot be loaded or lacks class names or
            preprocessing, or they disagree with the net's output size.
    """

    def __init__(self, path, backend=None, custom_layers=()):
        checkpoint = load(path, backend=backend, custom_layers=custom_layers)
        if not checkpoint.class_names:
            raise CheckpointError(f"{path} stores no class names, so its outputs cannot be named")
        if not checkpoint.preprocessing:
            raise CheckpointError(
                f"{path} stores no image preprocessing; save it with preprocessing=... to classify images")
        try:
            self.preprocessing = Preprocessing.from_config(checkpoint.preprocessing)
        except DatasetError as error:
            raise CheckpointError(f"{path}: {error}") from None
        self.net = checkpoint.net
        self.class_names = checkpoint.class_names
        self.checkpoint = checkpoint
        self.path = path
        self._check_fit()

    def _check_fit(self):
        """Refuse a preprocessing record that cannot feed this net, before any image is read.

        The record's own values were checked when it was read (:class:`Preprocessing`: a
        positive size, finite means, positive deviations); here the image size must be
        reasonable, and one blank image of that size and channel count must
        pass through the net and come out as one score per class name: that is what
        every prediction will do, so a mismatch (3 channels for a 1-channel net, a size
        the net's Linear layer does not take) is found here with the layer's own message.
        """
        pre, path = self.preprocessing, self.path
        height, width = pre.image_size
        if height * width * pre.channels > MAX_INPUT_VALUES:
            raise CheckpointError(
                f"{path}: damaged preprocessing (image size {height}x{width} with {pre.channels} "
                f"channel(s); at most {MAX_INPUT_VALUES:,} values per image are prepared)")
        blank = host_zeros((1, pre.channels, height, width))
        try:
            outputs = self.net.predict_proba(blank).shape[1:]
        except (ValueError, TypeError) as error:
            raise CheckpointError(
                f"{path}: its preprocessing ({pre.channels} channel(s), {height}x{width}) does not "
                f"fit its net: {error}") from None
        except MemoryError:
            raise CheckpointError(f"{path}: its net needs more memory than this machine has to "
                                  f"classify one {height}x{width} image") from None
        if outputs != (len(self.class_names),):
            raise CheckpointError(
                f"{path}: the net gives outputs of shape {outputs} per image but "
                f"{len(self.class_names)} class names are stored")

    def predict(self, paths, top=3, batch_size=None):
        """Classify image files; unreadable ones get a :class:`Prediction` with ``error`` set.

        Args:
            paths: a list of image paths (one path alone, a string or path-like, is one image).
            top: how many classes each prediction lists, most likely first.
            batch_size: images read and classified at once; default as many as the net
                takes in one pass (:meth:`~nnfs.net.Net.inference_batch`: 256 small images,
                fewer large ones).

        Returns:
            One :class:`Prediction` per path, in order.

        Raises:
            TypeError: before any file is read, for a path that is not one (a PIL image, an
                array of pixels, None): images in memory go through ``preprocessing.apply`` and
                ``net.predict_proba`` instead.
        """
        paths = _image_paths(paths)
        top = min(integer("Classifier.predict", "top", top, minimum=1), len(self.class_names))
        if batch_size is None:
            pre = self.preprocessing
            batch_size = Net.inference_batch((pre.channels, *pre.image_size))
        batch_size = integer("Classifier.predict", "batch_size", batch_size, minimum=1)
        results = [None] * len(paths)
        for start in range(0, len(paths), batch_size):
            raw, ok = [], []
            for index in range(start, min(start + batch_size, len(paths))):
                try:
                    raw.append(self.preprocessing.read(paths[index]))
                    ok.append(index)
                except DatasetError as error:
                    results[index] = Prediction(paths[index], [], str(error))
            if ok:
                predicted = self._classify([paths[i] for i in ok], raw, top)
                for index, prediction in zip(ok, predicted):
                    results[index] = prediction
        return results

    def _classify(self, paths, raw, top):
        X = self.preprocessing.apply(self.preprocessing.stack(raw))
        probabilities = self.net.predict_proba(X)
        if probabilities.shape[1] != len(self.class_names):
            raise CheckpointError(
                f"{self.path}: the net has {probabilities.shape[1]} outputs but "
                f"{len(self.class_names)} class names are stored")
        ranked = probabilities.argsort(axis=1)[:, ::-1][:, :top]
        return [Prediction(path, [(self.class_names[k], float(p[k])) for k in row.tolist()])
                for path, row, p in zip(paths, ranked, probabilities)]


def _image_paths(paths):
    """``paths`` of :meth:`Classifier.predict` as a list, each a path (str, bytes, path-like).

    Checked before any file is read: a PIL image or an array of pixels given instead failed
    deep in the file reader ("expected str, bytes or os.PathLike object", or "object is not
    iterable"), naming neither the method nor what it takes, after the batches before it had
    been classified.
    """
    if isinstance(paths, _PATH_TYPES):  # iterated, a string is its characters
        return [paths]
    try:
        listed = list(paths)
    except TypeError:
        raise TypeError(f"Classifier.predict: paths must be an image file path or a list of them, got "
                        f"{type(paths).__name__}{_in_memory_hint(paths)}") from None
    for index, path in enumerate(listed):
        if not isinstance(path, _PATH_TYPES):
            raise TypeError(f"Classifier.predict: paths[{index}] must be an image file path (str, bytes or "
                            f"os.PathLike), got {type(path).__name__}{_in_memory_hint(paths, path)}")
    return listed


def _in_memory_hint(*values):
    """Where images in memory go, for a message, when one of ``values`` looks like pixels (an
    array has a ``shape``, a PIL image a ``getpixel``); else ""."""
    if any(hasattr(value, "shape") or hasattr(value, "getpixel") for value in values):
        return f"; for images in memory, {_IN_MEMORY}"
    return ""


def find_images(path, warn=None, skipped=None):
    """The image files at ``path``: the file itself, or every image below a folder (sorted).

    Below a folder, only regular files with an image name are taken: hidden entries
    and system folders (``__MACOSX``, ``@eaDir``, ...) are passed over, as training passes
    them over, and entries that are not regular files (a FIFO, a socket, a
    device: opening one could block forever) or cannot be read (a symlink loop, a
    permission denied), and the iCloud placeholders of photos not downloaded
    (``.IMG_0001.JPG.icloud``), are skipped without being opened, counted in one ``warn``
    line per reason. Symbolic links to folders are followed, as the training program
    follows links to class folders (scoring a dataset folder scores the images it trained
    on), each folder once: a folder reached twice (a link to a folder inside ``path``, a
    link back up) is walked at its real path, before any link is followed, and the other
    way to it is skipped and counted.

    Args:
        path: an image file or a folder.
        warn: called with each of those lines; default: skipped silently.
        skipped: instead of ``warn``, a dict that collects the skipped entries of several
            calls (``{reason: {path: None}}``), so that :func:`report_skipped` says each
            reason once for them all (folders given together may overlap).

    Raises:
        DatasetError: for a missing path, a path that is neither a regular file nor
            a folder, or a folder without images. A regular file is returned as it
            is, whatever its name: reading it reports one that is not an image.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as error:
        if broken_link(path) is not None:
            raise unreadable(path, error) from None
        raise DatasetError(f"not found: {path}") from None
    except OSError as error:
        raise unreadable(path, error) from None
    if stat.S_ISREG(mode):
        return [path]
    if not stat.S_ISDIR(mode):
        raise DatasetError(f"not a regular file or folder ({file_type(mode)}): {path}")
    found, passed = [], {reason: [] for reason in _SKIPPED}  # (place, path): see below
    walked = set()  # (device, inode) of each folder walked: a link loop ends
    # A heap of (is a link, place, folder), not recursion: a folder may be nested deeper than
    # Python recurses. A place is the path below ``path`` as a sortable key, a file's names
    # (0, key, name) before a folder's (1, key, name), so that sorting places gives the walk's
    # order: each folder's files, then its subfolders in name order. Names sort as the dataset
    # scan sorts them (nnfs.files.name_order: whatever their Unicode form and the locale),
    # so a folder's images are listed in the order training read them. Every real folder is walked
    # before any link to a folder is followed, so that a folder reached both ways is walked
    # at its real path and the link is what is skipped, whatever the names' order.
    pending = [(False, (), path)]
    while pending:
        _, place, folder = heapq.heappop(pending)
        try:
            key = file_identity(folder)
            if key in walked:
                passed["walked"].append((place, folder))
                continue
            walked.add(key)
            # Each name's sort key is kept for its place below (names are unique in a folder:
            # two entries are never compared themselves).
            entries = sorted((name_order(entry.name), entry) for entry in os.scandir(folder))
        except OSError:
            passed["unreadable"].append((place, folder))
            continue
        for step, entry in entries:
            if is_cloud_placeholder(entry.name):
                passed["in the cloud"].append((place + ((0, *step),), entry.path))
                continue
            if is_passed_over(entry.name):
                continue
            try:
                mode = entry.stat().st_mode  # through a link
                link = entry.is_symlink()
            except OSError:
                if is_image_file(entry.name):
                    passed["unreadable"].append((place + ((0, *step),), entry.path))
                continue
            if stat.S_ISDIR(mode):
                heapq.heappush(pending, (link, place + ((1, *step),), entry.path))
            elif is_image_file(entry.name):
                where = passed["not a regular file"] if file_type(mode) else found
                where.append((place + ((0, *step),), entry.path))
            elif unread_kind(entry.name):
                passed["photo format"].append((place + ((0, *step),), entry.path))
            else:
                passed["not an image"].append((place + ((0, *step),), entry.path))

    # In the walk's order, so that the example named is the first one met.
    ordered = {reason: {where: None for _, where in sorted(places)} for reason, places in passed.items()}
    if skipped is not None:
        for reason, paths in ordered.items():
            skipped.setdefault(reason, {}).update(paths)
    elif warn is not None:
        report_skipped(ordered, warn)
    if not found:
        photos = unread_photos(ordered["photo format"])
        held = photos or in_the_cloud(list(ordered["in the cloud"]))
        raise DatasetError(f"no images in {path}" + (f"; it holds {held}" if held else ""))
    return [file for _, file in sorted(found)]


def report_skipped(skipped, warn):
    """One ``warn`` line per reason for what :func:`find_images` calls collected in ``skipped``:
    how many entries (each once, however many of the paths given reached it), one example."""
    for reason, paths in skipped.items():
        if paths:
            if _SKIPPED[reason] is None:  # what they are and what to do, rather than a count
                warn(f"skipped {unread_photos(paths)}; e.g. {next(iter(paths))}")
            else:
                warn(f"skipped {count(len(paths), *_SKIPPED[reason])}, e.g. {next(iter(paths))}")


__all__ = ["Classifier", "Prediction", "find_images", "report_skipped"]
