"""What a classifier gets wrong: the confusion matrix, per-class precision and recall, and the
per-epoch metrics file.

The numbers are plain Python (lists of ints and floats): they are computed once, on the
host, after training, and printed, plotted or written as CSV from there.

For class ``k`` with ``n_k`` images, of which ``tp`` are classified as ``k``, and ``p_k``
images classified as ``k`` in all:

- recall (the class's accuracy): ``tp / n_k``, how many of its images the model finds;
- precision: ``tp / p_k``, how often the model is right when it says ``k`` (None when it
  never says ``k``);
- F1: their harmonic mean ``2 * precision * recall / (precision + recall)``.
"""

import csv
import io
from dataclasses import dataclass

from nnfs.backend import to_numpy
from nnfs.files import write_atomically
from nnfs.text import count, pad, printable, short_names

__all__ = ["ClassReport", "confusion_matrix", "class_report", "predict_labels", "format_report",
           "write_history_csv", "HISTORY_COLUMNS"]


def _indices(what, values):
    """Class indices as ints; a float such as 1.7 is refused (int() would make it class 1)."""
    indices = []
    for value in values:
        if int(value) != value:  # True and False are 1 and 0, as NumPy's bools are
            raise ValueError(f"confusion_matrix: {what} labels must be class indices (integers), got {value!r}")
        indices.append(int(value))
    return indices


def confusion_matrix(true, predicted, n_classes):
    """Counts ``matrix[t][p]``: images of true class ``t`` classified as ``p``.

    Args:
        true, predicted: class indices, sequences (or 1-d arrays) of the same length.
        n_classes: number of classes; every index must be in ``range(n_classes)``.

    Returns:
        An ``n_classes x n_classes`` list of lists of ints; rows are true classes.
    """
    true, predicted = _indices("true", true), _indices("predicted", predicted)
    if len(true) != len(predicted):
        raise ValueError(f"confusion_matrix: {len(true)} true labels but {len(predicted)} predictions")
    matrix = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(true, predicted):
        if not (0 <= t < n_classes and 0 <= p < n_classes):
            raise ValueError(f"confusion_matrix: label pair ({t}, {p}) outside 0..{n_classes - 1}")
        matrix[t][p] += 1
    return matrix


@dataclass
class ClassReport:
    """Per-class results on one set of images.

    Attributes:
        class_names: the names, in label order.
        matrix: the confusion matrix (rows: true class, columns: predicted class).
        support: images per true class.
        recall: per class, the share of its images classified correctly (its accuracy),
            or None for a class without images.
        precision: per class, the share of the images classified as it that are it, or
            None for a class the model never predicted.
        f1: per class, the harmonic mean of the two (None where either is None or both 0).
        accuracy: the share of all images classified correctly.
    """

    class_names: list
    matrix: list
    support: list
    recall: list
    precision: list
    f1: list
    accuracy: float

    @property
    def total(self):
        return sum(self.support)

    def top_confusions(self, k):
        """Up to ``k`` ``(count, true name, predicted name)`` off-diagonal cells, largest first."""
        cells = [(count, t, p) for t, row in enumerate(self.matrix) for p, count in enumerate(row)
                 if t != p and count]
        cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
        return [(count, self.class_names[t], self.class_names[p]) for count, t, p in cells[:k]]


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def class_report(true, predicted, class_names):
    """The :class:`ClassReport` of predictions ``predicted`` against labels ``true``."""
    n = len(class_names)
    matrix = confusion_matrix(true, predicted, n)
    support = [sum(row) for row in matrix]
    predicted_as = [sum(matrix[t][p] for t in range(n)) for p in range(n)]
    correct = [matrix[k][k] for k in range(n)]
    recall = [_ratio(correct[k], support[k]) for k in range(n)]
    precision = [_ratio(correct[k], predicted_as[k]) for k in range(n)]
    f1 = [None if r is None or p is None or r + p == 0 else 2 * p * r / (p + r)
          for p, r in zip(precision, recall)]
    accuracy = _ratio(sum(correct), sum(support)) or 0.0
    return ClassReport(list(class_names), matrix, support, recall, precision, f1, accuracy)


def predict_labels(net, loader):
    """``(true, predicted)`` class indices over every batch of ``loader``, as Python lists.

    Runs ``net`` in eval mode (its mode is restored). One read-back per batch: this is
    for the report after training, not for the training loop.
    """
    true, predicted = [], []
    for X, y in loader:
        if len(y):
            predicted.extend(int(k) for k in to_numpy(net.predict(X)).tolist())
            y = to_numpy(y)
            if y.ndim == 2 and y.shape[1] > 1:  # one-hot or probability targets: the likeliest class
                y = y.argmax(axis=1)
            true.extend(int(k) for k in y.reshape(-1).tolist())
    return true, predicted


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def format_report(report, name_width=12, confusions=3):
    """The report as lines for a terminal, the rows within 58 columns (names cut to
    ``name_width`` columns, wider where the cut names would be alike:
    :func:`~nnfs.text.short_names`; the last line, the most frequent confusions, names them whole).

    One row per class (images, recall, precision, and the class it is most often taken
    for, with how often), then the overall accuracy and the most frequent confusions.
    """
    # Measured as printed: what the console escapes is escaped first (nnfs.text.printable).
    shortened, width = short_names([printable(name) for name in report.class_names], name_width)
    short = dict(zip(report.class_names, shortened)).get

    lines = [f"{'class':<{width}}  {'images':>6}  {'recall':>6}  {'precision':>9}  mistaken for"]
    for k, name in enumerate(report.class_names):
        # The first class in label order among the most frequent mistakes, as in top_confusions.
        times, other = max(((n, p) for p, n in enumerate(report.matrix[k]) if p != k),
                           key=lambda cell: cell[0], default=(0, k))
        mistaken = f"{short(report.class_names[other])} ({times})" if times else ""
        lines.append(f"{pad(short(name), width)}  {report.support[k]:>6}  {_percent(report.recall[k]):>6}  "
                     f"{_percent(report.precision[k]):>9}  {mistaken}".rstrip())
    lines.append(f"accuracy {_percent(report.accuracy)} on {count(report.total, 'image')}")
    top = report.top_confusions(confusions)
    if top:
        lines.append("most confused: " + ", ".join(f"{t} as {p} ({times})" for times, t, p in top))
    return lines


#: The columns of the per-epoch metrics file, as ``RunState.history`` keys (``None``: the epoch).
HISTORY_COLUMNS = (("epoch", None), ("train_loss", "train_loss"), ("train_accuracy", "train_acc"),
                   ("val_loss", "val_loss"), ("val_accuracy", "val_acc"))


def write_history_csv(history, path):
    """Write one row per epoch (loss and accuracy, training and validation) as CSV, atomically.

    Args:
        history: ``RunState.history``: lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``.
        path: the CSV file (rewritten whole: after a resume it still holds every epoch).

    Returns:
        The path written.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([column for column, _ in HISTORY_COLUMNS])
    for index in range(len(history["train_loss"])):
        writer.writerow([index + 1] + [f"{history[key][index]:.6g}" for _, key in HISTORY_COLUMNS[1:]])
    data = text.getvalue().encode("utf-8")
    return write_atomically(path, lambda f: f.write(data))
