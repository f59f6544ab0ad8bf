"""A folder of images, one subfolder per class, decoded into memory as uint8."""

import collections
import os
import warnings

from nnfs.backend import host_array
from nnfs.backend.images import images_from_bytes
from nnfs.checks import int_pair, integer
from nnfs.data.images import (
    IMAGE_EXTENSIONS, DatasetError, is_gray, is_image_file, open_image, prepare)


def _warn(message):
    warnings.warn(message, stacklevel=3)


def _checked(check, *args, **kwargs):
    """A check from :mod:`nnfs.checks`, its error raised as a DatasetError."""
    try:
        return check("ImageFolder", *args, **kwargs)
    except (TypeError, ValueError) as error:
        raise DatasetError(str(error)) from None


class ImageFolder:
    """Every image under ``root/<class name>/``, converted to one channel count and size.

    Class names are the subfolder names, sorted; label ``i`` is ``class_names[i]``.
    Only files directly inside a class folder are read: hidden files (starting
    with ``.``) are skipped silently, files that are not images (by their
    extension, see :data:`~nnfs.data.images.IMAGE_EXTENSIONS`) and folders
    nested inside a class folder are skipped with one warning that counts them.

    An image that cannot be decoded stops the load with a :class:`DatasetError`
    naming its path (``on_error="raise"``, the default), or is skipped and
    counted in one warning (``on_error="skip"``).

    Args:
        root: the dataset folder.
        image_size: ``(height, width)`` or an int for squares; None picks the most
            common size in the dataset. Other images are stretched to it (bilinear).
        channels: 1 (grayscale) or 3 (RGB); None gives 1 when every image is
            grayscale and 3 otherwise. Transparency is composited onto white.
        on_error: ``"raise"`` or ``"skip"`` for unreadable images.
        limit: read at most this many images per class (the first in name order).
        warn: called with one message per kind of skipped file; default ``warnings.warn``.

    Attributes:
        images: ``(N, C, H, W)`` uint8 NumPy array.
        labels: ``(N,)`` int64 NumPy array of class indices.
        paths: the N file paths, in the order of ``images``.
        class_names: list of class names.
        channels: 1 or 3.
        image_size: ``(height, width)``.
        skipped: ``{"not an image": [...], "nested folder": [...], "unreadable": [...]}`` paths.

    Raises:
        DatasetError: missing root, no class subfolders, a class without images,
            fewer than two classes, or (with ``on_error="raise"``) an unreadable image.
    """

    def __init__(self, root, image_size=None, channels=None, on_error="raise", limit=None, warn=None):
        if on_error not in ("raise", "skip"):
            raise DatasetError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if channels is not None:  # checked as an int first: True and 3.0 compare equal to 1 and 3
            channels = _checked(integer, "channels", channels)
            if channels not in (1, 3):
                raise DatasetError(f"channels must be 1, 3 or None, got {channels!r}")
        if limit is not None:
            limit = _checked(integer, "limit", limit, minimum=1)
        self.root = os.fspath(root)
        self.skipped = {"not an image": [], "nested folder": [], "unreadable": []}
        warn = warn or _warn
        self.class_names, files = self._scan(limit)
        image_size = None if image_size is None else _checked(int_pair, "image_size", image_size)
        # With both given, each image is shrunk as soon as it is read, so a folder of
        # large photos never sits in memory at full size.
        target = (channels, image_size) if channels and image_size else None
        decoded = self._decode(files, on_error, target)
        self.channels = channels or (1 if all(is_gray(image) for _, _, image in decoded) else 3)
        self.image_size = image_size or self._common_size(decoded)
        self._pack(decoded)
        self._report(warn)

    # -- scanning --------------------------------------------------------------------------
    def _scan(self, limit):
        root = self.root
        if not os.path.exists(root):
            raise DatasetError(f"dataset folder not found: {root}")
        if not os.path.isdir(root):
            raise DatasetError(f"dataset path is not a folder: {root}")
        entries = sorted(os.scandir(root), key=lambda e: e.name)
        classes = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
        if not classes:
            loose = sum(1 for e in entries if e.is_file() and is_image_file(e.name))
            hint = f" (it holds {loose} images directly)" if loose else ""
            raise DatasetError(
                f"no class subfolders in {root}{hint}; expected one folder per class, "
                f"e.g. {os.path.join(root, 'cats', '001.png')}")
        files = []
        for label, name in enumerate(classes):
            folder = os.path.join(root, name)
            found = []
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    self.skipped["nested folder"].append(entry.path)
                elif is_image_file(entry.name):
                    found.append(entry.path)
                else:
                    self.skipped["not an image"].append(entry.path)
            if not found:
                raise DatasetError(
                    f"class folder {folder} has no images (looked for files ending in "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
            files.extend((path, label) for path in found[:limit])
        if len(classes) < 2:
            raise DatasetError(
                f"only one class folder in {root} ({classes[0]!r}); a classifier needs at least two")
        return classes, files

    # -- decoding --------------------------------------------------------------------------
    def _decode(self, files, on_error, target):
        decoded = []
        for path, label in files:
            try:
                image = open_image(path)
                decoded.append((path, label, prepare(image, *target) if target else image))
            except DatasetError:
                if on_error == "raise":
                    raise
                self.skipped["unreadable"].append(path)
        present = {label for _, label, _ in decoded}
        for label, name in enumerate(self.class_names):
            if label not in present:
                raise DatasetError(
                    f"class folder {os.path.join(self.root, name)} has no readable images")
        return decoded

    @staticmethod
    def _common_size(decoded):
        counts = collections.Counter(image.size for _, _, image in decoded)
        width, height = counts.most_common(1)[0][0]
        return (height, width)

    def _pack(self, decoded):
        buffer = bytearray()
        for _, _, image in decoded:
            buffer += image if isinstance(image, bytes) else prepare(image, self.channels, self.image_size)
        height, width = self.image_size
        self.images = images_from_bytes(buffer, len(decoded), height, width, self.channels)
        self.labels = host_array([label for _, label, _ in decoded], "int64")
        self.paths = [path for path, _, _ in decoded]

    def _report(self, warn):
        for reason, paths in self.skipped.items():
            if paths:
                what = {"not an image": "file(s) that are not images",
                        "nested folder": "folder(s) nested inside class folders (not read)",
                        "unreadable": "unreadable image(s)"}[reason]
                warn(f"skipped {len(paths)} {what}, e.g. {paths[0]}")

    # -- summaries ---------------------------------------------------------------------------
    def __len__(self):
        return len(self.paths)

    def class_counts(self):
        """Number of images per class, in class order."""
        counts = [0] * len(self.class_names)
        for label in self.labels.tolist():
            counts[label] += 1
        return counts

    def __repr__(self):
        height, width = self.image_size
        return (f"ImageFolder({self.root!r}: {len(self)} images, {len(self.class_names)} classes, "
                f"{self.channels} channel(s), {height}x{width})")
