"""Training curves as a PNG, drawn with Pillow (no plotting library needed)."""

from PIL import Image, ImageDraw, ImageFont

from nnfs.files import write_atomically

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (214, 39, 40)
GRID_COLOR = (225, 225, 225)
TEXT_COLOR = (30, 30, 30)


def _nice_range(values, floor_zero=False):
    low, high = min(values), max(values)
    if floor_zero:
        low = min(low, 0.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return (low if floor_zero else low - pad), high + pad


def _panel(draw, font, box, title, series, epochs, as_percent):
    """One framed chart; the legend goes where the curves usually are not (loss falls, accuracy rises)."""
    left, top, right, bottom = box
    values = [v for _, _, ys in series for v in ys]
    low, high = _nice_range(values, floor_zero=not as_percent)
    if as_percent:
        low, high = max(low, 0.0), min(high, 1.0)
    draw.text((left, top - 22), title, fill=TEXT_COLOR, font=font)

    def x_of(epoch):
        return left + (right - left) * ((epoch - 1) / max(epochs - 1, 1))

    def y_of(value):
        return bottom - (bottom - top) * ((value - low) / (high - low))

    for i in range(5):  # horizontal grid with value labels
        value = low + (high - low) * i / 4
        y = y_of(value)
        draw.line([(left, y), (right, y)], fill=GRID_COLOR)
        label = f"{100 * value:.1f}%" if as_percent else f"{value:.3f}"
        draw.text((left - 6, y), label, fill=TEXT_COLOR, font=font, anchor="rm")
    step = max(1, round(epochs / 10))
    for epoch in range(1, epochs + 1, step):
        draw.text((x_of(epoch), bottom + 6), str(epoch), fill=TEXT_COLOR, font=font, anchor="mt")
    draw.text(((left + right) / 2, bottom + 24), "epoch", fill=TEXT_COLOR, font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=TEXT_COLOR)
    for name, color, ys in series:
        points = [(x_of(e), y_of(v)) for e, v in enumerate(ys, 1)]
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
            ``val_acc`` (accuracies as fractions), one value per epoch.
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
    font = ImageFont.load_default()
    if title:
        draw.text((width / 2, 10), title, fill=TEXT_COLOR, font=font, anchor="mt")
    _panel(draw, font, (80, 60, 470, 360), "loss",
           [("train", TRAIN_COLOR, history["train_loss"]), ("validation", VAL_COLOR, history["val_loss"])],
           epochs, as_percent=False)
    _panel(draw, font, (580, 60, 970, 360), "accuracy",
           [("train", TRAIN_COLOR, history["train_acc"]), ("validation", VAL_COLOR, history["val_acc"])],
           epochs, as_percent=True)
    return write_atomically(path, lambda f: image.save(f, format="PNG"))


__all__ = ["plot_history"]
