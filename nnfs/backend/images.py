"""Host-side image arrays for the data code: decoded pixels as uint8 ``(N, C, H, W)``, and their statistics.

The data loader decodes images with Pillow on the CPU and keeps them as uint8
NumPy arrays; these helpers are the two places where it needs NumPy itself.
Everything else in :mod:`nnfs.data` works through the methods of the arrays
they return.
"""

import numpy as np

__all__ = ["images_from_bytes", "channel_mean_std"]


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
