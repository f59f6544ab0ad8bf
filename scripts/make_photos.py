"""Write a folder of synthetic phone photos: colour JPEGs of 1 to 2 megapixels, one class per shape.

Each photo shows one shape (the class: circle, square, triangle, ...) of a
random colour, size, rotation and place, never centred on purpose, over a
textured background with a few grey distractor shapes. Sizes and orientations
are mixed as in a phone's camera roll: landscape and portrait at several
resolutions, and some photos stored on their side with an EXIF orientation tag
(as phones do), which a reader must apply to see them upright.

It is the data of the loading benchmark (``benchmarks/bench_loading.py``) and,
in small numbers and sizes, of the tests.

Usage::

    python scripts/make_photos.py /tmp/photos --per_class 200      # 2,000 photos, 10 classes
"""

import argparse
import concurrent.futures
import math
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross", "ring", "bar")
# (width, height) of common phone and camera modes, 1 to 2 megapixels; portrait versions are added.
PHONE_SIZES = ((1600, 1200), (1280, 960), (1440, 1080), (1200, 1200), (1536, 1024), (1632, 1224))
# EXIF orientation -> how the upright picture is stored (Pillow's exif_transpose undoes it).
_STORED = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
           8: Image.Transpose.ROTATE_270}
_ORIENTATION_TAG = 0x0112


def _polygon(shape, centre, radius, angle):
    sides = {"triangle": 3, "square": 4, "diamond": 4, "pentagon": 5, "hexagon": 6}.get(shape)
    cx, cy = centre
    if shape == "star":
        points = [(radius if k % 2 == 0 else radius * 0.45, angle + k * math.pi / 5) for k in range(10)]
    elif shape == "cross":
        a, b = radius, radius * 0.35
        corners = [(b, a), (b, b), (a, b), (a, -b), (b, -b), (b, -a), (-b, -a), (-b, -b), (-a, -b),
                   (-a, b), (-b, b), (-b, a)]
        points = [(math.hypot(x, y), math.atan2(y, x) + angle) for x, y in corners]
    elif shape == "bar":
        corners = [(radius, radius * 0.3), (radius, -radius * 0.3), (-radius, -radius * 0.3),
                   (-radius, radius * 0.3)]
        points = [(math.hypot(x, y), math.atan2(y, x) + angle) for x, y in corners]
    else:
        offset = math.pi / 4 if shape == "square" else 0.0
        scale = (1.0, 0.6) if shape == "diamond" else (1.0, 1.0)
        points = [(radius, angle + offset + 2 * math.pi * k / sides) for k in range(sides)]
        return [(cx + r * math.cos(t) * scale[0], cy + r * math.sin(t) * scale[1]) for r, t in points]
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for r, t in points]


def draw_shape(draw, shape, centre, radius, angle, fill):
    cx, cy = centre
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif shape == "ring":
        width = max(2, int(radius * 0.3))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=fill, width=width)
    else:
        draw.polygon(_polygon(shape, centre, radius, angle), fill=fill)


def _background(rng, size):
    """A blotchy texture with sensor-like grain: coarse random colours blown up, plus noise.

    The grain makes the JPEGs as costly to decode as real photos of that size
    (a smooth picture compresses to almost nothing and decodes in no time).
    """
    width, height = size
    cols, rows = (16, 12) if width >= height else (12, 16)
    coarse = Image.new("RGB", (cols, rows))
    base = [rng.randrange(40, 216) for _ in range(3)]
    coarse.putdata([tuple(min(255, max(0, c + rng.randrange(-40, 41))) for c in base)
                    for _ in range(cols * rows)])
    smooth = coarse.resize(size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    return Image.blend(smooth, _grain(size, rng.randrange(_TILE), rng.randrange(_TILE)), 0.25)


_TILE = 256
_tile = []


def _grain(size, dx, dy):
    """Colour noise of ``size``: one random tile per process, repeated from a random offset."""
    if not _tile:
        _tile.append(Image.merge("RGB", [Image.effect_noise((_TILE, _TILE), 60) for _ in range(3)]))
    width, height = size
    grain = Image.new("RGB", (width + _TILE, height + _TILE))
    for x in range(0, width + _TILE, _TILE):
        for y in range(0, height + _TILE, _TILE):
            grain.paste(_tile[0], (x, y))
    return grain.crop((dx, dy, dx + width, dy + height))


def photo(shape, size, seed):
    """One upright photo (a Pillow RGB image of ``size = (width, height)``) of ``shape``."""
    rng = random.Random(seed)
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    width, height = size
    short = min(width, height)
    for _ in range(rng.randrange(2, 6)):  # distractors: small grey shapes anywhere
        grey = rng.randrange(60, 200)
        draw_shape(draw, rng.choice(SHAPES), (rng.uniform(0, width), rng.uniform(0, height)),
                   rng.uniform(0.03, 0.07) * short, rng.uniform(0, 2 * math.pi), (grey, grey, grey))
    radius = rng.uniform(0.12, 0.25) * short
    # Anywhere the shape fits whole; the middle is no likelier than the edges.
    centre = (rng.uniform(radius, width - radius), rng.uniform(radius, height - radius))
    colour = tuple(rng.randrange(0, 256) for _ in range(3))
    draw_shape(draw, shape, centre, radius, rng.uniform(0, 2 * math.pi), colour)
    return image


def write_photo(path, shape, size, orientation=1, seed=0, quality=88):
    """Save ``photo(shape, size, seed)`` as a JPEG stored as a phone stores ``orientation`` (1, 3, 6 or 8)."""
    image = photo(shape, size, seed)
    turn = _STORED[orientation]
    exif = Image.Exif()
    if turn is not None:
        image = image.transpose(turn)
        exif[_ORIENTATION_TAG] = orientation
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    image.save(path, "JPEG", quality=quality, exif=exif.tobytes())
    return path


def _plan(root, per_class, n_classes, sizes, seed):
    rng = random.Random(seed)
    jobs = []
    for label in range(n_classes):
        shape = SHAPES[label % len(SHAPES)]
        for index in range(per_class):
            width, height = rng.choice(sizes)
            if rng.random() < 0.4:
                width, height = height, width  # portrait
            orientation = rng.choices((1, 6, 8, 3), weights=(6, 2, 1, 1))[0]
            path = os.path.join(root, f"{label}_{shape}", f"IMG_{index:05d}.jpg")
            jobs.append((path, shape, (width, height), orientation, rng.randrange(2 ** 31)))
    return jobs


def _write(job):
    return write_photo(*job)


def make_photos(root, per_class, n_classes=10, sizes=PHONE_SIZES, seed=0, workers=None):
    """Write ``n_classes * per_class`` photos under ``root/<label>_<shape>/``; returns their paths."""
    if not 2 <= n_classes <= len(SHAPES):
        raise ValueError(f"n_classes must be 2 to {len(SHAPES)}, got {n_classes}")
    jobs = _plan(root, per_class, n_classes, sizes, seed)
    if workers == 1:
        return [_write(job) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_write, jobs, chunksize=16))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder")
    parser.add_argument("--per_class", type=int, default=200, help="photos per class (default 200)")
    parser.add_argument("--classes", type=int, default=10, help="number of classes, 2 to 10 (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = make_photos(args.out, args.per_class, args.classes, seed=args.seed)
    print(f"wrote {len(paths)} photos to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
