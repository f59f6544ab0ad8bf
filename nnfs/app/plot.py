"""Training curves as a PNG, drawn with Pillow (no plotting library needed).

Every PNG drawn here carries a ``Software: nnfs`` text chunk (:data:`SOFTWARE`): the programs
replace an existing PNG only when it has one (:func:`drawn_by_nnfs`), never a photo.
"""

import math
import os
import struct
import unicodedata

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from nnfs.files import write_atomically
from nnfs.text import printable, short_names

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (214, 39, 40)
GRID_COLOR = (225, 225, 225)
TEXT_COLOR = (30, 30, 30)
_HUGE = 1e300
#: The ``Software`` text chunk of the PNGs nnfs draws.
SOFTWARE = "nnfs"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


#: Fonts tried for the text, in order (file names that Pillow looks up among the system's
#: fonts), before Pillow's own, which has no accented letters: "café" was drawn "caf" and a box.
TEXT_FONTS = ("DejaVuSans.ttf", "Arial Unicode.ttf", "arialuni.ttf", "segoeui.ttf", "Arial.ttf", "arial.ttf")
FONT_SIZE = 10
_fonts = {}


def text_font():
    """The first of :data:`TEXT_FONTS` this system has, else Pillow's default font (found once)."""
    if "text" not in _fonts:
        for name in TEXT_FONTS:
            try:
                _fonts["text"] = ImageFont.truetype(name, FONT_SIZE)
                break
            except OSError:
                continue
        else:
            _fonts["text"] = ImageFont.load_default()
    return _fonts["text"]


def drawable(text, font):
    r"""``text`` as it can be drawn with ``font`` on one line: what must not reach a terminal
    escaped (:func:`~nnfs.text.printable`), and so is every character the font has no glyph
    for (``caf\u00e9`` rather than ``caf`` and a box) and every invisible one (a zero-width
    space), so that names that differ are drawn differently."""
    text = printable(text)
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() or _has_glyph(font, ch) else
                   (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}") for ch in text)


def _has_glyph(font, ch):
    """Whether ``font`` draws ``ch`` as itself (remembered for the programs' font, :func:`text_font`)."""
    known = _fonts.setdefault("glyphs", {}) if font is _fonts.get("text") else {}
    if ch not in known:
        if unicodedata.category(ch) in ("Cf", "Co", "Cn", "Zs") and ch != " ":
            known[ch] = False  # invisible, or no character at all: an escape says which
        else:
            try:
                # A missing glyph draws as the font's "no glyph" box, the same as a code point
                # that no font has (U+10FFFD, private use): drawn once for the programs' font.
                if font is not _fonts.get("text"):
                    missing = _mask(font, "\U0010fffd")
                else:
                    if "no glyph" not in _fonts:
                        _fonts["no glyph"] = _mask(font, "\U0010fffd")
                    missing = _fonts["no glyph"]
                known[ch] = unicodedata.combining(ch) > 0 or _mask(font, ch) != missing
            except (UnicodeError, ValueError, OSError):  # a bitmap font: Latin-1 only
                known[ch] = False
    return known[ch]


def class_labels(class_names, font, width=24):
    r"""The class names as the confusion matrix draws them with ``font``: :func:`drawable`
    (names from the file system may hold newlines, which Pillow cannot draw on one line,
    and letters the font lacks), then cut to ``width`` columns as the printed table cuts
    them, apart from each other (:func:`~nnfs.text.short_names`). Escaped first and cut
    after: the cut measures each escape and keeps it whole (never ``caf\~00e9``)."""
    return short_names([drawable(name, font) for name in class_names], width)[0]


def _mask(font, ch):
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def _is_drawable(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _nice_range(values, floor_zero=False):
    """A padded ``(low, high)`` around the finite ``values`` ((0, 1) when there are none)."""
    values = [v for v in values if _is_drawable(v)] or [0.0, 1.0]
    # Clamped so that the span and the padding stay finite even for values near the float limit.
    low, high = max(min(values), -_HUGE), min(max(values), _HUGE)
    if floor_zero:
        low = min(low, 0.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return (low if floor_zero else low - pad), high + pad


def _segments(ys):
    """``[[(epoch, value), ...], ...]``: runs of consecutive drawable values (a NaN or inf breaks a line)."""
    runs, current = [], []
    for epoch, value in enumerate(ys, 1):
        if _is_drawable(value):
            current.append((epoch, value))
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def _panel(draw, font, box, title, series, epochs, as_percent):
    """One framed chart; the legend goes where the curves usually are not (loss falls, accuracy rises).

    Values that are NaN or infinite (a run that diverged) are left out, and the title says
    how many; finite values beyond the axis range are drawn at its edge.
    """
    left, top, right, bottom = box
    values = [v for _, _, ys in series for v in ys]
    low, high = _nice_range(values, floor_zero=not as_percent)
    if as_percent:
        low, high = max(low, 0.0), min(high, 1.0)
    left_out = sum(not _is_drawable(v) for v in values)
    if left_out:
        title += f"  ({left_out} value{'s' * (left_out > 1)} NaN or infinite, not drawn)"
    draw.text((left, top - 22), title, fill=TEXT_COLOR, font=font)

    def x_of(epoch):
        return left + (right - left) * ((epoch - 1) / max(epochs - 1, 1))

    def y_of(value):
        return min(max(bottom - (bottom - top) * ((value - low) / (high - low)), top), bottom)

    for i in range(5):  # horizontal grid with value labels
        value = low + (high - low) * i / 4
        y = y_of(value)
        draw.line([(left, y), (right, y)], fill=GRID_COLOR)
        label = f"{100 * value:.1f}%" if as_percent else f"{value:.3f}" if abs(value) < 1e4 else f"{value:.3g}"
        draw.text((left - 6, y), label, fill=TEXT_COLOR, font=font, anchor="rm")
    step = max(1, round(epochs / 10))
    for epoch in range(1, epochs + 1, step):
        draw.text((x_of(epoch), bottom + 6), str(epoch), fill=TEXT_COLOR, font=font, anchor="mt")
    draw.text(((left + right) / 2, bottom + 24), "epoch", fill=TEXT_COLOR, font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=TEXT_COLOR)
    for name, color, ys in series:
        for run in _segments(ys):
            points = [(x_of(e), y_of(v)) for e, v in run]
            if len(points) > 1:
                draw.line(points, fill=color, width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
    legend_top = bottom - 12 - 16 * len(series) if as_percent else top + 6
    draw.rectangle([right - 118, legend_top, right - 6, legend_top + 6 + 16 * len(series)],
                   fill="white", outline=GRID_COLOR)
    for row, (name, color, _) in enumerate(series):
        legend_y = legend_top + 11 + 16 * row
        draw.line([(right - 110, legend_y), (right - 90, legend_y)], fill=color, width=2)
        draw.text((right - 84, legend_y), name, fill=TEXT_COLOR, font=font, anchor="lm")


def plot_history(history, path, title=None):
    """Save loss and accuracy per epoch, training and validation, side by side in a PNG.

    Args:
        history: dict with lists ``train_loss``, ``val_loss``, ``train_acc``,
            ``val_acc`` (accuracies as fractions), one value per epoch; NaN and
            infinite values are left out of the curves (and counted in the titles).
        path: the PNG file to write, atomically (parent folders are created).
        title: optional text above the panels.

    Returns:
        The path written.
    """
    keys = ("train_loss", "val_loss", "train_acc", "val_acc")
    missing = [k for k in keys if not history.get(k)]
    if missing:
        raise ValueError(f"plot_history: history lacks values for {', '.join(missing)}")
    epochs = len(history["train_loss"])
    if any(len(history[k]) != epochs for k in keys):
        raise ValueError("plot_history: every series needs one value per epoch")
    width, height = 1000, 420
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = text_font()
    if title:
        draw.text((width / 2, 10), drawable(title, font), fill=TEXT_COLOR, font=font, anchor="mt")
    _panel(draw, font, (80, 60, 470, 360), "loss",
           [("train", TRAIN_COLOR, history["train_loss"]), ("validation", VAL_COLOR, history["val_loss"])],
           epochs, as_percent=False)
    _panel(draw, font, (580, 60, 970, 360), "accuracy",
           [("train", TRAIN_COLOR, history["train_acc"]), ("validation", VAL_COLOR, history["val_acc"])],
           epochs, as_percent=True)
    return _write_png(image, path)



def _rotated_text(text, font, fill):
    """``text`` turned 90 degrees (reading upwards), as an RGBA image to paste."""
    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font)
    label = Image.new("RGBA", (box[2] + 2, box[3] + 2), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((1, 1), text, fill=fill, font=font)
    return label.rotate(90, expand=True)


def plot_confusion_matrix(matrix, class_names, path, title=None, source=None):
    """Save a confusion matrix as a PNG: true classes down, predicted classes across.

    Each cell shows its count and is shaded by its share of the row (the true class), so
    the diagonal reads as each class's recall and a dark cell off it is a frequent mistake.

    Args:
        matrix: ``matrix[t][p]`` counts (rows: true class), e.g. ``ClassReport.matrix``.
        class_names: the names, in label order.
        path: the PNG file to write, atomically (parent folders are created).
        title: optional text above the matrix.
        source: optional text naming what the matrix was computed from, kept in the PNG's
            ``Source`` text chunk and read back by :func:`png_text` (the training program
            records the digest of the checkpoint it shows, to tell an up-to-date matrix).

    Returns:
        The path written.
    """
    n = len(class_names)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"plot_confusion_matrix: expected a {n}x{n} matrix for {n} class names")
    font = text_font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    names = class_labels(class_names, font)
    label_width = int(max(measure.textlength(name, font=font) for name in names)) + 12
    cell = max(18, min(56, 640 // n))
    left, top = label_width + 24, 48
    grid = cell * n
    width, height = left + grid + 20, top + grid + label_width + 30
    image = Image.new("RGB", (max(width, 240), height), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((image.width / 2, 10), drawable(title, font), fill=TEXT_COLOR, font=font, anchor="mt")
    draw.text((left + grid / 2, top - 8), "predicted", fill=TEXT_COLOR, font=font, anchor="mb")
    image.paste(_rotated_text("true", font, TEXT_COLOR), (4, top + grid // 2 - 10),
                _rotated_text("true", font, TEXT_COLOR))
    for t, row in enumerate(matrix):
        total = sum(row)
        for p, count in enumerate(row):
            share = count / total if total else 0.0
            # White to the curves' blue, by the share of the true class's images.
            color = tuple(round(255 - share * (255 - c)) for c in TRAIN_COLOR)
            x, y = left + p * cell, top + t * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=color, outline=GRID_COLOR)
            if cell >= 18 and count:
                draw.text((x + cell / 2, y + cell / 2), str(count), font=font, anchor="mm",
                          fill="white" if share > 0.5 else TEXT_COLOR)
        draw.text((left - 6, top + t * cell + cell / 2), names[t], fill=TEXT_COLOR, font=font, anchor="rm")
    for p, name in enumerate(names):
        label = _rotated_text(name, font, TEXT_COLOR)
        image.paste(label, (left + p * cell + (cell - label.width) // 2, top + grid + 6), label)
    draw.rectangle([left, top, left + grid, top + grid], outline=TEXT_COLOR)
    return _write_png(image, path, {"Source": source} if source is not None else {})


def _write_png(image, path, texts=()):
    info = PngInfo()
    info.add_text("Software", SOFTWARE)  # before the pixels, where png_text looks
    for keyword, text in dict(texts).items():
        info.add_text(keyword, text)
    return write_atomically(path, lambda f: image.save(f, format="PNG", pnginfo=info))


def is_png(path):
    """Whether ``path`` is a regular file that starts as a PNG does, drawn by nnfs or not."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return f.read(8) == _PNG_SIGNATURE
    except OSError:
        return False


def drawn_by_nnfs(path):
    """Whether ``path`` is a PNG drawn here: one whose ``Software`` chunk, before its pixels, says so."""
    return png_text(path, "Software") == SOFTWARE


def png_text(path, keyword):
    """The text of the PNG's ``tEXt`` chunk ``keyword`` before its pixels (as :func:`_write_png`
    puts them), or None: none there, or not a PNG.

    Reads the chunk headers only (never the pixels); any file that cannot be read as such has none.
    """
    wanted = keyword.encode("latin-1")
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG_SIGNATURE:
                return None
            while True:
                header = f.read(8)
                if len(header) < 8:
                    return None
                length, kind = struct.unpack(">I4s", header)
                if kind in (b"IDAT", b"IEND"):
                    return None
                if kind == b"tEXt" and length <= 1024:
                    name, _, text = f.read(length).partition(b"\0")
                    if name == wanted:
                        return text.decode("latin-1")
                    f.seek(4, 1)  # the chunk's CRC
                else:
                    f.seek(length + 4, 1)
    except OSError:
        return None


__all__ = ["plot_history", "plot_confusion_matrix", "drawn_by_nnfs", "png_text", "is_png"]
