"""plot_history: the training curves as a PNG."""

import pytest
from PIL import Image

from nnfs.app.plot import plot_history


def test_plot_history_writes_a_png(tmp_path):
    history = {"train_loss": [0.9, 0.4, 0.2], "val_loss": [0.8, 0.5, 0.4],
               "train_acc": [0.6, 0.8, 0.9], "val_acc": [0.55, 0.75, 0.85]}
    path = plot_history(history, tmp_path / "out" / "curves.png", title="test")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1000, 420)
        assert len(image.getcolors(1 << 16)) > 2  # not a blank canvas
    single = {key: values[:1] for key, values in history.items()}
    plot_history(single, tmp_path / "one.png")
    with pytest.raises(ValueError, match="val_acc"):
        plot_history({**history, "val_acc": []}, tmp_path / "bad.png")
