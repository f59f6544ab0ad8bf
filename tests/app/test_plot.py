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


def test_names_with_newlines_and_control_characters_are_drawn_escaped(tmp_path):
    """Folder and class names come from the file system: a newline there made Pillow refuse
    the title or the labels (multiline text cannot be anchored or measured)."""
    from nnfs.app.plot import plot_confusion_matrix, plot_history

    history = {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "train_acc": [0.5, 0.7], "val_acc": [0.4, 0.6]}
    plot_history(history, tmp_path / "curves.png", title="CNN on nl\nset\x1b[2J")
    plot_confusion_matrix([[3, 1], [0, 4]], ["one\nx", "tab\there"], tmp_path / "confusion.png",
                          title="best model on nl\nset")
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "confusion.png").stat().st_size > 0


def test_letters_the_font_lacks_are_drawn_escaped_so_names_stay_apart(monkeypatch):
    """Pillow's own font has no accented letters: "café" was drawn as "caf" and a box, and two
    names in another script were two rows of the same boxes."""
    import nnfs.app.plot as plot

    monkeypatch.setattr(plot, "TEXT_FONTS", ())  # Pillow's font, as on a system without these
    monkeypatch.setattr(plot, "_fonts", {})
    font = plot.text_font()
    assert plot.drawable("café", font) == "caf\\u00e9"
    assert plot.drawable("日本", font) != plot.drawable("中国", font)
    assert plot.drawable("🐦 birds", font) == "\\U0001f426 birds"
    assert plot.drawable("plain name", font) == "plain name" and plot.drawable("a\nb", font) == "a\\x0ab"


def test_a_system_font_draws_accented_letters_as_they_are(monkeypatch):
    import nnfs.app.plot as plot

    monkeypatch.setattr(plot, "_fonts", {})
    font = plot.text_font()
    if not hasattr(font, "path") or not isinstance(font.path, str):
        pytest.skip("none of the fonts nnfs looks for is on this system")
    assert plot.drawable("Müller niño café", font) == "Müller niño café"


def test_long_labels_are_cut_between_the_escapes_they_are_drawn_with(monkeypatch):
    """The confusion matrix cut its labels before escaping the letters its font lacks: a label
    of 24 columns was drawn in 60, and a cut could fall inside an escape."""
    import nnfs.app.plot as plot

    monkeypatch.setattr(plot, "TEXT_FONTS", ())  # Pillow's font, which has no accented letters
    monkeypatch.setattr(plot, "_fonts", {})
    font = plot.text_font()
    labels = plot.class_labels(["éléphants_d_afrique_é", "é" * 30, "cat\n" * 10, "dog"], font)
    assert all(len(label) <= 24 for label in labels), labels
    assert labels[0] == "\\u00e9l~rique_\\u00e9" and labels[3] == "dog"
    assert labels[2] == "cat\\x0acat~t\\x0acat\\x0a"
