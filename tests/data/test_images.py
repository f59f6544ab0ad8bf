"""Decoding one image: transparency, truncated files, 16-bit and float pixels, EXIF orientation."""

import pathlib

import numpy as np
import pytest
from PIL import Image, ImageMath, ImageOps

from nnfs.data import DatasetError, Preprocessing
from nnfs.data.images import open_image, probe, read_image
from tests.imagefolders import make_folder, read_folder, write_image


def test_transparent_pixels_become_white(tmp_path):
    write_image(tmp_path / "a" / "clear.png", "RGBA", (4, 4), value=0)  # fully transparent black
    write_image(tmp_path / "b" / "x.png", "RGB", (4, 4))
    data, _ = read_folder(tmp_path)
    assert (data.images[0] == 255).all()


@pytest.mark.parametrize("mode, background, mark", [
    ("RGB", (30, 120, 200), (255, 0, 0)), ("L", 30, 200), ("1", 0, 1), ("I;16", 1000, 51400)])
def test_the_transparent_colour_of_a_png_becomes_white(tmp_path, mode, background, mark):
    # A tRNS chunk makes every pixel of one value transparent, in an image without alpha channel:
    # here the background, with a mark in the top left corner that stays as it is.
    image = Image.new(mode, (400, 300), background)
    image.paste(mark, (0, 0, 133, 100))
    (tmp_path / "a").mkdir()
    image.save(tmp_path / "a" / "keyed.png", transparency=background)
    write_image(tmp_path / "b" / "x.png", "RGB", (4, 4))
    # The mark in gray and in colour (red is 76 in gray; 51400 of 65535 is 200 of 255).
    shown = {"RGB": (76, [255, 0, 0]), "L": (200, [200] * 3), "1": (255, [255] * 3), "I;16": (200, [200] * 3)}
    for channels in (1, 3):
        data, _ = read_folder(tmp_path, channels=channels, image_size=(30, 40))
        pixels = data.images[0].transpose(1, 2, 0).astype(int)
        assert (pixels[20:, 20:] == 255).all(), channels
        gray, colour = shown[mode]
        assert pixels[:5, :5].reshape(-1, channels).mean(0).tolist() == ([gray] if channels == 1 else colour)
        # Prediction reads the file as training did.
        pre = Preprocessing(data.image_size, channels, [0.5] * channels, [0.2] * channels, data.resize)
        assert pre.stack([pre.read(data.paths[0])]).tobytes() == data.images[:1].tobytes()


def test_a_sixteen_bit_transparent_colour_needs_no_imagemath(tmp_path, monkeypatch):
    # ImageMath.lambda_eval only exists from Pillow 10.3; the declared minimum is older.
    values = np.full((30, 40), 1000, dtype=np.uint16)
    values[:10, :10], values[10:20, 10:20] = 51400, 25700
    Image.fromarray(values).save(tmp_path / "keyed.png", transparency=1000)
    before = read_image(tmp_path / "keyed.png", 1, (30, 40))
    monkeypatch.delattr(ImageMath, "lambda_eval", raising=False)
    monkeypatch.delattr(ImageMath, "eval", raising=False)
    after = read_image(tmp_path / "keyed.png", 1, (30, 40))
    assert after == before
    pixels = np.frombuffer(after, dtype=np.uint8).reshape(30, 40)
    assert pixels[0, 0] == 200 and pixels[15, 15] == 100 and pixels[29, 39] == 255


def test_truncated_png_is_reported(tmp_path):
    make_folder(tmp_path, ["a", "b"], per_class=2, size=(32, 32))
    path = tmp_path / "a" / "000.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DatasetError, match="000.png"):
        read_folder(tmp_path)


def test_sixteen_bit_and_float_grayscale_are_scaled_not_clipped(tmp_path):
    wide = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "a.png")  # a 16-bit grayscale PNG
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (tmp_path / "a.png").rename(folder / "a" / "wide.png")
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)).save(folder / "b" / "float.tif")
    # A 16-bit image whose values all fit in 8 bits is still a dark 16-bit image, and a
    # float image with one bright outlier is clipped there, not rescaled: one fixed scale
    # per mode, whatever an image's own values.
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(folder / "a" / "dim.png")
    outlier = np.full((8, 8), 0.5, np.float32)
    outlier[0, 0] = 2.0
    Image.fromarray(outlier).save(folder / "b" / "outlier.tif")
    data, _ = read_folder(folder)
    assert data.channels == 1
    image = {pathlib.Path(path).name: pixels[0] for path, pixels in zip(data.paths, data.images)}
    np.testing.assert_allclose(image["wide.png"], wide / 257, atol=1)
    assert image["dim.png"].max() <= 1  # 200 of 65535
    assert image["float.tif"].min() == 0 and image["float.tif"].max() >= 254
    assert image["outlier.tif"][0, 0] == 255
    assert set(image["outlier.tif"].ravel()[1:]) <= {127, 128}


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    image = Image.new("RGB", (8, 4), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "photo.jpg", exif=exif)
    folder = tmp_path / "data"
    write_image(folder / "b" / "x.png", "RGB", (4, 8))
    (folder / "a").mkdir()
    (tmp_path / "photo.jpg").rename(folder / "a" / "photo.jpg")
    data, _ = read_folder(folder)
    assert data.image_size == (8, 4)  # both upright images are 4 wide and 8 high
    assert data.images[0, 0].min() > 200  # red, not stretched garbage


def save_with_orientation(path, turn, size=(40, 30), seed=0):
    """A random RGB image of ``size = (width, height)`` saved with EXIF orientation ``turn``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = turn
    path.parent.mkdir(parents=True, exist_ok=True)
    # Lossless WEBP; ".tiff" compressed, so that libtiff decodes it (".tif": Pillow's own decoder).
    options = {".webp": {"lossless": True}, ".tiff": {"compression": "tiff_lzw"}}.get(path.suffix, {})
    Image.fromarray(pixels).save(path, exif=exif, **options)
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".webp", ".jpg"])
@pytest.mark.parametrize("turn", range(1, 9))
def test_every_format_is_turned_upright_as_exif_transpose_does(tmp_path, suffix, turn):
    path = save_with_orientation(tmp_path / f"o{turn}{suffix}", turn)
    with Image.open(path) as image:
        expected = ImageOps.exif_transpose(image).convert("RGB")
    # The size planned from the header is the size of the decoded image, in every format
    # (Pillow reports a TIFF's size already turned; a PNG's eXIf chunk was ignored).
    assert probe(path)[0] == open_image(path).size == expected.size
    height_width = expected.size[::-1]
    got = np.frombuffer(read_image(path, 3, height_width), np.uint8).reshape(*height_width, 3)
    if suffix == ".jpg":  # lossy: the same picture, give or take the decoder's rounding
        assert np.abs(got.astype(int) - np.asarray(expected, dtype=int)).mean() < 3
    else:
        assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_folder_of_turned_images_has_their_upright_size(tmp_path, suffix):
    # Stored 30 wide and 40 high, shown 40 wide and 30 high: a TIFF's size used to be turned twice.
    for index in range(4):
        save_with_orientation(tmp_path / "ab"[index % 2] / f"{index}{suffix}", 6, size=(30, 40), seed=index)
    data, _ = read_folder(tmp_path)
    assert data.kind == "small" and data.images.shape == (4, 3, 30, 40)
    with Image.open(data.paths[0]) as image:
        assert data.images[0].transpose(1, 2, 0).tobytes() == ImageOps.exif_transpose(image).tobytes()


def test_jpeg_names_of_every_kind_are_images():
    from nnfs.data import is_image_file

    assert all(is_image_file(name) for name in ("a.jpg", "b.JPEG", "c.jpe", "d.jfif", "e.JFIF"))
    assert not is_image_file("f.jfi") and not is_image_file("notes.txt")


def test_an_empty_file_is_called_empty(tmp_path):
    from nnfs.data.images import open_raster

    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"^empty file \(0 bytes\), not an image: .*empty.png$"):
        with open_raster(tmp_path / "empty.png"):
            pass


@pytest.mark.parametrize("channels", [1, 3])
def test_a_lab_tiff_is_read_in_gray_as_in_colour(tmp_path, channels):
    # Photo editors save LAB TIFFs; Pillow converts LAB to RGB but not to "L", so a gray
    # model (--channels 1) refused such a photo as unreadable.
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8))
    rgb.convert("LAB").save(tmp_path / "lab.tif")
    expected = Image.open(tmp_path / "lab.tif").convert("RGB")
    expected = expected if channels == 3 else expected.convert("L")
    got = read_image(tmp_path / "lab.tif", channels, (16, 24))
    assert got == expected.tobytes()
