"""Image datasets: a folder per class, decoded once, split, normalised, augmented and batched.

Typical use::

    from nnfs.data import ImageFolder, DataLoader, Preprocessing, augmentation_for, stratified_split

    data = ImageFolder("data/digits", cache=default_cache_dir())  # uint8 images in memory
    train_idx, val_idx = stratified_split(data.labels, 0.1, seed=0)
    pre = Preprocessing.fit(data.images, train_idx, data.image_size, data.channels, data.resize)
    train = DataLoader(data.images, data.labels, train_idx, 32, pre, shuffle=True,
                       augment=augmentation_for("auto", data.kind))
    for X, y in train:                                    # host arrays; Net moves them
        ...

Modules: ``images`` (one file, safely), ``sizing`` (the size rule and ``kind``),
``memory`` (will it fit), ``decoding`` (thread pool, Pillow's warnings),
``cache`` (decoded datasets kept between runs), ``folder`` (:class:`ImageFolder`),
``augment`` (random changes for training), ``loader`` (split, normalisation, batches).
"""

from nnfs.data.augment import OPERATIONS as AUGMENTATIONS, Augmentation, augmentation_for
from nnfs.data.cache import default_cache_dir
from nnfs.data.folder import ImageFolder
from nnfs.data.images import (
    IMAGE_EXTENSIONS, RASTER_FORMATS, RESIZE_MODES, DatasetError, UnusableImage, is_image_file)
from nnfs.data.loader import DataLoader, Preprocessing, stratified_split
from nnfs.data.memory import ImageSizeError, available_memory, training_bytes
from nnfs.data.sizing import DEFAULT_PHOTO_SIZE, Sizing

__all__ = ["ImageFolder", "DataLoader", "Preprocessing", "stratified_split", "DatasetError", "UnusableImage",
           "ImageSizeError", "IMAGE_EXTENSIONS", "RASTER_FORMATS", "RESIZE_MODES", "is_image_file",
           "Augmentation", "AUGMENTATIONS", "augmentation_for", "default_cache_dir", "available_memory",
           "training_bytes", "Sizing", "DEFAULT_PHOTO_SIZE"]
