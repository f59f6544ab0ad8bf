"""Host-side storage for checkpoints: ``.npz`` archives of plain arrays and JSON records in them.

Everything is read with ``allow_pickle=False``: an archive can hold numbers and text, never code.
"""

import numpy as np

__all__ = ["json_to_array", "array_to_json", "save_npz", "load_npz", "is_plain_array"]


def json_to_array(text):
    """Store JSON text as a uint8 array (no pickling needed to read it back)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def array_to_json(data):
    """The JSON text stored by :func:`json_to_array`."""
    return np.asarray(data, dtype=np.uint8).tobytes().decode("utf-8")


def save_npz(file, arrays):
    """Write ``{name: array}`` to an open binary file as an uncompressed ``.npz``."""
    np.savez(file, **{name: np.asarray(value) for name, value in arrays.items()})


def load_npz(path):
    """Read every array of an ``.npz`` file into a dict, refusing pickled objects.

    Raises whatever NumPy or ``zipfile`` raise on a damaged file; the caller
    turns that into a message about the file.
    """
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
        raise ValueError("it holds a single array, not an .npz archive")
    with loaded as archive:
        return {name: archive[name] for name in archive.files}


def is_plain_array(x):
    """True for a plain NumPy array (what an archive stores as it is)."""
    return type(x) is np.ndarray
