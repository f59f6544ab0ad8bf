"""The curves of a diverged run: NaN and inf are left out (and counted), never a crash."""

import math

import pytest
from PIL import Image

from nnfs.app.plot import plot_history

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("series", [
    [1.0, NAN, 0.5], [NAN], [INF, -INF], [1e308, -1e308, 0.0], [NAN, NAN, NAN, 2.0], [0.5, 0.5],
])
def test_non_finite_and_extreme_values_are_drawn_without_error(tmp_path, series):
    history = {"train_loss": series, "val_loss": series, "train_acc": [0.5] * len(series),
               "val_acc": [min(max(v, 0.0), 1.0) if math.isfinite(v) else v for v in series]}
    path = plot_history(history, tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.size == (1000, 420)
