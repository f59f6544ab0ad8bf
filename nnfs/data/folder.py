"""A folder of images, one subfolder per class, decoded into memory as uint8."""

import heapq
import os
import stat
import warnings

from nnfs.backend import host_array
from nnfs.backend.images import empty_images, put_image
from nnfs.checks import int_pair, integer
from nnfs.data.cache import DatasetCache
from nnfs.data.decoding import DecoderWarnings, default_workers, read_all, reading
from nnfs.data.images import (
    IMAGE_EXTENSIONS, RESIZE_MODES, DatasetError, UnusableImage, broken_link, checked, file_type,
    is_cloud_placeholder, in_the_cloud, is_image_file, is_passed_over, probe, read_image, unread_kind,
    unread_photos, unreadable)
from nnfs.data.memory import ImageSizeError, available_memory, check_fits, format_bytes
from nnfs.data.sizing import Sizing, choose_sizing
from nnfs.files import file_key, name_key, name_order
from nnfs.text import count, short_repr, shorten

# What each kind of skipped entry is called, for one and for several (nnfs.text.count).
_SKIPPED = {"not an image": ("file that is not an image", "files that are not images"),
            "nested folder": ("folder nested inside a class folder (not read)",
                              "folders nested inside class folders (not read)"),
            "not a regular file": ("entry that is not a regular file (a FIFO, socket or device; not opened)",
                                   "entries that are not regular files (FIFOs, sockets, devices; not opened)"),
            "unreadable": ("unreadable image", "unreadable images"),
            "reached twice": ("file reached twice in its class (a link; read once)",
                              "files reached twice in their class (links; read once)"),
            "in the cloud": ("photo kept in iCloud only (an .icloud placeholder, not read; download it first)",
                             "photos kept in iCloud only (.icloud placeholders, not read; download them first)"),
            "in no class": ("image directly in the dataset folder, in no class folder (not read)",
                            "images directly in the dataset folder, in no class folder (not read)")}


#: Bytes per pixel a file can take while it is decoded and converted: the image at full
#: size and the copies of its conversion (measured on 3000x3000 and 4000x4000 files: 5 for
#: grayscale to RGB, 10 for 16-bit grayscale through float, 16-20 for palette, alpha and
#: colour-keyed images composited onto white, whose key the header's mode does not show).
DECODING_BYTES_PER_PIXEL = 20


def decoding_bytes(header):
    """Memory one file can take while it is decoded, from its header ``((width, height), mode)``:
    :data:`DECODING_BYTES_PER_PIXEL` per pixel, the most measured. A JPEG decoded at a reduced
    size takes far less: this is an upper bound, which only ever lowers the decoding threads."""
    (width, height), _ = header
    return width * height * DECODING_BYTES_PER_PIXEL


def _warn(message):
    warnings.warn(message, stacklevel=3)


def _checked(check, *args, **kwargs):
    return checked(check, "ImageFolder", *args, **kwargs)


class ImageFolder:
    """Every image under ``root/<class name>/``, converted to one channel count and size.

    Class names are the subfolder names, sorted (as :func:`~nnfs.files.name_key` writes them,
    so in the same order on every system); label ``i`` is ``class_names[i]``. Two
    names that look the same (``café`` composed and decomposed, :func:`~nnfs.files.name_key`)
    are refused; names that differ only in case or surrounding spaces (``Cat``, ``cat``) are
    read apart, with a warning (macOS and Windows hold them as one folder).
    Only regular files directly inside a class folder are read. Skipped, and
    counted in one warning per reason: files whose name does not end in an image
    extension (see :data:`~nnfs.data.images.IMAGE_EXTENSIONS`), folders nested
    inside a class folder, entries that are not regular files (a FIFO, a
    socket or a device is never opened), images directly in ``root``, beside the
    class folders (they have no class), and the placeholders of photos kept in iCloud only
    (:func:`~nnfs.data.images.is_cloud_placeholder`). Other hidden entries (starting with
    ``.``) and system folders (``__MACOSX``, ``@eaDir``, ...:
    :data:`~nnfs.data.images.SYSTEM_FOLDERS`) are skipped silently. Files are decoded only as the raster formats of
    :data:`~nnfs.data.images.RASTER_FORMATS`, whatever their content claims.

    An entry or image that cannot be read (a broken file, a symlink loop, a
    permission denied) stops the load with a :class:`DatasetError` naming its path
    (``on_error="raise"``, the default), or is skipped and counted
    (``on_error="skip"``). Pillow's warnings about single files (a decompression-bomb
    sized image, corrupt EXIF data) are counted in one line per kind.

    The size, channels and :attr:`kind` follow :mod:`nnfs.data.sizing`: small images
    keep their most common size, photos (and images of varied sizes, some of them
    larger than 64x64) become 64x64. Before the images are decoded,
    the memory they need (plus what ``reserve`` adds) is compared with what the
    machine has (:mod:`nnfs.data.memory`): what cannot fit is refused with an
    :class:`~nnfs.data.memory.ImageSizeError`, as is a size below ``min_size``.

    Files are decoded by a pool of threads (:mod:`nnfs.data.decoding`); with
    ``cache`` set, the decoded dataset is kept there and the next load of the same
    files with the same options reads it back instead (:mod:`nnfs.data.cache`).

    Args:
        root: the dataset folder.
        image_size: ``(height, width)`` or an int for squares; None for the rule of
            :mod:`nnfs.data.sizing`.
        channels: 1 (grayscale) or 3 (RGB); None gives 1 when every image is
            grayscale and 3 otherwise. Transparency is composited onto white.
        resize: ``"crop"`` (keep the aspect ratio, cut the overhang) or ``"stretch"``.
        on_error: ``"raise"`` or ``"skip"`` for unreadable images.
        limit: read at most this many images per class (the first in name order).
        warn: called with one message per kind of skipped file, and about class names that
            differ only in case; default ``warnings.warn``.
        cache: a folder for the decoded-dataset cache (e.g. :func:`~nnfs.data.default_cache_dir`),
            or None for no cache.
        workers: decoding threads; default one per core. 1 decodes in the calling thread.
        progress: show a progress bar on stderr while decoding (on a terminal only).
        min_size: the smallest height and width the images may have (a model's minimum).
        max_values: the most values (channels x height x width) one image may have, or None
            for no limit but the memory's.
        reserve: ``reserve(sizing, count, n_classes)`` returns ``{"name": bytes}`` of the
            memory the caller will need besides the images (a model, its training) for
            ``count`` images of that :class:`~nnfs.data.sizing.Sizing`; it is checked with
            them before decoding. See :func:`~nnfs.data.memory.training_bytes`.

    Attributes:
        images: ``(N, C, H, W)`` uint8 NumPy array.
        labels: ``(N,)`` int64 NumPy array of class indices.
        paths: the N file paths, in the order of ``images``.
        class_names: list of class names.
        channels: 1 or 3.
        image_size: ``(height, width)``.
        kind: ``"photos"`` or ``"small"``: what the images are, from their sizes
            (see :mod:`nnfs.data.sizing`). Defaults that depend on the data
            (resizing, augmentation, the model) follow it.
        sizing: the :class:`~nnfs.data.sizing.Sizing` chosen, with :meth:`~Sizing.describe`.
        resize: ``"crop"`` or ``"stretch"``.
        skipped: ``{"not an image": [...], "nested folder": [...], "not a regular file":
            [...], "unreadable": [...], "reached twice": [...], "in no class": [...], "in the
            cloud": [...]}`` paths.
        decoder_warnings: the :class:`~nnfs.data.decoding.DecoderWarnings` of the load.
        cache_path: the cache file, or None without a cache.
        from_cache: True when the images were read from the cache.

    Raises:
        DatasetError: missing root, no class subfolders, two class names that look the same,
            a class without images, fewer than two classes, or (with ``on_error="raise"``) an unreadable image.
        ImageSizeError: a size below ``min_size``, an image over ``max_values``, or more memory
            than is available.
    """

    def __init__(self, root, image_size=None, channels=None, resize="crop", on_error="raise", limit=None,
                 warn=None, cache=None, workers=None, progress=False, min_size=1, reserve=None, *,
                 max_values=None):
        if on_error not in ("raise", "skip"):
            raise DatasetError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if channels is not None:  # checked as an int first: True and 3.0 compare equal to 1 and 3
            channels = _checked(integer, "channels", channels)
            if channels not in (1, 3):
                raise DatasetError(f"channels must be 1, 3 or None, got {channels!r}")
        if resize not in RESIZE_MODES:
            raise DatasetError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if limit is not None:
            limit = _checked(integer, "limit", limit, minimum=1)
        if workers is not None:
            workers = _checked(integer, "workers", workers, minimum=1)
        min_size = _checked(integer, "min_size", min_size, minimum=1)
        if max_values is not None:
            max_values = _checked(integer, "max_values", max_values, minimum=1)
        image_size = None if image_size is None else _checked(int_pair, "image_size", image_size)
        self.root = os.fspath(root)
        self.resize = resize
        self.skipped = {reason: [] for reason in _SKIPPED}
        warn = warn or _warn
        self.class_names, files = self._scan(limit, on_error, warn)

        options = {"image_size": image_size and list(image_size), "channels": channels, "resize": resize,
                   "on_error": on_error, "limit": limit}
        store = DatasetCache(cache, self.root, options) if cache is not None else None
        self.cache_path = store.path if store else None
        key = store.key(files) if store else None
        self.from_cache = store is not None and self._load_cached(store, key, min_size, max_values, reserve)
        if not self.from_cache:
            self.decoder_warnings = DecoderWarnings()
            with self.decoder_warnings:
                headers = self._probe(files, on_error, workers)
                self._require_every_class([label for _, label, _ in headers])
                self.sizing = choose_sizing([h for _, _, h in headers], image_size, channels, resize)
                self._check(min_size, max_values, reserve, len(headers))
                self._decode(headers, on_error, self._decoding_threads(headers, workers, warn), progress)
            if store:
                self._store(store, key, warn)
        self._report(warn)

    # -- scanning --------------------------------------------------------------------------
    def _entry_stat(self, entry, on_error, image_name=True):
        """``entry.stat()`` (following links), or None for an entry that cannot be read and is skipped."""
        try:
            return entry.stat()
        except OSError as error:
            if not image_name:  # a broken link named notes.txt would be skipped anyway
                self.skipped["not an image"].append(entry.path)
            elif on_error == "raise":
                raise UnusableImage(str(unreadable(entry.path, error))) from None
            else:
                self.skipped["unreadable"].append(entry.path)
            return None

    def _listing(self, folder):
        # Sorted as the names read, whatever their Unicode form and the locale (name_order): a
        # copy of the dataset on another system has the same classes, labels and split.
        try:
            return sorted(os.scandir(folder), key=lambda e: name_order(e.name))
        except OSError as error:
            raise unreadable(folder, error) from None

    def _check_names_apart(self, classes, warn):
        """Refuse two class folders whose names look the same (one name in two Unicode forms,
        :func:`~nnfs.files.name_key`), and warn of names that differ only in case or surrounding
        spaces (on macOS and Windows, whose file systems ignore case, they are one folder)."""
        seen, alike = {}, []
        for name in classes:
            twin = seen.setdefault(name_key(name), name)
            if twin != name:  # ascii() shows the difference, which printing hides
                raise DatasetError(
                    f"class folders {shorten(ascii(twin), 60)} and {shorten(ascii(name), 60)} in {self.root} are "
                    "one name written in two Unicode forms (composed and decomposed, as macOS writes names): "
                    "they would be two classes that print the same; move the images of one into the other")
        loose = {}
        for name in classes:
            twin = loose.setdefault(name_key(name).strip().casefold(), name)
            if twin != name:
                alike.append(f"{short_repr(twin, 40)} and {short_repr(name, 40)}")
        if alike:
            more = f" (and {count(len(alike) - 1, 'more pair')})" if len(alike) > 1 else ""
            warn(f"class folders {alike[0]}{more} in {self.root} differ only in case or surrounding spaces: "
                 "on macOS and Windows they are one folder, so a copy of this dataset there merges them "
                 "or fails; they are read here as separate classes")

    def _scan(self, limit, on_error, warn):
        root = self.root
        if not os.path.exists(root):
            target = broken_link(root)
            if target is not None:  # "not found" would contradict the listing, which shows the link
                raise DatasetError(f"dataset folder {root} is a broken symbolic link (its target {target} "
                                   "does not exist)")
            raise DatasetError(f"dataset folder not found: {root}")
        if not os.path.isdir(root):
            raise DatasetError(f"dataset path is not a folder: {root}")
        classes, loose, folders = [], [], {}
        itself = file_key(root)
        for entry in self._listing(root):
            if is_passed_over(entry.name):
                continue
            status = self._entry_stat(entry, on_error)
            if status is None:
                continue
            if stat.S_ISDIR(status.st_mode):
                # A link to another class folder would make its images two classes at once.
                key = file_key(entry.path, status)
                if key == itself:
                    raise DatasetError(f"class folder {entry.name!r} in {root} is the dataset folder itself (a "
                                       "link to it); remove the link")
                twin = folders.setdefault(key, entry.name)
                if twin != entry.name:
                    raise DatasetError(
                        f"class folders {twin!r} and {entry.name!r} in {root} are one folder (through a link): "
                        "its images would be two classes at once; remove the link")
                classes.append(entry.name)
            elif stat.S_ISREG(status.st_mode) and (is_image_file(entry.name) or unread_kind(entry.name)):
                loose.append(entry.path)  # photos of a format not read (HEIC) are photos of the roll too
        if not classes:
            hint = f" (it holds {len(loose)} images directly)" if loose else ""
            raise DatasetError(
                f"no class subfolders in {root}{hint}; expected one folder per class, "
                f"e.g. {os.path.join(root, 'cats', '001.png')}")
        # Images beside the class folders have no class: left out, but said (a camera roll with
        # a few subfolders would otherwise train on the subfolders and drop the roll unsaid).
        self.skipped["in no class"] = loose
        self._check_names_apart(classes, warn)
        files, seen = [], {}  # seen: file identity -> (label, path), for files linked twice
        for label, name in enumerate(classes):
            folder = os.path.join(root, name)
            found = []
            for entry in self._listing(folder):
                if is_cloud_placeholder(entry.name):
                    self.skipped["in the cloud"].append(entry.path)
                    continue
                if is_passed_over(entry.name):
                    continue
                status = self._entry_stat(entry, on_error, is_image_file(entry.name))
                if status is None:
                    continue
                if stat.S_ISDIR(status.st_mode):
                    self.skipped["nested folder"].append(entry.path)
                elif file_type(status.st_mode):
                    self.skipped["not a regular file"].append(entry.path)
                elif is_image_file(entry.name):
                    key = file_key(entry.path, status)
                    stats = (status.st_size, status.st_mtime_ns, status.st_ctime_ns)
                    if key not in seen:
                        seen[key] = (label, entry.path, len(found))
                        found.append((entry.path, stats))
                        continue
                    first_label, first_path, index = seen[key]
                    if first_label != label:
                        raise DatasetError(
                            f"{first_path} and {entry.path} are one file (a link) in two classes, "
                            f"{classes[first_label]!r} and {name!r}: an image has one class; remove one of them")
                    # The same image twice in its class: read once, at its own path where one of
                    # the two is a symbolic link (the link is what is skipped, whatever the names' order).
                    if os.path.islink(first_path) and not entry.is_symlink():
                        found[index] = (entry.path, stats)
                        seen[key] = (label, entry.path, index)
                        self.skipped["reached twice"].append(first_path)
                    else:
                        self.skipped["reached twice"].append(entry.path)
                else:
                    self.skipped["not an image"].append(entry.path)
            if not found:
                # train/ and val/ folders of classes: the dataset is one level further down.
                inner = [os.path.basename(p) for p in self._skipped_in("nested folder", folder)]
                hint = (f"; it holds folders ({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}): "
                        f"if they are the classes, the dataset is {folder}" if inner else "")
                photos = unread_photos(self._skipped_in("not an image", folder))
                if photos and not hint:
                    hint = f"; it holds {photos}"
                cloud = in_the_cloud(self._skipped_in("in the cloud", folder))
                if cloud and not hint:
                    hint = f"; it holds {cloud}"
                raise DatasetError(
                    f"class folder {folder} has no images (looked for files ending in "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))}){hint}")
            files.extend((path, label, stats) for path, stats in found[:limit])
        if len(classes) < 2:
            hint = (f"; the {count(len(loose), 'image')} directly in {root} belong to no class: "
                    f"move them into a folder of their class" if loose else "")
            raise DatasetError(
                f"only one class folder in {root} ({classes[0]!r}); a classifier needs at least two{hint}")
        return classes, files

    # -- decoding --------------------------------------------------------------------------
    def _read_each(self, read, items, on_error, workers, progress=False, description=""):
        """Yield ``(item, result)`` for the items whose file ``read`` could read, in order."""
        def attempt(path):
            with reading(path):
                return read(path)

        for index, result, error in read_all(attempt, [item[0] for item in items], workers, progress,
                                             description):
            if error is None:
                yield items[index], result
            elif on_error == "raise":
                raise UnusableImage(str(error)) from None
            else:
                self.skipped["unreadable"].append(items[index][0])

    def _probe(self, files, on_error, workers):
        """``[(path, label, header)]`` for the files whose header could be read."""
        return [(path, label, header)
                for (path, label, _), header in self._read_each(probe, files, on_error, workers)]

    def _check(self, min_size, max_values, reserve, n_images):
        """Refuse a size below ``min_size``, a dataset (and reserve) larger than the memory, or
        an image of more than ``max_values`` values."""
        sizing = self.sizing
        height, width = sizing.image_size
        # Where the size came from; it qualifies the size alone, not the channels.
        source = ("as asked" if not sizing.chosen else
                  "the most common size" if sizing.kind == "small" else "the default for photos")
        if min(height, width) < min_size:
            raise ImageSizeError(
                f"the images would be {height}x{width} ({source}), smaller than the "
                f"{min_size}x{min_size} the model needs", f"a size of at least {min_size}")
        parts = {"images": n_images * sizing.channels * height * width}
        parts.update(reserve(sizing, n_images, len(self.class_names)) if reserve else {})
        check_fits(parts, f"{n_images} images of {sizing.channels}x{height}x{width}")
        values = sizing.channels * height * width
        if max_values is not None and values > max_values:
            raise ImageSizeError(
                f"the images would be {height}x{width} ({source}) with {count(sizing.channels, 'channel')}, "
                f"{values:,} values each, more than the {max_values:,} a saved model classifies",
                "a smaller image size")

    def _decoding_threads(self, headers, workers, warn):
        """How many threads decode ``headers``: ``workers`` (default one per core), fewer
        where the memory left beside the images does not hold the full-size decodings
        (:func:`decoding_bytes`) of that many of the largest files at once, at least one;
        ``warn`` says so.

        A file is decoded whole before it is shrunk: a scan of 9000x9000 holds hundreds of
        megabytes in every decoding thread at once, beside the images decoded so far (the
        model and its activations come later). The most ``t`` threads can hold at once is
        the ``t`` largest files (one scan among phone photos costs one thread's room, not
        every thread's). Never none: the estimate is the most a file can take (a JPEG is
        decoded at a reduced size where it can), not a reason to refuse.
        """
        wanted = workers or default_workers()
        sizes = heapq.nlargest(wanted, (decoding_bytes(header) for _, _, header in headers))
        available = available_memory()
        if not sizes or not sizes[0] or available is None:
            return wanted
        largest = sizes[0]
        height, width = self.sizing.image_size
        room = available - len(headers) * self.sizing.channels * height * width
        fits, held = 0, 0
        for size in sizes:  # the largest first: each more thread may hold the next largest
            if held + size > room:
                break
            fits, held = fits + 1, held + size
        else:
            return wanted  # every file, or the largest of them one per thread, fits
        fits = max(1, fits)
        warn(f"decoding with {count(fits, 'thread')}, not {wanted}: the largest images take up to "
             f"{format_bytes(largest)} each while they are decoded ({format_bytes(sum(sizes))} for "
             f"{count(len(sizes), 'thread')} at once), and {format_bytes(available)} of memory is available")
        return fits

    def _decode(self, headers, on_error, workers, progress):
        sizing = self.sizing
        height, width = sizing.image_size

        def read(path):
            return read_image(path, sizing.channels, sizing.image_size, sizing.resize)

        # Filled in place as files finish: memory holds the resized dataset, never the files.
        images = empty_images(len(headers), sizing.channels, height, width)
        paths, labels = [], []
        for (path, label, _), raw in self._read_each(read, headers, on_error, workers, progress,
                                                     "decoding images"):
            put_image(images, len(paths), raw)
            paths.append(path)
            labels.append(label)
        self._require_every_class(labels)
        self._set(images[:len(paths)], labels, paths)

    def _skipped_in(self, reason, folder):
        """The entries directly inside ``folder`` skipped for ``reason`` (see :attr:`skipped`)."""
        return [path for path in self.skipped[reason] if os.path.dirname(path) == folder]

    def _require_every_class(self, labels):
        """Refuse a load where some class kept no readable image (``labels``: those of the files
        read so far), naming the class folder and what was skipped in it.

        Checked after the headers are read, before anything is sized or decoded: were no image
        readable at all, sizing would fail with nothing to name.
        """
        present = set(labels)
        for label, name in enumerate(self.class_names):
            if label not in present:
                folder = os.path.join(self.root, name)
                lost = self._skipped_in("unreadable", folder)
                detail = f" (skipped {count(len(lost), 'unreadable image')}, e.g. {lost[0]})" if lost else ""
                raise DatasetError(f"class folder {folder} has no readable images{detail}")

    def _set(self, images, labels, paths):
        self.images = images
        self.labels = host_array(labels, "int64")
        self.paths = paths
        self.channels = self.sizing.channels
        self.image_size = self.sizing.image_size
        self.kind = self.sizing.kind

    # -- the cache ------------------------------------------------------------------------------
    def _load_cached(self, store, key, min_size, max_values, reserve):
        """Take the cache entry of this scan, if there is a valid one; True on a hit."""
        def accept(record):  # the size and memory checks, before the cached pixels are read
            try:
                self.sizing = Sizing.from_dict(record["sizing"])
                count = len(record["paths"])
            except (KeyError, TypeError, ValueError):
                return False
            self._check(min_size, max_values, reserve, count)
            return True

        cached = store.load(key, accept)
        return cached is not None and self._restore(*cached)

    def _store(self, store, key, warn):
        record = {"class_names": self.class_names,
                  "paths": [os.path.relpath(p, self.root) for p in self.paths],
                  "labels": self.labels.tolist(), "sizing": self.sizing.to_dict(),
                  "unreadable": [os.path.relpath(p, self.root) for p in self.skipped["unreadable"]],
                  "decoder_warnings": self.decoder_warnings.to_dict()}
        try:
            store.store(key, self.images, record)
        except OSError as error:  # a read-only or full cache folder costs speed, not the run
            warn(f"could not write the dataset cache {store.path} ({error.strerror or error}); "
                 f"the next run decodes the images again")

    def _restore(self, images, record):
        """Take a cache entry; False (a miss) when it does not match this folder's scan."""
        try:
            labels = [int(v) for v in record["labels"]]
            paths = [os.path.join(self.root, str(p)) for p in record["paths"]]
            consistent = (record["class_names"] == self.class_names and len(labels) == len(paths)
                          and images.shape[1:] == (self.sizing.channels, *self.sizing.image_size)
                          and all(0 <= v < len(self.class_names) for v in labels)
                          and set(labels) == set(range(len(self.class_names))))
            if not consistent:
                return False
            decode_failures = [os.path.join(self.root, str(p)) for p in record["unreadable"]]
            self.decoder_warnings = DecoderWarnings.from_dict(record["decoder_warnings"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        self.skipped["unreadable"].extend(p for p in decode_failures if p not in self.skipped["unreadable"])
        self._set(images, labels, paths)
        return True

    def _report(self, warn):
        for reason, paths in self.skipped.items():
            if paths:
                photos = unread_photos(paths) if reason == "not an image" else ""
                hint = f"; among them {photos}" if photos else ""
                warn(f"skipped {count(len(paths), *_SKIPPED[reason])}, e.g. {paths[0]}{hint}")
        self.decoder_warnings.forget(self.skipped["unreadable"])  # counted as unreadable, not as read
        self.decoder_warnings.report(warn)

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
                f"{self.channels} channel(s), {height}x{width}, {self.kind})")
