"""Small image folders written into a test's tmp_path."""

import struct

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


def mac_and_nas_folders(root):
    """What a zip made on a Mac and a Synology NAS add to a dataset ``root`` of classes a and b:
    ``__MACOSX/<class>/._<name>`` resource forks, ``@eaDir/<name>/`` thumbnails (real JPEGs)."""
    for name in ("a", "b"):
        fork = root / "__MACOSX" / name / "._000.png"
        fork.parent.mkdir(parents=True)
        fork.write_bytes(b"\x00\x05\x16\x07" + bytes(80))  # AppleDouble, not an image
        write_image(root / name / "@eaDir" / "000.png" / "SYNOFILE_THUMB_M.jpg", "RGB")
    write_image(root / "@eaDir" / "a" / "SYNOFILE_THUMB_M.jpg", "RGB")
    (root / "$RECYCLE.BIN").mkdir()
    return root


def _photo_maker():
    """scripts/make_photos.py as a module (the scripts folder is not a package)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "make_photos.py"
    spec = importlib.util.spec_from_file_location("make_photos", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_photos = _photo_maker()

# Small "photos" (larger than 64x64, so they count as photos), landscape, portrait and square,
# each with an EXIF orientation as a phone stores it: decoding them stays fast in tests.
PHOTO_SIZES = ((320, 240), (240, 320), (300, 200), (256, 256))


def make_photo_folder(root, classes=("circle", "square", "star"), per_class=3, sizes=PHOTO_SIZES):
    """``root/<shape>/IMG_<i>.jpg``: colour JPEG photos of each shape, off centre, mixed sizes
    and EXIF orientations (1, 6, 8, 3 in turn)."""
    orientations = (1, 6, 8, 3)
    for k, shape in enumerate(classes):
        for i in range(per_class):
            make_photos.write_photo(str(root / shape / f"IMG_{i:03d}.jpg"), shape,
                                    sizes[(k + i) % len(sizes)], orientations[(k + i) % 4],
                                    seed=100 * k + i)
    return root


def corrupt_exif_jpeg(path):
    """A JPEG whose EXIF block says orientation 6 and then points a tag past its end."""
    tiff = bytearray(b"II*\x00\x08\x00\x00\x00") + struct.pack("<H", 2)
    tiff += struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", 6, 0)
    tiff += struct.pack("<HHII", 0x010E, 2, 40, 30) + struct.pack("<I", 0) + b"short"
    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[:, :40] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, exif=b"Exif\x00\x00" + bytes(tiff))


def damaged_tiff(path):
    """A TIFF claiming 2048 samples per pixel: Pillow logs an error about it, then refuses it."""
    from PIL import TiffImagePlugin
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[277] = 2048  # SamplesPerPixel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8)).save(path, tiffinfo=tags)
    return path


def read_folder(root, **kwargs):
    """``ImageFolder(root, **kwargs)`` and the warnings it gave, as a list of messages."""
    from nnfs.data import ImageFolder
    messages = []
    data = ImageFolder(root, warn=messages.append, **kwargs)
    return data, messages
