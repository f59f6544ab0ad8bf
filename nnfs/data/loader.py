"""Train/validation split, normalisation and batches of host arrays."""

import math
import random
from dataclasses import dataclass, field

from nnfs.backend import default_dtype, host_array
from nnfs.backend.augment import generator
from nnfs.backend.images import channel_mean_std, images_from_bytes
from nnfs.checks import boolean, choice, int_pair, integer, number
from nnfs.data.augment import Augmentation
from nnfs.data.decoding import reading
from nnfs.data.images import RESIZE_MODES, DatasetError, read_image
from nnfs.text import short_repr

# A channel whose pixels are all equal has std 0; dividing by this instead keeps values finite.
MIN_STD = 1e-6


def stratified_split(labels, val_split, seed=0):
    """Split sample indices into training and validation, class by class.

    Each class gives ``round(val_split * count)`` images to validation, but at
    least one (when it has two or more) and never all of them, so both parts
    see every class of two or more images (a class of one image goes to training
    only). The same seed gives the same split.

    Args:
        labels: class index per sample (a list or an int array).
        val_split: fraction held out for validation, strictly between 0 and 1.
        seed: seeds the shuffle within each class.

    Returns:
        ``(train_indices, val_indices)``: two sorted lists of ints.
    """
    try:
        val_split = number("stratified_split", "val_split", val_split, low=0, high=1,
                           low_open=True, high_open=True)
        seed = integer("stratified_split", "seed", seed)  # random.Random takes no NumPy integer
    except (TypeError, ValueError) as error:
        raise DatasetError(str(error)) from None
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise DatasetError(f"stratified_split: labels must be a list or 1-d array of class indices, "
                           f"got {type(labels).__name__}")
    by_class = {}
    for index, value in enumerate(labels):
        try:  # int() would make 1.7 class 1 (True and False are 1 and 0)
            is_class = int(value) == value and value >= 0
        except (TypeError, ValueError, OverflowError):  # a string, None, NaN, a row of a 2-d array
            is_class = False
        if not is_class:
            raise DatasetError(f"stratified_split: labels must be class indices (integers >= 0), got {value!r}")
        by_class.setdefault(int(value), []).append(index)
    if not by_class:
        raise DatasetError("stratified_split: no labels to split (an empty dataset)")
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        count = len(members)
        n_val = min(max(round(val_split * count), 1), count - 1) if count >= 2 else 0
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    if not val:
        raise DatasetError(
            f"validation split is empty: every class has a single image ({len(train)} images in all), "
            f"and a class needs 2 or more to give one to validation; add images")
    return sorted(train), sorted(val)


@dataclass
class Preprocessing:
    """How raw images become network inputs; stored with a model so prediction matches training.

    Files are read as :class:`~nnfs.data.ImageFolder` reads them (channels, size,
    resize mode); pixels are scaled to [0, 1], then each channel is normalised as
    ``(x - mean[c]) / std[c]`` with statistics of the training images.

    Attributes:
        image_size: ``(height, width)``.
        channels: 1 or 3.
        mean, std: per-channel statistics of the training pixels in [0, 1].
        resize: ``"crop"`` or ``"stretch"`` (see :func:`nnfs.data.images.fit`).
    """

    image_size: tuple
    channels: int
    mean: list
    std: list
    resize: str = "crop"
    _affine: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        # Checked here, where every record is made (fitted, rebuilt from a checkpoint, or by
        # hand): one that could not read images the way it says is refused before it is used
        # or saved (a std of 0 would divide by zero, three means for one channel mislead).
        name = "Preprocessing"
        self.image_size = int_pair(name, "image_size", self.image_size)
        self.channels = integer(name, "channels", self.channels, minimum=1)
        if self.channels not in (1, 3):
            raise ValueError(f"{name}: channels must be 1 or 3, got {self.channels}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != self.channels:
                raise ValueError(f"{name}: {key} must hold one number per channel ({self.channels}), "
                                 f"got {short_repr(values)}")
        # In the float32 range images are computed in: a std of 1e-320 or a mean of 1e300 is
        # finite in float64 but gives inf and NaN there (MIN_STD is what fit() keeps).
        self.mean = [number(name, "mean", v, low=-1e30, high=1e30) for v in self.mean]
        self.std = [number(name, "std", v, low=MIN_STD, high=1e30) for v in self.std]
        self.resize = choice(name, "resize", self.resize, RESIZE_MODES)

    @classmethod
    def fit(cls, images, indices, image_size, channels, resize="crop"):
        """Statistics of ``images[indices]`` (uint8 ``(N, C, H, W)``), e.g. the training split."""
        try:  # plain ints: the record goes into checkpoints as JSON
            image_size = int_pair("Preprocessing", "image_size", image_size)
            channels = integer("Preprocessing", "channels", channels, minimum=1)
        except (TypeError, ValueError) as error:
            raise DatasetError(str(error)) from None
        _check_images("Preprocessing.fit", images, channels)
        indices = _checked_indices("Preprocessing.fit", indices, len(images))
        mean, std = channel_mean_std(images, indices)
        return cls(image_size, channels, mean, [max(s, MIN_STD) for s in std], resize)

    def apply(self, images, dtype="float32"):
        """uint8 ``(N, C, H, W)`` images of this size and channel count as normalised float arrays
        of ``dtype`` (on the host)."""
        # Of its own size too: the reference CNN refuses another one, the residual network (which
        # pools) would classify it at another scale than it trained on, without a word.
        _check_images("Preprocessing.apply", images, self.channels, self.image_size)
        if dtype not in self._affine:
            # One multiply-add per pixel: x / 255 / std - mean / std.
            scale = [1.0 / (255.0 * s) for s in self.std]
            shift = [-m / s for m, s in zip(self.mean, self.std)]
            shape = (1, self.channels, 1, 1)
            self._affine[dtype] = (host_array(scale, dtype).reshape(shape),
                                   host_array(shift, dtype).reshape(shape))
        scale, shift = self._affine[dtype]
        X = images.astype(dtype)
        X *= scale
        X += shift
        return X

    def read(self, path):
        """One image file as raw ``H x W x C`` uint8 bytes in this size and channel count.

        Raises:
            DatasetError: naming the file, when it cannot be decoded.
        """
        with reading(path):  # Pillow's warnings about the file count for it (DecoderWarnings)
            return read_image(path, self.channels, self.image_size, self.resize)

    def stack(self, raw_images):
        """uint8 ``(N, C, H, W)`` from a list of :meth:`read` results."""
        height, width = self.image_size
        return images_from_bytes(b"".join(raw_images), len(raw_images), height, width, self.channels)

    def load(self, paths):
        """Read image files into one uint8 batch ``(N, C, H, W)`` (see :meth:`read`)."""
        return self.stack([self.read(path) for path in paths])

    def get_config(self):
        """The constructor arguments, JSON-able (for checkpoints)."""
        return {"image_size": list(self.image_size), "channels": self.channels,
                "mean": list(self.mean), "std": list(self.std), "resize": self.resize}

    @classmethod
    def from_config(cls, data):
        """Rebuild from :meth:`get_config` output; a clear error for anything malformed.

        Records written before the resize mode was stored stretched every image.
        """
        try:
            return cls(data["image_size"], data["channels"], data["mean"], data["std"],
                       data.get("resize", "stretch"))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DatasetError(f"malformed preprocessing record {short_repr(data)}: {error}") from None


class DataLoader:
    """Batches ``(X, y)`` of host arrays from in-memory uint8 images.

    Every batch has ``batch_size`` samples except possibly the last one, which
    is kept. With ``shuffle=True`` the order is drawn anew at the start of every
    pass (epoch), from a generator seeded once, so runs repeat exactly. With
    ``augment``, every batch is changed at random before it is normalised
    (:mod:`nnfs.data.augment`), by a generator seeded with ``(seed, pass number)``:
    each epoch's changes depend only on the seed and the epoch, so a loader restored
    with :meth:`load_state_dict` makes exactly the changes of an uninterrupted run.

    Args:
        images: uint8 ``(N, C, H, W)`` array, e.g. ``ImageFolder.images``.
        labels: int ``(N,)`` array.
        indices: which samples this loader serves (e.g. the training split).
        batch_size: samples per batch (a positive int).
        preprocessing: a :class:`Preprocessing` applied to each batch.
        shuffle: reshuffle every epoch.
        seed: seed of the shuffling.
        dtype: float dtype of ``X``; ``Net`` casts to its own dtype anyway.
        augment: an :class:`~nnfs.data.Augmentation` for the training split, or None.

    Shape:
        - X: ``(B, C, H, W)`` float, normalised
        - y: ``(B,)`` int64
    """

    def __init__(self, images, labels, indices, batch_size, preprocessing, shuffle=False, seed=0,
                 dtype="float32", augment=None):
        try:
            batch_size = integer("DataLoader", "batch_size", batch_size, minimum=1)
            seed = integer("DataLoader", "seed", seed)  # a plain int: random.Random and state_dict()
            shuffle = boolean("DataLoader", "shuffle", shuffle)  # "no" would be true
        except (TypeError, ValueError) as error:
            raise DatasetError(str(error)) from None
        if not isinstance(preprocessing, Preprocessing):
            raise DatasetError(f"DataLoader: preprocessing must be a Preprocessing (Preprocessing.fit makes one), "
                               f"got {type(preprocessing).__name__}")
        dtype = _float_dtype(dtype)
        if isinstance(labels, (list, tuple, range)):  # batches take their rows by an index array
            labels = host_array(labels, None)
        if not hasattr(labels, "shape") or not hasattr(images, "shape"):
            raise DatasetError(f"DataLoader: images and labels must be arrays (labels may be a list), got "
                               f"{type(images).__name__} and {type(labels).__name__}")
        _check_images("DataLoader", images, preprocessing.channels, preprocessing.image_size)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":  # what the loss and the accuracy count against
            raise DatasetError(f"DataLoader: labels must be class indices, integers of shape (N,), got dtype "
                               f"{labels.dtype} and shape {labels.shape}")
        if len(labels) != len(images):
            raise DatasetError(f"DataLoader: {len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.indices = _checked_indices("DataLoader", indices, len(images))
        self.batch_size = batch_size
        self.preprocessing = preprocessing
        self.shuffle = shuffle
        self.dtype = dtype
        self.seed = seed
        if augment is not None and not isinstance(augment, Augmentation):
            raise DatasetError(f"DataLoader: augment must be an Augmentation or None, got {augment!r}")
        self.augment = augment
        self.passes = 0
        self._rng = random.Random(seed)

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    @property
    def n_samples(self):
        return len(self.indices)

    def state_dict(self):
        """Where the shuffling and augmentation stand, JSON-able: the seed, the number of
        passes begun and the augmentation's config."""
        return {"seed": self.seed, "passes": self.passes,
                "augment": self.augment.get_config() if self.augment else None}

    def load_state_dict(self, state):
        """Continue the shuffling from :meth:`state_dict`: the next pass gets the order an
        uninterrupted run would have given it (the earlier shuffles are replayed, which is cheap),
        with the saved augmentation (a state without one keeps this loader's)."""
        if not isinstance(state, dict):
            raise DatasetError(f"DataLoader.load_state_dict: the saved state must be a dict (state_dict()), "
                               f"got {type(state).__name__}")
        try:
            seed = integer("DataLoader.load_state_dict", "seed", state["seed"])
            passes = integer("DataLoader.load_state_dict", "passes", state["passes"], minimum=0)
        except KeyError as error:
            raise DatasetError(f"DataLoader.load_state_dict: the saved state lacks {error}") from None
        except (TypeError, ValueError) as error:
            raise DatasetError(str(error)) from None
        if "augment" in state:
            self.augment = None if state["augment"] is None else Augmentation.from_config(state["augment"])
        self.seed, self.passes = seed, 0
        self._rng = random.Random(self.seed)
        for _ in range(passes):
            self._shuffled()
        return self

    def _shuffled(self):
        order = list(self.indices)
        if self.shuffle:
            self._rng.shuffle(order)
        self.passes += 1
        return order

    def __iter__(self):
        order = self._shuffled()
        rng = generator(self.seed, self.passes) if self.augment else None
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            images = self.images[batch]
            if rng is not None:
                images = self.augment(images, rng)
            yield self.preprocessing.apply(images, self.dtype), self.labels[batch]


def _float_dtype(dtype):
    """The name of a float dtype (float16, 32 or 64: the net casts to its own; None: the
    default, float32 unless NNFS_DTYPE says otherwise): an integer one would turn every scaled
    pixel into 0, then -mean/std."""
    if dtype is None:
        return default_dtype().name
    try:
        name = host_array([], dtype).dtype.name
    except TypeError:
        raise DatasetError(f"DataLoader: dtype must be a float dtype such as 'float32', got {dtype!r}") from None
    if not name.startswith("float"):
        raise DatasetError(f"DataLoader: dtype must be a float dtype such as 'float32', got {name}")
    return name


def _checked_indices(owner, indices, count):
    """``indices`` as a list of ints in ``[0, count)``, or a DatasetError: NumPy would take -1 as
    the last image without a word, and one past the end would fail batches later."""
    if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
        raise DatasetError(f"{owner}: indices must be a list of sample indices, got {type(indices).__name__}")
    indices = list(indices)
    if not indices:
        raise DatasetError(f"{owner}: no samples (empty index list)")
    order = host_array(indices, None)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise DatasetError(f"{owner}: indices must be a flat list of integers, got dtype {order.dtype} "
                           f"and shape {order.shape}")
    low, high = int(order.min()), int(order.max())
    if low < 0 or high >= count:
        raise DatasetError(f"{owner}: indices must be in [0, {count}) (the images), got values in "
                           f"[{low}, {high}]")
    return indices


def _check_images(owner, images, channels, image_size=None):
    """Refuse what is not a uint8 batch of ``(N, C, H, W)`` images with ``channels`` channels
    (and ``image_size``, when given): the per-channel statistics would broadcast over another
    count without a word, and float pixels in [0, 1] would be divided by 255 once more."""
    shape = tuple(getattr(images, "shape", ()))
    size = "H, W" if image_size is None else ", ".join(map(str, image_size))
    if len(shape) != 4 or shape[1] != channels or (image_size is not None and shape[2:] != tuple(image_size)):
        raise DatasetError(f"{owner}: expected images of shape (N, {channels}, {size}), got "
                           f"{shape if hasattr(images, 'shape') else type(images).__name__}")
    if images.dtype.name != "uint8":
        raise DatasetError(f"{owner}: expected uint8 images (pixels 0 to 255), got dtype {images.dtype}")
