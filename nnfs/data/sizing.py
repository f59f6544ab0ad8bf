"""The size, channel count and kind of a dataset, chosen from its images' headers.

The rule, when no size is asked for:

- **the most common size** is the upright size most images have; a tie goes to the
  larger size (more pixels, then the taller), never to the order of the files. It is
  **the common size** when at least half of the images (two at least) have it: what
  the folder is made of. A folder of photos of every size has none: one thumbnail
  among thirty photos decides nothing.
- **small images** (digits, icons, CIFAR-like thumbnails) are a common size that fits
  in ``SMALL_LIMIT x SMALL_LIMIT``, 64x64, or, without a common size, images that all
  fit in it (icons of many sizes). They keep the most common size: the shipped digits
  stay 28x28, icons of 16 to 48 pixels of equal numbers become 48x48. Nothing (or
  little) is lost, and such images are often glyphs, for which flipping or cropping
  changes the class.
- **photos** (a larger common size, what phones and cameras produce, or no common
  size and some image larger than 64x64: sizes that vary, as downloaded pictures do)
  are brought to ``DEFAULT_PHOTO_SIZE`` squared, 64x64: the shorter side is scaled to
  64 and the middle is kept (``resize="crop"``), or the whole picture is squeezed to
  64x64 (``resize="stretch"``). Full-size photos would give a network hundreds of
  millions of inputs per image, and most of that detail does not help to tell
  classes apart; that rule suits an image of any size.

An asked-for ``image_size`` always wins; ``resize`` then says how images of
another aspect ratio reach it.
"""

import collections
from dataclasses import dataclass

from nnfs.data.images import RESIZE_MODES, DatasetError, is_gray

__all__ = ["Sizing", "choose_sizing", "DEFAULT_PHOTO_SIZE", "SMALL_LIMIT", "KINDS"]

DEFAULT_PHOTO_SIZE = 64
SMALL_LIMIT = 64
KINDS = ("photos", "small")


@dataclass(frozen=True)
class Sizing:
    """What a dataset's images become.

    Attributes:
        kind: ``"photos"`` or ``"small"`` (see the module's docstring), from the
            images' sizes whatever size was asked for.
        image_size: ``(height, width)`` every image is brought to.
        channels: 1 or 3.
        resize: ``"crop"`` or ``"stretch"``.
        common_size: the most common ``(height, width)`` among the files, upright (a tie
            goes to the larger).
        chosen: True when ``image_size`` came from the rule, not from the caller.
        shared_by: how many of the files have ``common_size``.
        count: how many files there are.
        varied: True when no size is common (``common_size`` is shared by fewer than
            half of the files, or by one file only): photos, unless every image is small.
    """

    kind: str
    image_size: tuple
    channels: int
    resize: str
    common_size: tuple
    chosen: bool
    shared_by: int
    count: int

    @property
    def varied(self):
        return not is_common(self.shared_by, self.count)

    def describe(self):
        """One line: what was chosen and why (for the user who did not choose)."""
        height, width = self.image_size
        common = "x".join(map(str, self.common_size))
        if self.kind == "small" and not self.varied:
            return f"{height}x{width}, the most common size ({common}), kept as small images are"
        share = f"the most common, {common}, is that of {self.shared_by} of {self.count} images"
        if self.kind == "small":
            what = f"small images of varied sizes ({share}; a tie goes to the larger)"
        elif self.varied:
            what = f"photos of varied sizes ({share})"
        else:
            what = f"photos (most common size {common})"
        how = f"shorter side scaled to {min(height, width)}, middle kept" if self.resize == "crop" else "stretched"
        return f"{height}x{width}, {what}: {how}"

    def to_dict(self):
        return {"kind": self.kind, "image_size": list(self.image_size), "channels": self.channels,
                "resize": self.resize, "common_size": list(self.common_size), "chosen": self.chosen,
                "shared_by": self.shared_by, "count": self.count}

    @classmethod
    def from_dict(cls, data):
        sizing = cls(str(data["kind"]), tuple(int(v) for v in data["image_size"]), int(data["channels"]),
                     str(data["resize"]), tuple(int(v) for v in data["common_size"]), bool(data["chosen"]),
                     int(data["shared_by"]), int(data["count"]))
        if (sizing.kind not in KINDS or sizing.resize not in RESIZE_MODES or sizing.channels not in (1, 3)
                or len(sizing.image_size) != 2 or min(sizing.image_size) < 1
                or not 1 <= sizing.shared_by <= sizing.count):
            raise ValueError(f"inconsistent sizing record {data!r}")
        return sizing


def is_common(shared_by, count):
    """True when a size that ``shared_by`` of ``count`` images have is the folder's common size:
    at least half of them, and more than one image."""
    return shared_by >= 2 and 2 * shared_by >= count


def most_common(sizes):
    """``((width, height), how many)``: the most common of ``sizes``; a tie goes to the larger
    (more pixels, then the taller), so the choice never depends on the files' order."""
    counts = collections.Counter(sizes)
    return max(counts.items(), key=lambda item: (item[1], item[0][0] * item[0][1], item[0][1], item[0][0]))


def kind_of(sizes):
    """``"small"`` or ``"photos"`` for images of these upright ``(width, height)`` sizes: small
    when their common size (:func:`is_common`) fits in ``SMALL_LIMIT`` squared, or, without a
    common size, when every one of them does."""
    (width, height), shared_by = most_common(sizes)
    if is_common(shared_by, len(sizes)):
        fits = max(width, height) <= SMALL_LIMIT
    else:
        fits = all(max(size) <= SMALL_LIMIT for size in sizes)
    return "small" if fits else "photos"


def choose_sizing(headers, image_size=None, channels=None, resize="crop"):
    """The :class:`Sizing` for images with these headers.

    Args:
        headers: ``[(upright (width, height), Pillow mode), ...]``, one per image.
        image_size: ``(height, width)``, or None for the rule of the module's docstring.
        channels: 1 or 3, or None: 1 when every image is grayscale, else 3.
        resize: ``"crop"`` or ``"stretch"``.
    """
    if resize not in RESIZE_MODES:
        raise DatasetError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if not headers:
        raise DatasetError("no images to size")
    sizes = [size for size, _ in headers]
    (width, height), shared_by = most_common(sizes)
    common = (height, width)
    kind = kind_of(sizes)
    chosen = image_size is None
    if chosen:
        image_size = common if kind == "small" else (DEFAULT_PHOTO_SIZE, DEFAULT_PHOTO_SIZE)
    if channels is None:
        channels = 1 if all(is_gray(mode) for _, mode in headers) else 3
    return Sizing(kind, tuple(image_size), channels, resize, common, chosen, shared_by, len(headers))
