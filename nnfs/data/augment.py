"""Data augmentation: random changes to the training images, different every epoch.

A small set of photos is learnt by heart within a few epochs; showing every
photo slightly cropped, mirrored or re-lit each time makes the network learn
what the classes have in common instead. The changes are drawn per batch from
a generator seeded by the run's seed and the epoch (see
:class:`~nnfs.data.DataLoader`), so a run repeats exactly, and a resumed run
continues with the very changes the uninterrupted run would have made.

Operations, applied in this order:

- ``crop``: a random crop scaled back to full size (random resized crop, as torchvision's
  ``RandomResizedCrop``): its area is a share of the image's drawn uniformly from
  ``crop_scale`` (50 % to 100 %), its aspect ratio (width / height) log-uniformly from
  ``crop_ratio`` (3:4 to 4:3), its place uniformly where it fits; a draw that does not fit
  inside the image is drawn again, up to 10 times, then the largest centred crop with a ratio
  in ``crop_ratio`` is taken (the whole image, when its ratio is in it). ``crop_scale=(1, 1)``
  therefore keeps every image whose ratio is within ``crop_ratio`` as it is;
- ``shift``: the image moved by up to 1/8 of its size, the border black
  (random crop with padding);
- ``flip``: mirrored left to right, half of the time;
- ``jitter``: brightness, contrast and saturation each scaled by 0.8 to 1.2.

Which is right depends on the data, so the default follows the dataset's kind
(:attr:`ImageFolder.kind <nnfs.data.ImageFolder>`): ``crop`` and ``flip`` for
photos (a mirrored cat is a cat), nothing for small images, which are often
glyphs (a mirrored 2 is no digit, a cropped 7 may be a 1). Digits gain from
``shift`` alone.
"""

from nnfs.backend import augment as kernels
from nnfs.checks import number
from nnfs.data.images import DatasetError, checked
from nnfs.text import short_repr

__all__ = ["Augmentation", "OPERATIONS", "DEFAULT_OPERATIONS", "augmentation_for"]

OPERATIONS = ("crop", "shift", "flip", "jitter")
DEFAULT_OPERATIONS = {"photos": ("crop", "flip"), "small": ()}


def _checked(check, *args, **kwargs):
    return checked(check, "Augmentation", *args, **kwargs)


def _range(name, value, high):
    """``(smallest, largest)``: two numbers > 0 (and <= ``high``), in order, as floats."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise DatasetError(f"Augmentation: {name} must be (smallest, largest), got {short_repr(value)}")
    low, top = (_checked(number, name, v, low=0, high=high, low_open=True) for v in value)
    if low > top:
        raise DatasetError(f"Augmentation: {name} must be (smallest, largest), got {short_repr(value)}")
    return low, top


class Augmentation:
    """Random changes applied to a uint8 batch ``(B, C, H, W)`` (see the module's docstring).

    Args:
        operations: any of ``"crop"``, ``"shift"``, ``"flip"``, ``"jitter"``, applied
            in that order whatever the order given.
        crop_scale: ``(smallest, largest)`` share of the area a crop keeps, in (0, 1].
        crop_ratio: ``(smallest, largest)`` aspect ratio (width / height) of a crop, > 0.
        shift: the largest move, as a share of the shorter side (0.125: 4 pixels of 28).
        jitter: the largest relative change of brightness, contrast and saturation.

    Shape:
        - Input: ``(B, C, H, W)`` uint8
        - Output: ``(B, C, H, W)`` uint8, a new array
    """

    def __init__(self, operations=("crop", "flip"), crop_scale=(0.5, 1.0), shift=0.125, jitter=0.2,
                 crop_ratio=kernels.CROP_RATIO):
        if isinstance(operations, str):
            operations = (operations,)
        if not isinstance(operations, (list, tuple)):
            raise DatasetError(f"Augmentation: operations must be some of {', '.join(OPERATIONS)}, "
                               f"got {short_repr(operations)}")
        unknown = [op for op in operations if op not in OPERATIONS]
        if unknown or not operations:
            raise DatasetError(f"Augmentation: operations must be some of {', '.join(OPERATIONS)}, "
                               f"got {short_repr(list(operations))}")
        self.operations = tuple(op for op in OPERATIONS if op in operations)
        self.crop_scale = _range("crop_scale", crop_scale, high=1)
        self.crop_ratio = _range("crop_ratio", crop_ratio, high=None)
        self.shift = _checked(number, "shift", shift, low=0, high=0.5)
        self.jitter = _checked(number, "jitter", jitter, low=0, high=1, high_open=True)

    def __call__(self, images, rng):
        """The changed batch; ``rng`` is a NumPy generator (see :func:`nnfs.backend.augment.generator`)."""
        shape = getattr(images, "shape", None)
        if shape is None or len(shape) != 4 or getattr(images.dtype, "name", None) != "uint8":
            got = f"dtype {images.dtype} and shape {shape}" if shape is not None else type(images).__name__
            raise DatasetError(f"Augmentation: expected a uint8 batch of shape (B, C, H, W), got {got}")
        if not callable(getattr(rng, "uniform", None)):
            raise DatasetError(f"Augmentation: rng must be a NumPy Generator (nnfs.backend.augment.generator), "
                               f"got {type(rng).__name__}")
        _, _, height, width = shape
        for op in self.operations:
            if op == "crop":
                images = kernels.random_resized_crop(images, rng, self.crop_scale, self.crop_ratio)
            elif op == "shift":
                pixels = round(self.shift * min(height, width))
                if pixels:  # a shift of 0 pixels (shift=0, or too small for the image) moves nothing
                    images = kernels.random_shift(images, rng, pixels)
            elif op == "flip":
                images = kernels.random_flip(images, rng)
            else:
                images = kernels.colour_jitter(images, rng, self.jitter)
        return images

    def get_config(self):
        return {"operations": list(self.operations), "crop_scale": list(self.crop_scale),
                "shift": self.shift, "jitter": self.jitter, "crop_ratio": list(self.crop_ratio)}

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config` output (records saved before ``crop_ratio`` was
        kept used the default)."""
        if not isinstance(config, dict):
            raise DatasetError(f"malformed augmentation record {short_repr(config)}: expected a dict (get_config())")
        try:
            return cls(tuple(config["operations"]), tuple(config["crop_scale"]), config["shift"],
                       config["jitter"], tuple(config.get("crop_ratio", kernels.CROP_RATIO)))
        except (KeyError, TypeError) as error:
            raise DatasetError(f"malformed augmentation record {short_repr(config)}: {error}") from None

    def __repr__(self):
        return f"Augmentation({'+'.join(self.operations)})"


def augmentation_for(spec, kind):
    """The :class:`Augmentation` a spec asks for, or None for none.

    Args:
        spec: ``"auto"`` (the default of ``kind``, see the module's docstring),
            ``"none"``, or operations joined by commas or ``+``: ``"crop,flip"``.
        kind: the dataset's kind, ``"photos"`` or ``"small"``.
    """
    if not isinstance(spec, str):  # str() made None "none" and ["crop"] the operation "['crop']"
        raise DatasetError(f"augmentation_for: spec must be a string such as 'auto', 'none' or 'crop,flip', "
                           f"got {short_repr(spec)}")
    spec = spec.strip().lower()
    if spec == "none":
        return None
    if spec == "auto":
        if kind not in DEFAULT_OPERATIONS:
            raise DatasetError(f"augmentation_for: kind must be one of {', '.join(map(repr, DEFAULT_OPERATIONS))} "
                               f"(a dataset's kind), got {short_repr(kind)}")
        operations = DEFAULT_OPERATIONS[kind]
        return Augmentation(operations) if operations else None
    return Augmentation(tuple(op.strip() for op in spec.replace("+", ",").split(",") if op.strip()))
