"""The files a training run writes, and the checks made on them before it starts.

The list lives in one place (:func:`output_files`) so that the checks before training see
every output: two outputs on one file, an output over the ``--resume`` checkpoint or inside
the dataset folder, an unwritable location. All of it runs before the dataset is loaded, so a
mistake costs no training time.
"""

import itertools
import os

from nnfs.app.metrics import HISTORY_COLUMNS
from nnfs.app.resume import records_run_state
from nnfs.app.plot import drawn_by_nnfs, is_png
from nnfs.checkpoint import CheckpointError, metadata
from nnfs.files import check_writable, file_identity, name_key

__all__ = ["last_path", "default_curves_path", "output_files", "same_file", "same_file_among", "inside", "clashing_outputs",
           "is_checkpoint", "is_output_of", "check_outputs", "aside_name", "keep_aside", "put_back", "ROLE_KINDS", "KIND_NAMES"]

#: The kind of file each output of a training run is: the only kind it may replace (:func:`is_output_of`).
ROLE_KINDS = {"checkpoint": "checkpoint", "last": "checkpoint", "curves": "png", "confusion": "png",
              "metrics": "csv"}
#: How the messages name each kind.
KIND_NAMES = {"checkpoint": "an nnfs checkpoint", "png": "a PNG drawn by nnfs", "csv": "a CSV written by nnfs"}
METRICS_HEADER = ",".join(column for column, _ in HISTORY_COLUMNS)


def last_path(save_path):
    """Where the state after the latest epoch goes, beside the best model: ``runs/cnn_last.npz``."""
    stem, extension = os.path.splitext(save_path)
    return f"{stem}_last{extension or '.npz'}"


def _aside_names(path):
    """``runs/cnn.earlier.npz``, ``runs/cnn.earlier-2.npz``, ...: where an earlier run's file
    at ``path`` goes before this run writes its own there (beside the file a link points to)."""
    stem, extension = os.path.splitext(os.path.realpath(path) if os.path.islink(path) else path)
    yield f"{stem}.earlier{extension}"
    for number in itertools.count(2):
        yield f"{stem}.earlier-{number}{extension}"


def aside_name(path):
    """The name :func:`keep_aside` would give the file at ``path`` now: the first one free."""
    return next(name for name in _aside_names(path) if not os.path.lexists(name))


def keep_aside(path):
    """Keep the earlier run's file at ``path`` under the first free :func:`aside_name`, just
    before this run writes its own over it; returns that name (None: the file is gone).

    A hard link, so that ``path`` holds the earlier file until the atomic write replaces it
    (a run killed in between leaves both); where the file system has none (FAT, some network
    shares), a rename. Never over an existing file: an earlier one kept aside stays.
    """
    real = os.path.realpath(path)
    for name in _aside_names(path):
        try:
            os.link(real, name)
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except OSError:  # no hard links here
            if os.path.lexists(name):
                continue
            os.rename(real, name)
        return name


def put_back(kept, path):
    """Undo :func:`keep_aside` after this run's write at ``path`` failed (the atomic write left
    the earlier file there, or, after a rename, nothing): the earlier file is at ``path`` again,
    and not kept twice."""
    real = os.path.realpath(path)
    if os.path.exists(real) and same_file(kept, real):
        os.unlink(kept)
    elif not os.path.lexists(real):
        os.rename(kept, real)


def save_path_of(checkpoint):
    """The ``--save`` of the run that wrote ``checkpoint``: the inverse of :func:`last_path`
    for a latest state (``runs/cnn_last.npz``: ``runs/cnn.npz``, or ``runs/cnn`` where that is
    the file: a --save without an extension), the checkpoint itself for a best model."""
    stem, extension = os.path.splitext(checkpoint)
    if not stem.lower().endswith("_last"):
        return checkpoint
    stem = stem[:-len("_last")]
    if extension.lower() == ".npz" and os.path.isfile(stem) and not os.path.isfile(stem + extension):
        return stem
    return stem + extension


def resumed_run_files(resume, meta):
    """The ``--save`` of the run a ``--resume`` continues, from the checkpoint's path and its
    record ``meta``, or None where that cannot be told (the default files then apply).

    The checkpoint of a run's best epoch with that run's latest state beside it is its best
    model (whatever its name: ``--save m_last.npz`` makes ``m_last_last.npz`` its latest);
    else a ``_last`` file is a latest state, beside its best model (through a link: beside the
    file it points to, where the run wrote its other files); else a best epoch's checkpoint is
    the best model. A latest state under another name (a copy, ``snapshot.npz``) is none of
    these: writing the best model over it would lose it.
    """
    extra, run = run_record(meta)
    if run is None:
        return None
    path = os.path.realpath(resume) if os.path.islink(resume) else resume
    best = extra.get("epoch") is not None and extra.get("epoch") == run.get("best_epoch")
    if best and same_run(meta, metadata_or_none(last_path(path))):
        return path
    saved = save_path_of(path)
    if saved != path:
        return saved
    return path if best else None


def run_record(meta):
    """``(extra, run)`` of a checkpoint record: its ``extra`` dict and the training program's
    run state in it, each None where the record has none of that form."""
    extra = meta.get("extra") if isinstance(meta, dict) else None
    if not isinstance(extra, dict):
        return None, None
    run = extra.get("run")
    return extra, run if isinstance(run, dict) else None


def same_run(first, second):
    """Whether two checkpoint records (:func:`~nnfs.checkpoint.metadata`) come from one run:
    the same model and split, and the history of the earlier one the start of the other's
    (every loss and accuracy, epoch by epoch: no two runs share it by chance)."""
    runs = []
    for meta in (first, second):
        extra, run = run_record(meta)
        if run is None or not isinstance(run.get("history"), dict):
            return False
        runs.append((extra, run["history"]))
    (extra_a, history_a), (extra_b, history_b) = runs
    if extra_a.get("model") != extra_b.get("model") or not same_split(extra_a.get("split"), extra_b.get("split")):
        return False
    return history_starts(history_a, history_b) or history_starts(history_b, history_a)


def same_split(saved, split):
    """Whether a recorded split names the same files as ``split`` (both ``{"train": [...],
    "val": [...]}``), whatever the locale and the Unicode form of the names
    (:func:`~nnfs.files.name_key`): the rule of a resume and of :func:`same_run`."""
    if saved == split:  # the usual case, one run's own split (or two records without one)
        return True
    if not isinstance(saved, dict) or not isinstance(split, dict) or saved.keys() != split.keys():
        return False
    return all(isinstance(saved[name], list) and isinstance(split[name], list)
               and len(saved[name]) == len(split[name])
               and all(isinstance(a, str) and isinstance(b, str) and name_key(a) == name_key(b)
                       for a, b in zip(saved[name], split[name]))
               for name in split)


def history_starts(start, history):
    """Whether the per-epoch lists of ``start`` are the first epochs of those of ``history``."""
    try:
        return set(start) == set(history) and all(
            isinstance(start[key], list) and start[key] == history[key][:len(start[key])] for key in start)
    except TypeError:
        return False


def metadata_or_none(path):
    """The record (:func:`~nnfs.checkpoint.metadata`) of the nnfs checkpoint at ``path``, or None
    where there is none (:func:`is_checkpoint` says which), read once for both questions."""
    try:
        if not os.path.isfile(path):
            return None
        # The record only, checked for its form, never the arrays: the hardened reader, which
        # turns any damage into one CheckpointError (a bare zipfile raised NotImplementedError
        # on a damaged header).
        return metadata(path)
    except (OSError, ValueError, CheckpointError):
        return None


def output_files(args):
    """Every file this run writes, by role: the one place that lists them, so that the
    checks before training (:func:`clashing_outputs`, :func:`check_outputs`) see them all.

    All but the curves (``--plot``) sit beside the checkpoint (``--save``) and share its name:
    ``runs/cnn.npz``, ``runs/cnn_last.npz``, ``runs/cnn_curves.png``, ``runs/cnn_metrics.csv``,
    ``runs/cnn_confusion.png``.

    Returns:
        ``{"checkpoint": --save, "last": the latest state beside it, "curves": --plot,
        "metrics": the per-epoch CSV, "confusion": the confusion-matrix PNG}``.
    """
    stem = os.path.splitext(args.save)[0]
    return {"checkpoint": args.save, "last": last_path(args.save),
            "curves": args.plot or default_curves_path(args.save), "metrics": f"{stem}_metrics.csv",
            "confusion": f"{stem}_confusion.png"}


def default_curves_path(save_path):
    """Where the curves go without ``--plot``, beside the checkpoint: ``runs/cnn_curves.png``."""
    return f"{os.path.splitext(save_path)[0]}_curves.png"


def same_file(a, b):
    """Whether two paths name one file (through symbolic links, hard links, case folding)."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def same_file_among(path, candidates):
    """The first of ``candidates`` that names the existing file ``path`` names, or None: one
    ``stat`` each (a folder of a million images is checked in seconds, not minutes)."""
    try:
        identity = file_identity(path)
    except OSError:
        return None
    for candidate in candidates:
        try:
            if file_identity(candidate) == identity:
                return candidate
        except OSError:
            continue
    return None


def inside(path, folder):
    """Whether ``path`` would be within ``folder`` (both through symbolic links)."""
    folder = os.path.normcase(os.path.realpath(folder))
    try:
        return os.path.commonpath([os.path.normcase(os.path.realpath(path)), folder]) == folder
    except ValueError:  # different drives
        return False


def clashing_outputs(args):
    """A one-line description of two outputs that would land on one file, or None.

    Two outputs of one run must differ (``--save model.png --plot model.png`` would replace
    the model with the curves), no output other than a checkpoint may replace the
    ``--resume`` file (resuming from ``runs/cnn_last.npz`` and updating it is the usual way) or
    any other nnfs checkpoint (:func:`is_checkpoint`), none may go into the dataset
    folder (the next run would read it as data: the curves as an image of a class, a ``runs``
    folder as a class without images), and none may replace a file of another kind than it
    writes (:func:`is_output_of`: a checkpoint over notes, curves over a photo).
    """
    files = list(output_files(args).items())
    clash = resume_clash(args, dict(files))
    if clash:
        return clash
    for i, (role, path) in enumerate(files):
        if inside(path, args.dataset):
            return (f"the {role} file {path} would be written into the dataset folder {args.dataset}; "
                    "save it elsewhere")
        for other, other_path in files[:i]:
            if same_file(path, other_path):
                return f"the {other} file and the {role} file would both be {path}; give them different paths"
        if role in ("checkpoint", "last"):
            continue
        if args.resume and same_file(path, args.resume):
            return f"the {role} file would replace the --resume checkpoint {args.resume}"
        if is_checkpoint(path):
            return f"the {role} file would replace {path}, an nnfs checkpoint; give it another path"
    # The PNGs a run draws beside its checkpoint, where an nnfs checkpoint already is, are the
    # previous run's even without nnfs's mark: PNGs drawn before nnfs marked them have none,
    # and the command that made them must still run again (--plot spelling out the default
    # path too). Only PNGs: an archive or notes under such a name are no run's. A --plot
    # elsewhere must be marked: an unmarked PNG there may be a photo, which only its owner can
    # tell from old curves, so the message says how to go on.
    earlier_run = is_checkpoint(args.save) or is_checkpoint(last_path(args.save))
    beside = {"confusion"}
    if args.plot is None or same_file(args.plot, default_curves_path(args.save)):
        beside.add("curves")
    for role, path in files:  # after the clashes above, which say more
        # Not through a link: the writer follows it, to a photo anywhere.
        if earlier_run and role in beside and is_png(path) and not os.path.islink(path):
            continue
        if is_output_of(path, ROLE_KINDS[role], METRICS_HEADER):
            continue
        option = "--plot" if role == "curves" and args.plot else "--save"
        if ROLE_KINDS[role] == "png" and is_png(path):
            return (f"the {role} file would replace {path}, which is not a PNG drawn by nnfs (it lacks the "
                    f"mark every PNG nnfs draws has, as PNGs drawn by older versions do): give {option} another "
                    "path, or remove that file if it is an earlier run's")
        return (f"the {role} file would replace {path}, which is not {KIND_NAMES[ROLE_KINDS[role]]}; "
                f"give {option} another path (or remove that file)")
    return None


def resume_clash(args, files):
    """The line refusing a ``--resume`` whose run would replace what it must not, or None:

    - a latest state of a later epoch than the one resumed (resuming ``runs/m.npz``, the best
      epoch 1, over a ``runs/m_last.npz`` of epoch 3 would lose epochs 2 and 3 to the branch);
    - the checkpoint itself, when it holds weights only: a new run starts from them, and its
      first epoch is its best so far, which would replace the model it started from.
    """
    resumed = metadata_or_none(args.resume) if args.resume else None
    if resumed is None:
        return None  # the resume itself says what is wrong with its file
    if not records_run_state(resumed.get("optimizer"), resumed.get("extra")):
        if same_file(files["checkpoint"], args.resume):
            return (f"--resume {args.resume} holds weights only, so a new run starts from them, and its best "
                    "epoch would replace them: give --save another path")
        return None
    last = files["last"]
    if same_file(last, args.resume):
        return None
    latest = metadata_or_none(last)
    if not same_run(resumed, latest):  # none there, or another run's: the warning before epoch 1 names it
        return None
    epochs = [meta["extra"].get("epoch") for meta in (resumed, latest)]
    if not all(isinstance(epoch, int) for epoch in epochs) or epochs[1] <= epochs[0]:
        return None
    return (f"--resume {args.resume} continues from epoch {epochs[0]}, and its latest state {last} (epoch "
            f"{epochs[1]}) would be replaced: resume from {last}, or give --save another path for this run")


def is_output_of(path, kind, header=None):
    """Whether an output of ``kind`` may replace what is at ``path``: nothing, an empty file, or a
    file of that kind, as a previous run wrote it.

    The rule: ``"checkpoint"`` replaces only an nnfs checkpoint (:func:`is_checkpoint`),
    ``"png"`` only a PNG drawn by nnfs (:func:`~nnfs.app.plot.drawn_by_nnfs`), ``"csv"`` only a
    file whose first line is ``header``, the CSV's own. Notes, photos, archives and anything
    else are never lost to an output. What is not a regular file is left to
    :func:`~nnfs.files.check_writable`, which refuses it.
    """
    try:
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            return True
        if kind == "checkpoint":
            return is_checkpoint(path)
        if kind == "png":
            return drawn_by_nnfs(path)
        with open(path, "rb") as f:
            first = f.readline(len(header) + 5).rstrip(b"\r\n")
            # A spreadsheet saving "CSV UTF-8" starts the file with a byte-order mark.
            return first.removeprefix(b"\xef\xbb\xbf") == header.encode()
    except (OSError, ValueError):
        return False


def is_checkpoint(path):
    """Whether ``path`` is an nnfs checkpoint: a regular file whose record (``meta.npy`` in a
    zip archive) reads as :func:`nnfs.checkpoint.save` writes it, format name included (an
    empty file is none, and neither is a NumPy archive of the user's that has a ``meta`` array).

    The one meaning of "a checkpoint" here: what ``--save`` may replace, what makes the PNGs
    beside it an earlier run's, and what no other output may replace (a model trained by
    another run would be lost to a PNG). Only regular files are opened (a FIFO would block).
    """
    return metadata_or_none(path) is not None


def check_outputs(args):
    """Fail now, naming the path, where writing an output would fail after an epoch of training.

    Raises:
        OSError: for an output that cannot be written (a read-only folder, a file where a
            folder is needed, a folder or a FIFO at the path).
    """
    for path in output_files(args).values():
        check_writable(path)
