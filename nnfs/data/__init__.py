"""Image datasets: a folder per class, decoded once, split, normalised and batched.

Typical use::

    from nnfs.data import ImageFolder, DataLoader, Preprocessing, stratified_split

    data = ImageFolder("data/digits")                     # uint8 images in memory
    train_idx, val_idx = stratified_split(data.labels, 0.1, seed=0)
    pre = Preprocessing.fit(data.images, train_idx, data.image_size, data.channels)
    train = DataLoader(data.images, data.labels, train_idx, 32, pre, shuffle=True)
    for X, y in train:                                    # host arrays; Net moves them
        ...
"""

from nnfs.data.folder import ImageFolder
from nnfs.data.images import IMAGE_EXTENSIONS, DatasetError, is_image_file
from nnfs.data.loader import DataLoader, Preprocessing, stratified_split

__all__ = ["ImageFolder", "DataLoader", "Preprocessing", "stratified_split", "DatasetError",
           "IMAGE_EXTENSIONS", "is_image_file"]
