"""Host-side image arrays for the data code: decoded pixels as uint8 ``(N, C, H, W)``, and their statistics.

The data loader decodes images with Pillow on the CPU and keeps them as uint8
NumPy arrays; these helpers are the places where it needs NumPy itself.
Everything else in :mod:`nnfs.data` works through the methods of the arrays
they return. (The random changes of augmentation are in ``augment``.)
"""

import numpy as np

__all__ = ["images_from_bytes", "empty_images", "put_image", "channel_mean_std", "write_images",
           "read_images", "key_mask"]


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


def empty_images(count, channels, height, width):
    """An uninitialised ``(N, C, H, W)`` uint8 array, to be filled with :func:`put_image`."""
    return np.empty((count, channels, height, width), dtype=np.uint8)


def put_image(images, index, raw):
    """Store one image's raw ``H x W x C`` bytes (Pillow's ``tobytes()``) as ``images[index]``."""
    _, channels, height, width = images.shape
    pixels = np.frombuffer(raw, dtype=np.uint8)
    if pixels.size != channels * height * width:
        raise ValueError(f"put_image: got {pixels.size} bytes, expected {channels * height * width}")
    images[index] = pixels.reshape(height, width, channels).transpose(2, 0, 1)


def key_mask(pixels, key):
    """The alpha of a colour-keyed image: 0 where a pixel equals ``key``, 255 elsewhere.

    Args:
        pixels: the bytes of a Pillow ``"I"`` image (``tobytes()``: native 32-bit integers).
        key: the transparent value.

    Returns:
        the bytes of an ``"L"`` image of the same size.
    """
    values = np.frombuffer(pixels, dtype=np.int32)
    return ((values != int(key)) * np.uint8(255)).astype(np.uint8).tobytes()


def write_images(file, images):
    """Write a uint8 ``(N, C, H, W)`` array to an open binary file in NumPy's ``.npy`` format."""
    np.lib.format.write_array(file, np.ascontiguousarray(images, dtype=np.uint8), allow_pickle=False)


def read_images(file, shape):
    """Read back what :func:`write_images` wrote, only if it is a uint8 array of exactly ``shape``.

    Nothing larger than ``shape`` is ever allocated, whatever the header claims, and
    nothing is unpickled.

    Raises:
        ValueError: for any other header, or fewer bytes than the shape needs.
    """
    version = np.lib.format.read_magic(file)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unknown .npy version {version}")
    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
        version, np.lib.format.read_array_header_2_0)
    stored, fortran, dtype = read_header(file)
    if tuple(stored) != tuple(shape) or fortran or dtype != np.uint8:
        raise ValueError(f"holds a {dtype} array of shape {stored}, expected uint8 {tuple(shape)}")
    images = np.empty(shape, dtype=np.uint8)
    view, done = memoryview(images.reshape(-1)), 0
    while done < view.nbytes:  # straight into the array: no second copy of the pixels
        got = file.readinto(view[done:])
        if not got:
            raise ValueError(f"holds {done} bytes of pixels, expected {view.nbytes}")
        done += got
    return images


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
