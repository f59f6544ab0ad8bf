"""The end of a training run: the best model's per-class results and its confusion matrix.

After the last epoch the training program loads the best model the run has
(:func:`best_model_file`: the one it wrote, or the one it resumed with), prints its
per-class precision and recall on the validation split and draws its confusion matrix
(:func:`report_best_model`). The PNG records the digest of the checkpoint it was drawn
from (:func:`model_digest`), so that a ``--resume`` of a run that stopped after its last
epoch but before this report can tell, and draw it then (:func:`report_finished_run`).
"""

import hashlib
import os

from nnfs.app.cli import console
from nnfs.app.cli.outputs import history_starts, metadata_or_none, resumed_run_files, run_record, same_file, same_split
from nnfs.app.metrics import class_report, format_report, predict_labels
from nnfs.app.models import MODEL_TITLES
from nnfs.app.plot import plot_confusion_matrix, png_text
from nnfs.app.resume import check_extra
from nnfs.checkpoint import load_into

__all__ = ["ReportNotWritten", "best_model_file", "model_digest", "report_best_model", "report_finished_run"]


def best_model_file(args, outputs, state, model, split, written):
    """The checkpoint that holds this run's best epoch, or None where no file does.

    The one this run wrote, else (a resumed run whose epochs did not beat the best it resumed
    with) the resumed run's best model, wherever it is, known by its record: the best epoch,
    with this run's history up to it (every loss and accuracy), its model and its split. A file
    at ``--save`` from another run, however alike its scores, is not it.
    """
    if "checkpoint" in written and os.path.isfile(outputs["checkpoint"]):  # not removed since
        return outputs["checkpoint"]
    candidates = []
    if args.resume:
        candidates += [resumed_run_files(args.resume, metadata_or_none(args.resume)), args.resume]
    for path in candidates + [outputs["checkpoint"]]:
        extra, run = run_record(metadata_or_none(path) if path is not None else None)
        if run is None or extra.get("epoch") != state.best_epoch:
            continue
        history = run.get("history")
        if extra.get("model") == model and same_split(extra.get("split"), split) and isinstance(history, dict) \
                and all(len(values) == state.best_epoch for values in history.values() if isinstance(values, list)) \
                and history_starts(history, state.history):
            return path
    return None


class ReportNotWritten(RuntimeError):
    """The end-of-run confusion matrix could not be written; the files of the epochs are whole."""


def model_digest(path):
    """The SHA-256 of the checkpoint at ``path``, which the confusion matrix drawn from it records
    (its ``Source`` text chunk): the matrix beside a best model is up to date when they agree."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def report_best_model(args, net, val, class_names, outputs, path, say, latest, digest=None):
    """Per-class results of the best model (in the checkpoint ``path``) on the validation
    split, printed, and its confusion matrix drawn, recording the checkpoint's digest
    (:func:`model_digest`).

    The best weights are loaded into ``net``, the one that trained (its work buffers are
    already the right size: a second net would double the memory of this last step).

    Raises:
        ReportNotWritten: when the PNG cannot be written (a full disk); its line says that the
            model and the latest state (``latest``) are safe, and how to draw it without training.

    ``digest``: the checkpoint's :func:`model_digest`, where the caller has it already.
    """
    best = load_into(path, net)
    source = digest or model_digest(path)  # after the load, whose error says what is wrong with the file
    extra = check_extra(path, best.extra, ("epoch", "model"))
    report = class_report(*predict_labels(net, val), class_names)
    epoch = extra.get("epoch")
    say(f"per class on the {console.count(report.total, 'validation image')} (best model, epoch {epoch}):")
    for line in format_report(report):
        say(f"  {line}")
    model = MODEL_TITLES.get(extra.get("model"), "model")
    name = os.path.basename(os.path.normpath(args.dataset))
    try:
        plot_confusion_matrix(report.matrix, class_names, outputs["confusion"],
                              title=f"{model} on {name}: validation, epoch {epoch}", source=source)
    except OSError as error:
        raise ReportNotWritten(
            f"cannot write {console.os_error_message(error)}; the model {path} and the latest state {latest} are "
            f"safe: the same command with --resume {latest} --epochs {args.epochs} draws the confusion matrix "
            "without training") from None


def report_finished_run(args, net, val, class_names, outputs, state, model, split, say, root):
    """A ``--resume`` of a run that already holds ``--epochs``: nothing to train, and nothing
    written, unless the run stopped (killed, a full disk) after its last epoch's files but before
    its end-of-run report: then the per-class report is printed and the confusion matrix drawn
    now, where the PNG beside its best model is missing or was drawn from another checkpoint
    than that model (:func:`model_digest`). Only beside the run's own best model: a ``--save``
    elsewhere holds no model to draw."""
    best_file = best_model_file(args, outputs, state, model, split, {}) if root else None
    confusion = outputs["confusion"]
    if best_file is not None and same_file(best_file, outputs["checkpoint"]):
        drawn = png_text(confusion, "Source") if os.path.isfile(confusion) else None
        digest = model_digest(best_file)
        if drawn != digest:
            why = "is missing" if not os.path.exists(confusion) else f"was not drawn from its best model {best_file}"
            say(f"{args.resume} already holds epoch {state.epoch} (--epochs {args.epochs}), but the confusion matrix "
                f"{confusion} {why} (the run stopped before its end): printing the per-class report and drawing "
                "it, without training")
            report_best_model(args, net, val, class_names, outputs, best_file, say, args.resume, digest)
            say(f"best val accuracy {100 * state.best_val_accuracy:.2f}% (epoch {state.best_epoch}); "
                f"confusion matrix in {confusion}; no other file was written")
            return
    if "epochs" in args.given:
        say(f"nothing to train: {args.resume} already holds epoch {state.epoch} and --epochs is "
            f"{args.epochs}; no file was written (raise --epochs to train on)")
    else:  # the run's own plan (resumed_settings)
        say(f"nothing to train: {args.resume} already holds epoch {state.epoch}, the last of the "
            f"{args.epochs} its run planned; no file was written (give a larger --epochs to train on)")
