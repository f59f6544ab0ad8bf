"""A cache of decoded datasets, so that the second run on a folder starts in a fraction of a second.

Decoding thousands of photos takes seconds to minutes; the result, every image
already converted and resized to uint8, is small. It is kept in one file per
folder and set of loading options (its *slot*), under ``default_cache_dir()``
unless told otherwise:

- the file is valid only for a *key*: a hash of every file's relative path,
  class, size, modification time and status-change time, the loading options,
  the cache format and Pillow's version. Touching, replacing, adding or removing
  a single image changes the key, so the next load decodes again and replaces
  the entry (one file per slot: stale entries do not pile up);
- it is written through :func:`nnfs.files.write_atomically`: an interrupted run
  never leaves half a cache under the real name;
- it is a zip of a JSON record and one ``.npy`` array, read back with every size
  checked against the record before anything is allocated, and never unpickled.
  A damaged, foreign or truncated file is a miss, never an error, and so is anything
  but a regular file at its name (a FIFO is never opened: it would block the load).
"""

import hashlib
import json
import os
import zipfile

import PIL

from nnfs.backend.archive import open_regular
from nnfs.backend.images import read_images, write_images
from nnfs.files import write_atomically

__all__ = ["DatasetCache", "default_cache_dir", "ENV_CACHE_DIR"]

ENV_CACHE_DIR = "NNFS_CACHE_DIR"
FORMAT = "nnfs-dataset-cache"
# Raised whenever what a load produces changes (the sizing rule, how pixels are decoded), so
# that an entry made by an earlier version is a miss, not a dataset the current code would not make.
VERSION = 4
# The JSON record lists every file; a bigger one is not ours.
_MAX_RECORD_BYTES = 256 * 2 ** 20


def default_cache_dir():
    """``$NNFS_CACHE_DIR``, else ``$XDG_CACHE_HOME/nnfs/datasets``, else ``~/.cache/nnfs/datasets``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says (it would put the
    cache wherever the program happens to run); a leading ``~`` in ``NNFS_CACHE_DIR`` is the
    home folder.
    """
    if os.environ.get(ENV_CACHE_DIR):
        return os.path.expanduser(os.environ[ENV_CACHE_DIR])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nnfs", "datasets")


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


class DatasetCache:
    """The cache entry of one folder loaded with one set of options.

    Args:
        folder: where cache files go.
        root: the dataset folder.
        options: the loading options as a JSON-able dict (requested size, channels,
            resize mode, ...); a different set is a different slot.

    Attributes:
        path: the cache file.
    """

    def __init__(self, folder, root, options):
        self.root = os.path.abspath(root)
        self.options = dict(options)
        slot = _digest({"root": self.root, "options": self.options})[:32]
        self.path = os.path.join(os.fspath(folder), f"{slot}.nnfs-cache")

    def key(self, files):
        """The key of a scan: ``files`` is ``[(path, label, (size, mtime_ns, ctime_ns)), ...]``."""
        listed = [[os.path.relpath(path, self.root), label, list(stats)] for path, label, stats in files]
        return _digest({"format": FORMAT, "version": VERSION, "pillow": PIL.__version__,
                        "options": self.options, "files": listed})

    def load(self, key, accept=None):
        """``(images, record)`` stored under ``key``, or None: missing, stale or damaged.

        Args:
            accept: called with the record before the pixels are read; it returns
                False to treat the entry as a miss, or raises to stop (a memory check).
        """
        try:
            # Only a regular file, checked on the opened file: opening a FIFO at the path would
            # wait for a writer forever.
            file = open_regular(self.path)
        except Exception:  # whatever is wrong with a cache file, it is only a miss
            return None
        with file:
            return self._load_from(file, key, accept)

    def _load_from(self, file, key, accept):
        """:meth:`load` from the opened cache file."""
        try:
            archive = zipfile.ZipFile(file)
        except Exception:
            return None
        with archive:
            try:
                record = self._record(archive, key)
            except Exception:
                return None
            if record is None or (accept is not None and not accept(record)):
                return None
            try:
                with archive.open("images.npy") as file:
                    return read_images(file, tuple(record["shape"])), record
            except Exception:
                return None

    def _record(self, archive, key):
        members = {info.filename: info for info in archive.infolist()}
        if set(members) != {"record.json", "images.npy"}:
            return None
        if members["record.json"].file_size > _MAX_RECORD_BYTES:
            return None
        record = json.loads(archive.read("record.json").decode("utf-8"))
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
            return None
        shape = [int(v) for v in record["shape"]]
        if len(shape) != 4 or min(shape) < 0 or shape[0] != len(record["paths"]):
            return None
        # The array member must be the pixels and a header, no more: nothing else is read.
        if not 0 <= members["images.npy"].file_size - _product(shape) <= 65536:
            return None
        record["shape"] = shape
        return record

    def store(self, key, images, record):
        """Write ``images`` and the JSON-able ``record`` under ``key`` (atomically).

        Raises:
            OSError: when the cache folder is not writable or the disk is full.
        """
        record = dict(record, format=FORMAT, version=VERSION, key=key, shape=list(images.shape))

        def write(file):
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr("record.json", json.dumps(record))
                with archive.open("images.npy", "w", force_zip64=True) as member:
                    write_images(member, images)

        write_atomically(self.path, write)


def _product(shape):
    total = 1
    for value in shape:
        total *= value
    return total
