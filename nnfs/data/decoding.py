"""Decoding many image files: a thread pool, a progress bar, and Pillow's warnings per file.

Threads, not processes: Pillow releases the GIL while it decodes and resizes, so
the threads of one process keep every core busy, share the result array with no
copying and start at once. Results come back in file order whatever the number
of threads, so a load is the same with one thread or sixteen.
"""

import bisect
import concurrent.futures
import contextlib
import logging
import os
import re
import threading
import warnings

from PIL import Image

from nnfs.data.images import DatasetError
from nnfs.text import count

__all__ = ["default_workers", "read_all", "reading", "DecoderWarnings"]

# Which file each thread is reading, for DecoderWarnings (see there).
_current = threading.local()


@contextlib.contextmanager
def reading(path):
    """Mark that this thread reads ``path`` inside the block: Pillow's warnings then count for it."""
    _current.path = path
    try:
        yield
    finally:
        _current.path = None


def default_workers():
    """One thread per core this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, min(cores, 32))


def read_all(read, paths, workers=None, progress=False, description="reading images"):
    """``read(path)`` for every path, in a pool of ``workers`` threads; yields results in order.

    Files go to the threads in chunks of up to 32 (a few per thread at least), so
    that thousands of small files do not cost thousands of hand-overs.

    Yields:
        ``(index, result, error)``: ``error`` is the :class:`DatasetError` ``read``
        raised for that file (then ``result`` is None). Other exceptions propagate.

    Args:
        progress: show a progress bar on stderr (only when stderr is a terminal).
    """
    workers = default_workers() if workers is None else workers
    bar = _bar(len(paths), description) if progress else None

    def attempt(chunk):
        done = []
        for path in chunk:
            try:
                done.append((read(path), None))
            except DatasetError as error:
                done.append((None, error))
        return done

    size = max(1, min(32, len(paths) // (4 * workers)))
    chunks = [paths[start:start + size] for start in range(0, len(paths), size)]
    pool = None
    try:
        if workers <= 1:
            results = map(attempt, chunks)
        else:
            Image.init()  # every format plugin registered once, here, rather than by racing threads
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                          thread_name_prefix="nnfs-decode")
            try:
                results = pool.map(attempt, chunks)
            except RuntimeError:  # "can't start new thread": a memory or process limit
                pool.shutdown(wait=True, cancel_futures=True)  # what started is dropped, not used
                pool, results = None, map(attempt, chunks)  # this thread decodes them all
        index = 0
        for done in results:
            if bar is not None:
                bar.update(len(done))
            for result, error in done:
                yield index, result, error
                index += 1
    finally:
        if pool is not None:
            # On an error or Ctrl-C, files not yet started are dropped instead of waited for.
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()


def _bar(total, description):
    from tqdm import tqdm  # imported only when a bar is wanted: importing nnfs.data stays light

    # disable=None: drawn only on a terminal, so logs and pipes stay clean.
    return tqdm(total=total, desc=description, unit="img", leave=False, disable=None,
                dynamic_ncols=True, mininterval=0.25)


# Pillow's warnings about one file, by kind: what the warning line says about those files.
# Each kind of warning: how its files are named, for one and for several.
_KINDS = {
    "large": ("very large image read", "very large images read"),
    "exif": ("image with corrupt EXIF or TIFF tag data (read; its orientation may be wrong)",
             "images with corrupt EXIF or TIFF tag data (read; their orientation may be wrong)"),
    "other": ("image read with a warning from the decoder", "images read with a warning from the decoder"),
}
_LARGE = " (over Pillow's decompression-bomb limit of {limit:,} pixels; check that they are real photos)"
_EXIF = re.compile(r"corrupt EXIF", re.IGNORECASE)
# Pillow parses EXIF blocks (and TIFF tags) in this module; its warnings are about that data.
_TAG_PARSER = "TiffImagePlugin.py"


class DecoderWarnings:
    """Pillow's warnings about single files, collected and counted instead of printed.

    Pillow warns through :mod:`warnings` (``DecompressionBombWarning`` for a huge
    image, "Corrupt EXIF data" for a damaged photo), which prints two raw lines per
    file. Inside ``with DecoderWarnings() as notes:``, every warning Pillow issues
    while a thread reads a file (inside :func:`reading`, as ``ImageFolder`` and
    ``Preprocessing.read`` do) is kept under that file's path; :meth:`report` then
    says one line per kind, with a count.

    Pillow also logs (:mod:`logging`, the ``PIL`` loggers) just before it gives up
    on a damaged file ("More samples per pixel than can be decoded: 2048" for a
    TIFF); with no logging set up, Python prints such a record raw on stderr. The
    records logged while a thread reads a file are dropped, not kept (with ``PIL``
    logging at DEBUG level, Pillow logs several records for every file): the failure
    that follows is reported by the reader, one counted line, as any unreadable
    file is.

    ``warnings.catch_warnings`` is not thread-safe, so only the thread that opens
    the ``with`` block changes the warning filters and the ``PIL`` logger; worker
    threads only mark which file they are reading, in a thread-local, where the
    shared handlers look it up. Warnings and log records outside any ``reading``
    block are shown as usual.

    Attributes:
        files: ``{"large": [...], "exif": [...], "other": [...]}`` paths (each once, sorted:
            threads finish in any order, the report does not change with them).
        messages: the first warning text of each kind.
    """

    def __init__(self):
        self.files = {kind: [] for kind in _KINDS}
        self.messages = {}
        self._lock = threading.Lock()
        self._catch = None
        self._log = None

    def __enter__(self):
        self._log = _PillowLog()
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        shown = warnings.showwarning
        # "always": the default filter shows a warning once per line of Pillow's code,
        # which would count one file where there are fifty.
        warnings.filterwarnings("always", module=r"(PIL|nnfs\.data)(\.|$)")
        warnings.filterwarnings("always", category=Image.DecompressionBombWarning)

        def show(message, category, filename, lineno, file=None, line=None):
            path = getattr(_current, "path", None)
            if path is None:
                return shown(message, category, filename, lineno, file, line)
            self._add(path, message, category, filename)
            return None

        warnings.showwarning = show
        return self

    def __exit__(self, *exc):
        self._log.close()
        self._catch.__exit__(*exc)
        return False

    def _add(self, path, message, category, filename):
        if issubclass(category, Image.DecompressionBombWarning):
            kind = "large"
        elif _EXIF.search(str(message)) or os.path.basename(str(filename)) == _TAG_PARSER:
            kind = "exif"
        else:
            kind = "other"
        with self._lock:
            if path not in self.files[kind]:
                bisect.insort(self.files[kind], path)
            text = " ".join(str(message).split())
            if path == self.files[kind][0] or kind not in self.messages:
                self.messages[kind] = text

    def forget(self, paths):
        """Drop what was noted about ``paths``: files that could not be read in the end are
        reported as unreadable, not also as "read with a warning"."""
        gone = {str(path) for path in paths}
        with self._lock:
            for kind in self.files:
                self.files[kind] = [path for path in self.files[kind] if path not in gone]

    def report(self, warn):
        """Call ``warn`` with one line per kind of warning met: how many files, one example."""
        for kind, paths in self.files.items():
            if paths:
                if kind == "large":
                    detail = _LARGE.format(limit=Image.MAX_IMAGE_PIXELS or 0)
                else:
                    detail = f" ({self.messages[kind]})" if kind == "other" else ""
                warn(f"{count(len(paths), *_KINDS[kind])}{detail}, e.g. {paths[0]}")

    def to_dict(self):
        return {"files": self.files, "messages": self.messages}

    @classmethod
    def from_dict(cls, data):
        notes = cls()
        for kind in _KINDS:
            notes.files[kind] = [str(p) for p in data.get("files", {}).get(kind, [])]
        notes.messages = {k: str(v) for k, v in data.get("messages", {}).items() if k in _KINDS}
        return notes


class _PillowLog(logging.Handler):
    """Takes the ``PIL`` logger's records while a :class:`DecoderWarnings` is open.

    The records of a thread reading a file are dropped; the others are passed on to the
    root logger as propagation would have (its handlers, or Python's last-resort
    printing when there are none). Propagation itself is turned off meanwhile: the
    last resort prints a record whenever no handler at all took it.
    """

    def __init__(self):
        super().__init__()
        self.logger = logging.getLogger("PIL")
        self._propagate = self.logger.propagate
        self.logger.addHandler(self)
        self.logger.propagate = False

    def emit(self, record):
        if getattr(_current, "path", None) is None:
            logging.getLogger().handle(record)

    def close(self):
        self.logger.removeHandler(self)
        self.logger.propagate = self._propagate
        super().close()
