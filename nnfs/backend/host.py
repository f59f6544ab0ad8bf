"""Host (CPU, NumPy) array helpers for the parts of nnfs that are not layers.

The data loader and the checkpoint format need a few host arrays: decoded
images as uint8, labels, per-channel statistics and ``.npz`` files. They live
here so that NumPy stays imported only inside :mod:`nnfs.backend`; everything
else works through array methods on what these functions return.
"""

import numpy as np


def array(values, dtype):
    """A new host array of ``dtype`` from a list (or any array-like)."""
    return np.array(values, dtype=dtype)


def images_from_bytes(buffer, count, height, width, channels):
    """Turn raw pixel bytes (images one after another, each ``H x W x C``) into ``(N, C, H, W)`` uint8.

    This is the layout Pillow's ``Image.tobytes()`` writes; the result is a
    contiguous copy in the channel-first layout that the layers expect.
    """
    pixels = np.frombuffer(buffer, dtype=np.uint8)
    expected = count * height * width * channels
    if pixels.size != expected:
        raise ValueError(f"images_from_bytes: got {pixels.size} bytes, expected {expected}")
    return np.ascontiguousarray(pixels.reshape(count, height, width, channels).transpose(0, 3, 1, 2))


def channel_mean_std(images, indices, chunk=1024):
    """Per-channel mean and standard deviation of ``images[indices] / 255`` as Python floats.

    Accumulated in float64 over chunks, so a large dataset never needs a float copy of itself.

    Shape:
        - images: ``(N, C, H, W)`` uint8
        - Output: two lists of C floats
    """
    channels = images.shape[1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    indices = np.asarray(indices, dtype=np.int64)
    for start in range(0, indices.size, chunk):
        block = images[indices[start:start + chunk]].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block * block).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    if count == 0:
        raise ValueError("channel_mean_std: no images to compute statistics on")
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0)
    return [float(m) for m in mean], [float(s) for s in np.sqrt(var)]


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


def is_host_array(x):
    """True for a plain NumPy array (what the checkpoint format can store)."""
    return isinstance(x, np.ndarray) and type(x) is np.ndarray


__all__ = ["array", "images_from_bytes", "channel_mean_std", "json_to_array", "array_to_json",
           "save_npz", "load_npz", "is_host_array"]
