"""Random changes to a batch of host uint8 images ``(B, C, H, W)``, for data augmentation.

Every function takes the batch and a NumPy ``Generator`` and returns a new uint8
batch of the same shape. Each works on the whole batch at once: a few gathers
along rows and columns with per-sample index arrays, and elementwise arithmetic,
never a Python loop over samples or pixels. :mod:`nnfs.data.augment` decides
which to apply and with which generator.
"""

import math

import numpy as np

__all__ = ["generator", "random_resized_crop", "random_shift", "random_flip", "colour_jitter"]

# ITU-R 601 luma weights, as Pillow's RGB to L conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)


def generator(seed, stream):
    """A generator determined by two integers (any sign): e.g. a run's seed and an epoch number."""
    return np.random.default_rng([int(seed) % 2 ** 64, int(stream) % 2 ** 64])


def _to_uint8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _bilinear_axis(images, positions, axis):
    """Sample ``images`` along ``axis`` (2: rows, 3: columns) at per-sample float ``positions`` (B, L)."""
    size = images.shape[axis]
    low = np.floor(positions)
    weight = (positions - low).astype(np.float32)
    low = low.astype(np.intp)
    shape = [positions.shape[0], 1, 1, 1]
    shape[axis] = positions.shape[1]
    first = np.take_along_axis(images, np.clip(low, 0, size - 1).reshape(shape), axis=axis)
    second = np.take_along_axis(images, np.clip(low + 1, 0, size - 1).reshape(shape), axis=axis)
    weight = weight.reshape(shape)
    return first * (1.0 - weight) + second * weight


#: Draws of a crop per image before :func:`random_resized_crop` falls back to a centred one.
CROP_ATTEMPTS = 10
#: The aspect ratios (width / height) a crop is drawn within, unless told otherwise (torchvision's).
CROP_RATIO = (3 / 4, 4 / 3)


def random_resized_crop(images, rng, scale=(0.5, 1.0), ratio=CROP_RATIO):
    """Each image's random crop, scaled back to the full size (bilinear); torchvision's
    ``RandomResizedCrop`` with sub-pixel crops.

    For each image, up to ``CROP_ATTEMPTS`` crops are drawn: a share of the image's area
    uniformly from ``scale`` and an aspect ratio (width / height) log-uniformly from
    ``ratio``. The first that fits inside the image, with sides of a pixel or more, is
    taken, at a place drawn uniformly over the positions where it fits. When none fits,
    the crop is the largest centred one whose ratio is within ``ratio``: the whole image
    when its own ratio is. So ``scale=(1, 1)`` keeps every image whose ratio is within
    ``ratio`` as it is (no draw of a full area with another ratio fits), as torchvision does.

    Args:
        images: uint8 ``(B, C, H, W)``.
        rng: a NumPy generator.
        scale: ``(smallest, largest)`` share of the area, in (0, 1].
        ratio: ``(smallest, largest)`` aspect ratio, width over height.
    """
    count, _, height, width = images.shape
    draws = (CROP_ATTEMPTS, count)
    area = rng.uniform(scale[0], scale[1], draws) * (height * width)
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), draws))
    crop_w, crop_h = np.sqrt(area * aspect), np.sqrt(area / aspect)
    fits = (crop_w >= 1) & (crop_w <= width) & (crop_h >= 1) & (crop_h <= height)
    first, found = fits.argmax(axis=0), fits.any(axis=0)  # argmax: the first True of each column
    samples = np.arange(count)
    # The fallback, torchvision's: the image itself, or its widest or tallest centred part
    # whose ratio is the nearest bound of ``ratio``.
    image_ratio = width / height
    if image_ratio < ratio[0]:
        whole_w, whole_h = width, width / ratio[0]
    elif image_ratio > ratio[1]:
        whole_w, whole_h = height * ratio[1], height
    else:
        whole_w, whole_h = width, height
    crop_w = np.where(found, crop_w[first, samples], whole_w)
    crop_h = np.where(found, crop_h[first, samples], whole_h)
    place = np.where(found, rng.uniform(0.0, 1.0, (2, count)), 0.5)
    left, top = place[0] * (width - crop_w), place[1] * (height - crop_h)
    # Output pixel centre j samples the crop at left + (j + 0.5) * crop_w / width - 0.5.
    rows = top[:, None] + (np.arange(height) + 0.5)[None, :] * (crop_h / height)[:, None] - 0.5
    cols = left[:, None] + (np.arange(width) + 0.5)[None, :] * (crop_w / width)[:, None] - 0.5
    out = _bilinear_axis(images.astype(np.float32), rows, axis=2)
    return _to_uint8(_bilinear_axis(out, cols, axis=3))


def random_shift(images, rng, padding):
    """Each image moved by up to ``padding`` pixels in each direction, the uncovered border black.

    The same as padding with zeros and cropping at a random place (the classic
    "random crop with padding" of CIFAR training); a shifted digit is still the digit.
    """
    count, _, height, width = images.shape
    dy = rng.integers(-padding, padding + 1, count)
    dx = rng.integers(-padding, padding + 1, count)
    rows = np.arange(height)[None, :] + dy[:, None]
    cols = np.arange(width)[None, :] + dx[:, None]
    out = np.take_along_axis(images, np.clip(rows, 0, height - 1)[:, None, :, None], axis=2)
    out = np.take_along_axis(out, np.clip(cols, 0, width - 1)[:, None, None, :], axis=3)
    inside = (((rows >= 0) & (rows < height))[:, None, :, None]
              & ((cols >= 0) & (cols < width))[:, None, None, :])
    return out * inside.astype(np.uint8)


def random_flip(images, rng, p=0.5):
    """Each image mirrored left to right with probability ``p``."""
    flip = rng.random(images.shape[0]) < p
    out = images.copy()
    out[flip] = images[flip][..., ::-1]
    return out


def colour_jitter(images, rng, strength=0.2):
    """Each image's brightness, contrast and (for RGB) saturation scaled by factors in ``1 +- strength``."""
    count, channels = images.shape[:2]
    factors = rng.uniform(1.0 - strength, 1.0 + strength, (3, count, 1, 1, 1)).astype(np.float32)
    x = images.astype(np.float32) * factors[0]
    gray = (x * _LUMA).sum(axis=1, keepdims=True) if channels == 3 else x
    mean = gray.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * factors[1] + mean
    if channels == 3:
        gray = (gray - mean) * factors[1] + mean
        x = gray + (x - gray) * factors[2]
    return _to_uint8(x)
