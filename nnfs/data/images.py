"""Reading one image file into the channel count and size a model expects."""

import os

from PIL import Image, ImageOps, UnidentifiedImageError

# File name endings that are read as images; anything else in a class folder is skipped.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})

# Formats whose files may carry an EXIF orientation (photos from phones and cameras).
EXIF_FORMATS = frozenset({"JPEG", "MPO", "TIFF", "WEBP"})

# Pillow modes without colour: a dataset made only of these is loaded as one channel.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class DatasetError(ValueError):
    """A dataset or image cannot be used as given; the message names the path."""


def is_image_file(path):
    """True for a visible file whose name ends in one of :data:`IMAGE_EXTENSIONS`."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def open_image(path):
    """Decode ``path`` fully with Pillow.

    Raises:
        DatasetError: naming the path, when the file is missing, unreadable,
            not an image or truncated.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.format in EXIF_FORMATS:
                # Show the photo upright, as viewers do, rather than as the sensor stored it.
                image = ImageOps.exif_transpose(image)
            return image
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except UnidentifiedImageError:
        raise DatasetError(f"not a readable image (corrupt or unknown format): {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # Pillow reports truncated or broken data as OSError, SyntaxError or ValueError.
        raise DatasetError(f"cannot read image {path}: {error}") from None


def has_alpha(image):
    return image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        image.mode == "P" and "transparency" in image.info)


def is_gray(image):
    """True when the image has no colour channels (palette images count as colour)."""
    return image.mode in GRAY_MODES


def convert(image, channels):
    """``image`` as mode ``"L"`` (channels=1) or ``"RGB"`` (channels=3).

    Transparent pixels are composited onto white, as most image viewers show them;
    16-bit, 32-bit and float grayscale are scaled to 0..255 (see :func:`to_8bit`).
    """
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    mode = "L" if channels == 1 else "RGB"
    image = to_8bit(image)
    if image.mode == mode:
        return image
    if has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def to_8bit(image):
    """Wide grayscale (``I;16``, ``I``, ``F``) as ``"L"``, with one fixed scale per mode.

    Integer images (``I;16`` and ``I``, which is how Pillow opens many 16-bit files)
    are taken as 16-bit: 0..65535 becomes 0..255. Float images are taken as [0, 1].
    Values outside those ranges are clipped. The scale never depends on an image's
    own values, so the same pixel value means the same brightness in every file.
    Other modes are returned unchanged.
    """
    if image.mode.startswith("I"):
        scale = 255 / 65535
    elif image.mode == "F":
        scale = 255.0
    else:
        return image
    # Pillow's "F" to "L" conversion clips to 0..255.
    return image.convert("F").point(lambda v: v * scale).convert("L")


def resize(image, size):
    """``image`` resized to ``size = (height, width)`` (bilinear, antialiased when shrinking).

    The aspect ratio is not kept: every image is stretched to the same size.
    """
    height, width = size
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.BILINEAR)


def prepare(image, channels, size):
    """Convert and resize in the cheaper order; returns raw ``H x W x C`` uint8 bytes."""
    image = convert(image, channels)
    return resize(image, size).tobytes()
