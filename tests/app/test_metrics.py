"""Confusion matrix and per-class numbers against a case worked out by hand, and the metrics CSV."""

import csv

import pytest
from PIL import Image

from nnfs.app.metrics import (
    class_report, confusion_matrix, format_report, predict_labels, write_history_csv)
from nnfs.app.models import reference_cnn
from nnfs.app.plot import TRAIN_COLOR, plot_confusion_matrix

# Three classes, ten images:
#   cat (4 images): cat, cat, cat, dog        -> recall 3/4
#   dog (3 images): dog, cat, bird             -> recall 1/3
#   bird (3 images): bird, bird, bird          -> recall 3/3
# Predicted as cat: 4 (3 right) -> precision 3/4; as dog: 2 (1 right) -> 1/2; as bird: 4 (3 right) -> 3/4.
NAMES = ["cat", "dog", "bird"]
TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
PREDICTED = [0, 0, 0, 1, 1, 0, 2, 2, 2, 2]


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    assert confusion_matrix(TRUE, PREDICTED, 3) == [[3, 1, 0],
                                                    [1, 1, 1],
                                                    [0, 0, 3]]
    with pytest.raises(ValueError, match=r"label pair \(0, 3\) outside 0..2"):
        confusion_matrix([0], [3], 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [1], 3)


def test_per_class_numbers_match_the_hand_computed_case():
    report = class_report(TRUE, PREDICTED, NAMES)
    assert report.support == [4, 3, 3] and report.total == 10
    assert report.recall == pytest.approx([3 / 4, 1 / 3, 1.0])
    assert report.precision == pytest.approx([3 / 4, 1 / 2, 3 / 4])
    # F1 = 2PR / (P + R): cat 0.75, dog 2 * (1/2)(1/3) / (5/6) = 0.4, bird 2 * 0.75 / 1.75 = 6/7.
    assert report.f1 == pytest.approx([0.75, 0.4, 6 / 7])
    assert report.accuracy == pytest.approx(0.7)
    assert report.top_confusions(2) == [(1, "cat", "dog"), (1, "dog", "cat")]  # ties in class order


def test_a_class_never_predicted_or_without_images_has_no_precision_or_recall():
    report = class_report([0, 0, 1], [0, 0, 0], ["a", "b", "c"])
    assert report.precision == [pytest.approx(2 / 3), None, None]
    assert report.recall == [1.0, 0.0, None]
    assert report.f1 == [pytest.approx(0.8), None, None]
    lines = format_report(report)
    assert lines[2].split()[:4] == ["b", "1", "0.0%", "-"] and lines[2].endswith("a (1)")
    assert lines[3].split() == ["c", "0", "-", "-"]


def test_the_accuracy_line_counts_one_image_as_one():
    assert format_report(class_report([0], [1], ["a", "b"]))[-2] == "accuracy 0.0% on 1 image"


def test_the_printed_table_fits_60_columns_and_names_the_mistakes():
    names = ["a class with a very long name", "another long class name", "bird"]
    lines = format_report(class_report(TRUE * 20, PREDICTED * 20, names))
    assert lines[0].split() == ["class", "images", "recall", "precision", "mistaken", "for"]
    assert all(len(line) <= 58 for line in lines[:-1]), lines  # 60 with the two spaces of indent
    assert lines[1].startswith("a cla~g name") and lines[1].endswith("anoth~s name (20)")
    assert lines[2].split()[2:5] == ["60", "33.3%", "50.0%"]
    lines = format_report(class_report(TRUE, PREDICTED, ["a class with a very long name", "dog", "bird"]))
    assert lines[-2] == "accuracy 70.0% on 10 images"
    assert lines[-1].startswith("most confused: a class with a very long name as dog (1)")


def test_names_cut_to_the_width_stay_apart():
    """Cut at their end, three breeds were one row name three times (dog_breed_b~)."""
    names = ["dog_breed_beagle", "dog_breed_boxer", "dog_breed_basset", "cat"]
    lines = format_report(class_report([0, 1, 2, 3] * 5, [1, 2, 0, 3] * 5, names))
    assert [line.split()[0] for line in lines[1:5]] == ["dog_b~beagle", "dog_b~_boxer", "dog_b~basset", "cat"]
    assert lines[1].endswith("dog_b~_boxer (5)")
    from nnfs.text import short_names

    alike = ["a" * 30 + "1" + "b" * 10, "a" * 30 + "2" + "b" * 10, "cat"]  # alike at both ends: wider
    shortened, width = short_names(alike, 12)
    assert len(set(shortened)) == 3 and width > 12 and all(len(name) <= width for name in shortened)
    assert shortened[2] == "cat" and len(shortened[0]) == len(shortened[1]) == width  # only the two widen


def test_rows_with_wide_characters_stay_in_their_columns():
    from nnfs.text import display_width

    names = ["日本語の猫", "e\u0301clair", "plain"]
    lines = format_report(class_report([0, 1, 2] * 3, [0, 1, 2] * 3, names))
    starts = {display_width(line[:line.index(" 3 ")]) for line in lines[1:4]}  # the images column
    assert len(starts) == 1


def test_predict_labels_reads_every_batch(rng):
    net = reference_cnn(1, 8, 3)
    X, y = rng.normal(size=(7, 1, 8, 8)), rng.integers(0, 3, size=7)
    true, predicted = predict_labels(net, [(X[:4], y[:4]), (X[4:4], y[4:4]), (X[4:], y[4:])])
    assert true == y.tolist() and predicted == net.predict(X).tolist()
    assert net.training  # the mode is put back


def test_history_csv_has_one_row_per_epoch(tmp_path):
    history = {"train_loss": [1.5, 0.75], "train_acc": [0.5, 0.8], "val_loss": [1.25, 1.0], "val_acc": [0.4, 0.6]}
    path = tmp_path / "run" / "metrics.csv"
    write_history_csv(history, path)
    rows = list(csv.reader(open(path)))
    assert rows == [["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"],
                    ["1", "1.5", "0.5", "1.25", "0.4"], ["2", "0.75", "0.8", "1", "0.6"]]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.csv"]  # no temporary file left


def test_confusion_matrix_png_has_a_cell_per_pair(tmp_path):
    matrix = confusion_matrix(TRUE, PREDICTED, 3)
    path = plot_confusion_matrix(matrix, NAMES, tmp_path / "confusion.png", title="test")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 3 * 18 and image.height >= 3 * 18
        # A cell is shaded by its share of the row: bird, always right, gets the full colour.
        colors = {color for _, color in image.convert("RGB").getcolors(maxcolors=1 << 16)}
        assert TRAIN_COLOR in colors and (255, 255, 255) in colors
    with pytest.raises(ValueError, match="expected a 2x2 matrix"):
        plot_confusion_matrix(matrix, NAMES[:2], tmp_path / "bad.png")


def test_one_hot_targets_give_their_class_and_float_labels_are_refused():
    import numpy as np

    from nnfs.app.metrics import confusion_matrix, predict_labels
    from nnfs.layers import Linear
    from nnfs.net import Net

    net = Net([Linear(4, 3)])
    true, predicted = predict_labels(net, [(np.zeros((5, 4), np.float32), np.eye(3)[[0, 1, 2, 0, 1]])])
    assert true == [0, 1, 2, 0, 1] and len(predicted) == 5
    with pytest.raises(ValueError, match=r"true labels must be class indices \(integers\), got 1.7"):
        confusion_matrix([0.0, 1.7], [0, 1], 2)
    assert confusion_matrix([0.0, 1.0], [0, 1], 2) == [[1, 0], [0, 1]]


def test_names_that_differ_in_an_invisible_character_are_two_rows():
    lines = format_report(class_report([0, 1] * 3, [0, 1] * 3, ["ab", "a\u200bb"]))
    assert [line.split()[0] for line in lines[1:3]] == ["ab", "a\\u200bb"]


def test_a_long_name_with_undecodable_bytes_is_cut_between_its_escapes():
    """The table escaped a name, then cut it inside an escape: ``chat\\~b_noir`` named a
    character that is in no folder's name."""
    import os

    names = ["chat" + os.fsdecode(b"\x8c\xab") + "_noir", "dog"]
    lines = format_report(class_report([0, 1], [1, 0], names))
    assert lines[1].split()[0] == "chat~_noir" and lines[2].endswith("chat~_noir (1)")
