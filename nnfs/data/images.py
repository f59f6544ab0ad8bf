"""Reading one image file, safely, into the channel count and size a model expects.

Every file is opened the same way, in training and in prediction
(:func:`open_raster`):

- only a regular file is opened: a FIFO, a socket or a device named ``x.png``
  would block the reader or feed it endless data, so the file is opened
  without blocking and refused unless ``fstat`` says it is a regular file;
- Pillow picks a decoder by the file's content, not its name, and some
  decoders run external programs (a PostScript file named ``evil.png`` goes
  to Ghostscript). Only the raster formats in :data:`RASTER_FORMATS` are ever
  tried, so no external program runs whatever the file holds.

Photos are reduced while they are decoded when the target is small: a JPEG
decodes at 1/2, 1/4 or 1/8 of its size directly (Pillow's ``draft``), which
is several times faster than decoding every pixel and then shrinking.
"""

import contextlib
import math
import os
import stat
import struct

from PIL import Image, ImageOps, UnidentifiedImageError

from nnfs.backend.images import key_mask
from nnfs.text import count

# File name endings that are read as images; anything else in a class folder is skipped.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
     ".pbm"})

#: Photo formats that phones and cameras write but that are not read here (Pillow decodes
#: none of them without a plug-in), by extension: their kind and a note. A folder of them was
#: "no images", or one warning of files that are not images, with no word of what to do.
UNREAD_PHOTO_FORMATS = {
    ".heic": ("HEIC", " (as iPhones save photos)"), ".heif": ("HEIF", ""), ".avif": ("AVIF", ""),
    **dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"),
                    ("camera raw", ""))}

# Folders that systems and tools write beside a user's files, never a class nor photos:
# the "._" resource forks a macOS zip holds under __MACOSX/<class>/, a Synology NAS's
# thumbnails (@eaDir), Windows' recycle bin and volume records.
# Taken as a class, __MACOSX would be one without images whose "folders inside" look like
# the real classes. Compared case-insensitively: Windows writes $Recycle.Bin and $RECYCLE.BIN.
SYSTEM_FOLDERS = frozenset({"__macosx", "@eadir", "$recycle.bin", "system volume information"})
# Files that Windows' Explorer writes into folders of pictures (its thumbnail cache, a folder's
# view settings): in every class folder of photos copied from a Windows drive, where each was a
# warning of a file that is not an image.
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini"})

# The Pillow formats a file may be decoded as, whatever its name says: the formats of
# IMAGE_EXTENSIONS (PPM covers .pbm/.pgm/.ppm; JPEG also opens the multi-picture JPEGs,
# "MPO", of some phones). Everything else, PostScript and PDF above all, is refused unopened.
RASTER_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

# EXIF orientations 5 to 8 store the picture turned by 90 degrees: width and height swap.
_TURNED = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112

# Pillow modes without colour: a dataset made only of these is loaded as one channel.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

# Modes that may carry a transparent colour (a PNG tRNS chunk) instead of an alpha channel.
_KEYED_MODES = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "RGB"})

# How an image of another aspect ratio is brought to the target size.
RESIZE_MODES = ("crop", "stretch")

# What Pillow raises on broken or hostile data: truncated streams (OSError, SyntaxError,
# EOFError), bad headers (ValueError, struct.error), inconsistent tables (LookupError,
# ArithmeticError, TypeError), images over twice its decompression-bomb limit.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, LookupError,
                  ArithmeticError, TypeError, MemoryError, Image.DecompressionBombError)

_FILE_TYPES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class DatasetError(ValueError):
    """A dataset or image cannot be used as given; the message names the path."""


class UnusableImage(DatasetError):
    """One image file of a dataset cannot be used (damaged, unreadable, not an image, empty):
    what ``ImageFolder(..., on_error="skip")`` leaves out and counts."""


def checked(check, owner, *args, **kwargs):
    """A check from :mod:`nnfs.checks` for ``owner``, its error raised as a DatasetError."""
    try:
        return check(owner, *args, **kwargs)
    except (TypeError, ValueError) as error:
        raise DatasetError(str(error)) from None


def is_image_file(path):
    """True for a visible name ending in one of :data:`IMAGE_EXTENSIONS` (the name only:
    what the file holds is checked when it is opened)."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def unread_kind(path):
    """``(kind, note)`` of :data:`UNREAD_PHOTO_FORMATS` for ``path``'s extension, or None."""
    return UNREAD_PHOTO_FORMATS.get(os.path.splitext(str(path))[1].lower())


def unread_photos(paths):
    """How many of ``paths`` are of :data:`UNREAD_PHOTO_FORMATS`, of which kinds, and what to do,
    for a message: ``"3 HEIC files (as iPhones save photos), which are not read: convert them
    to JPEG or PNG first"``; "" where none of them is such a file."""
    kinds = {}
    for path in paths:
        kind = unread_kind(path)
        if kind is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    if not kinds:
        return ""
    parts = [f"{number} {kind} file{'' if number == 1 else 's'}{note}"
             for (kind, note), number in sorted(kinds.items(), key=lambda item: -item[1])]
    total = sum(kinds.values())
    if len(parts) > 1:
        return f"{total} files of photo formats that are not read ({', '.join(parts)}): convert them to JPEG or PNG first"
    one = total == 1
    return f"{parts[0]}, which {'is' if one else 'are'} not read: convert {'it' if one else 'them'} to JPEG or PNG first"


def is_cloud_placeholder(name):
    """True for the hidden stand-in that macOS's iCloud Drive leaves for an image kept in the
    cloud only (``.IMG_0001.JPG.icloud`` for ``IMG_0001.JPG``): the photo is not on this disk.
    Passed over as hidden, a folder of them was "no images" and a folder partly downloaded
    trained on what happened to be there, without a word. The photo may be of a format that
    is not read (``.IMG_0001.HEIC.icloud``, as iPhones save them): it is a photo of the folder
    all the same. An AppleDouble companion of one (``._.IMG_0001.JPG.icloud``, on a copy to a
    drive without macOS's metadata) is not a second one."""
    if not (name.startswith(".") and not name.startswith("._") and name.lower().endswith(".icloud")):
        return False
    inner = name[1:-len(".icloud")]
    return is_image_file(inner) or unread_kind(inner) is not None


def in_the_cloud(paths):
    """What a class folder (or a folder given to predict) without images holds when ``paths``
    are its iCloud placeholders (:func:`is_cloud_placeholder`), for a message; "" for none."""
    if not paths:
        return ""
    one = len(paths) == 1
    return (f"{count(len(paths), 'photo')} kept in iCloud only, not downloaded (e.g. {paths[0]}): "
            f"download {'it' if one else 'them'} first")


def is_passed_over(name):
    """True for a folder entry that is passed over silently, in training and in prediction:
    a hidden name (starting with ``.``), a system folder (:data:`SYSTEM_FOLDERS`) or a system
    file (:data:`SYSTEM_FILES`)."""
    return name.startswith(".") or name.casefold() in SYSTEM_FOLDERS or name.casefold() in SYSTEM_FILES


def file_type(mode):
    """``"a FIFO"``, ``"a folder"``, ... for an ``st_mode`` that is not a regular file's, else None."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "not a regular file"


def broken_link(path):
    """Where ``path`` points when it is a symbolic link to nothing (its target moved, deleted,
    or on a drive that is not mounted), else None."""
    try:
        target = os.readlink(path)
    except (OSError, ValueError):  # not a link, or no links here
        return None
    # Relative targets are relative to the link's folder, as the system follows them.
    return None if os.path.exists(path) else os.path.join(os.path.dirname(os.fspath(path)), target)


def unreadable(path, error):
    """A DatasetError for an OSError met while opening or listing ``path`` (a symlink
    loop, a permission denied, a broken link, ...)."""
    target = broken_link(path) if isinstance(error, FileNotFoundError) else None
    if target is not None:
        # "No such file or directory" would contradict the listing, which shows the link.
        return DatasetError(f"cannot read {path}: a broken symbolic link (its target {target} does not exist)")
    return DatasetError(f"cannot read {path}: {error.strerror or error}")


@contextlib.contextmanager
def open_raster(path):
    """Open ``path`` as an image of one of :data:`RASTER_FORMATS`, its header read, pixels not yet.

    Yields:
        the Pillow image; the file is closed when the block ends.

    Raises:
        DatasetError: naming the path, when it is missing, unreadable, not a regular
            file, or not an image of an allowed format.
    """
    path = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as error:
        if broken_link(path) is not None:
            raise unreadable(path, error) from None
        raise DatasetError(f"image not found: {path}") from None
    except OSError as error:
        raise unreadable(path, error) from None
    # Checked on the descriptor, before it becomes a file object: os.open opens a folder too,
    # and os.fdopen then fails (naming the descriptor, not the path) and leaves it open.
    try:
        kind = file_type(os.fstat(fd).st_mode)
        file = None if kind else os.fdopen(fd, "rb")
    except OSError as error:
        os.close(fd)
        raise unreadable(path, error) from None
    if file is None:
        os.close(fd)
        raise DatasetError(f"not a regular file ({kind}), not opened: {path}")
    with file:
        if os.fstat(file.fileno()).st_size == 0:  # Pillow would call it corrupt, or of another format
            raise DatasetError(f"empty file (0 bytes), not an image: {path}")
        try:
            image = Image.open(file, formats=RASTER_FORMATS)
        except UnidentifiedImageError:
            kind = unread_kind(path)
            hint = f"; {kind[0]} files{kind[1]} are not read: convert it to JPEG or PNG first" if kind else ""
            raise DatasetError(
                f"not a readable image (corrupt, or not one of {', '.join(RASTER_FORMATS)}{hint}): "
                f"{path}") from None
        except _DECODE_ERRORS as error:
            raise DatasetError(f"cannot read image {path}: {error}") from None
        with image:
            yield image


@contextlib.contextmanager
def _decoding(path):
    """Turn Pillow's errors while decoding into a DatasetError naming ``path``."""
    try:
        yield
    except _DECODE_ERRORS as error:
        raise DatasetError(f"cannot read image {path}: {error}") from None


def orientation(image):
    """The EXIF orientation (1 to 8) of an opened image, from its header; 1 when it has none or
    it is unreadable.

    Every format counts whose header Pillow reads an orientation from (as
    ``ImageOps.exif_transpose`` does): JPEG, TIFF and WEBP photos, and PNG files
    with an ``eXIf`` chunk or an XMP orientation. Only the header is read, before
    the pixels: a PNG's own ``getexif`` decodes the whole image to look for an
    ``eXIf`` chunk after the pixels, which sizing a folder from headers cannot
    afford. Planning and decoding both use this value, so they agree.
    """
    try:
        # The base class's getexif: what the header holds, whatever the format (see above).
        value = Image.Image.getexif(image).get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _stored_size(image):
    """``(width, height)`` of the pixels as the file stores them, before any orientation.

    Pillow reports a TIFF's size already turned by its orientation (and turns its pixels
    while loading), so a TIFF's stored size comes from its tags; other formats report it.
    """
    if image.format == "TIFF":
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return int(image.tag_v2[256]), int(image.tag_v2[257])  # ImageWidth, ImageLength
    return image.size


def upright_size(image):
    """``(width, height)`` as the image is shown, after its EXIF orientation: the size
    :func:`open_image` gives, from the header only."""
    width, height = _stored_size(image)
    return (height, width) if orientation(image) in _TURNED else (width, height)


def _upright(image, turn):
    """The loaded ``image`` as shown, for its orientation ``turn`` read before loading."""
    if turn == 1:
        return image
    # Show the photo upright, as viewers do, rather than as the sensor stored it. Pillow
    # already did this while loading a TIFF and removed the tag: then this is a copy.
    with contextlib.suppress(*_DECODE_ERRORS):
        return ImageOps.exif_transpose(image)
    return image


def probe(path):
    """``(upright (width, height), mode)`` of an image file, from its header only.

    Raises:
        DatasetError: as :func:`open_raster`.
    """
    with open_raster(path) as image, _decoding(path):
        return upright_size(image), image.mode


def open_image(path):
    """Decode ``path`` fully, at full resolution and upright.

    Raises:
        DatasetError: naming the path, when the file is missing, unreadable, not
            an image of an allowed format, or truncated.
    """
    with open_raster(path) as image, _decoding(path):
        turn = orientation(image)
        image.load()
        return _upright(image, turn)


def read_image(path, channels, size, resize="crop"):
    """One file as raw ``H x W x C`` uint8 bytes of ``size = (height, width)`` and ``channels``.

    A JPEG is decoded directly at the smallest of 1/1, 1/2, 1/4 or 1/8 of its
    size that still covers the target (see the module's docstring); then the
    image is turned upright, converted and resized as :func:`fit` says.

    Raises:
        DatasetError: as :func:`open_image`.
    """
    with open_raster(path) as image, _decoding(path):
        turn = orientation(image)
        _draft(image, channels, size, resize, turn in _TURNED)
        image.load()
        image = convert(_upright(image, turn), channels)
        return fit(image, size, resize).tobytes()


def _draft(image, channels, size, resize, turned):
    """Ask a JPEG to decode at a reduced scale that still covers ``size`` (no-op for other formats)."""
    if image.format not in ("JPEG", "MPO"):
        return
    height, width = size
    if turned:  # the file stores the photo on its side: so is the size it must cover
        height, width = width, height
    stored_w, stored_h = image.size
    if resize == "crop":  # the shorter side (relative to the target) decides
        scale = max(width / stored_w, height / stored_h)
        needed = (math.ceil(stored_w * scale), math.ceil(stored_h * scale))
    else:
        needed = (width, height)
    # Decoding gray straight from the luminance plane skips the colour conversion.
    image.draft("L" if channels == 1 else "RGB", needed)


def has_alpha(image):
    """True when some pixels of ``image`` may be transparent: an alpha channel, a palette with
    transparent entries, or a colour key (:func:`has_colour_key`)."""
    return image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        image.mode == "P" and "transparency" in image.info) or has_colour_key(image)


def has_colour_key(image):
    """True for a grayscale or RGB image with a transparent colour: a PNG's ``tRNS`` chunk
    (``transparency=`` when Pillow saves it) makes every pixel of exactly that value transparent."""
    return image.mode in _KEYED_MODES and "transparency" in image.info


def is_gray(mode):
    """True when a Pillow image mode has no colour channels (palette images count as colour)."""
    return mode in GRAY_MODES


def convert(image, channels):
    """``image`` as mode ``"L"`` (channels=1) or ``"RGB"`` (channels=3).

    Transparent pixels (of an alpha channel, a palette or a colour key, see
    :func:`has_alpha`) are composited onto white, as most image viewers show them;
    16-bit, 32-bit and float grayscale are scaled to 0..255 (see :func:`to_8bit`).
    """
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    mode = "L" if channels == 1 else "RGB"
    if has_colour_key(image):
        # Checked before the mode: an "L" or "RGB" image is not finished when its mode matches.
        image = _keyed_alpha(image)
    image = to_8bit(image)
    if image.mode == mode:
        return image
    if image.mode == "LAB":  # a LAB TIFF: Pillow converts LAB to RGB only, and refuses "L"
        image = image.convert("RGB")
        return image if mode == "RGB" else image.convert(mode)
    if has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def _keyed_alpha(image):
    """A colour-keyed image (:func:`has_colour_key`) as ``"LA"`` or ``"RGBA"``, the key's pixels transparent."""
    key = image.info["transparency"]
    if not image.mode.startswith("I"):
        return image.convert("RGBA" if image.mode == "RGB" else "LA")
    # Pillow's conversion to an alpha mode ignores the key of 16-bit grayscale (and clips its
    # values), so the mask is made from the 16-bit values and the gray scaled as without a key.
    alpha = Image.frombytes("L", image.size, key_mask(image.convert("I").tobytes(), key))
    return Image.merge("LA", (to_8bit(image), alpha))


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


def fit(image, size, resize="crop"):
    """``image`` brought to ``size = (height, width)`` (bilinear, antialiased when shrinking).

    Args:
        resize: ``"crop"`` keeps the aspect ratio: the image is scaled until it covers
            the target and the middle is kept (a 1600x1200 photo to 64x64 keeps its
            central 1200x1200 square). ``"stretch"`` scales width and height separately
            to the target, distorting shapes but keeping the whole picture.
    """
    height, width = size
    stored_w, stored_h = image.size
    if (stored_w, stored_h) == (width, height):
        return image
    box = crop_box((stored_w, stored_h), size) if resize == "crop" else None
    # reducing_gap: a large reduction starts with a cheap box filter, then the bilinear pass.
    return image.resize((width, height), Image.BILINEAR, box=box, reducing_gap=3.0)


def crop_box(stored, size):
    """The ``(left, top, right, bottom)`` region of a ``stored = (width, height)`` image that
    ``resize="crop"`` scales to ``size = (height, width)``: the middle part of the target's
    aspect ratio, as large as the image allows.

    The box always lies inside the image. The side that limits the scale spans the image
    exactly (decided in integers), and the other side is clamped to it: a box computed as
    ``target / scale`` alone can stick out of the image by a rounding error (64 / (64 / 49)
    is 49.00000000000001), and Pillow refuses such a box ("box offset can't be negative").
    """
    height, width = size
    stored_w, stored_h = stored
    if width * stored_h >= height * stored_w:  # relatively wider target: the whole width is kept
        crop_w, crop_h = stored_w, min(stored_h, height * stored_w / width)
    else:
        crop_w, crop_h = min(stored_w, width * stored_h / height), stored_h
    left, top = (stored_w - crop_w) / 2, (stored_h - crop_h) / 2
    return (max(0.0, left), max(0.0, top), min(stored_w, left + crop_w), min(stored_h, top + crop_h))
