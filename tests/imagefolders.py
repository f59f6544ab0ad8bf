"""Small image folders written into a test's tmp_path."""

import numpy as np
from PIL import Image


def write_image(path, mode="L", size=(8, 8), value=None, seed=0):
    """Save a random (or constant ``value``) image of ``mode`` and ``size = (width, height)``."""
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(
            "P", palette=Image.ADAPTIVE, colors=16)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        if value is not None:
            pixels[...] = value
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_folder(root, classes, per_class=4, mode="L", size=(8, 8)):
    """``root/<class>/<i>.png`` for each class name; images of class k are brighter for larger k."""
    for k, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i:03d}.png", mode, size, seed=100 * k + i)
    return root


def read_folder(root, **kwargs):
    """``ImageFolder(root, **kwargs)`` and the warnings it gave, as a list of messages."""
    from nnfs.data import ImageFolder
    messages = []
    data = ImageFolder(root, warn=messages.append, **kwargs)
    return data, messages
