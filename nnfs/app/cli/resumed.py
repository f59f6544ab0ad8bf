"""What a resumed run takes over from its checkpoint, and what it refuses.

``--resume`` continues a run exactly, so the run must go on as it began: the same model,
the same preprocessing of the same images, the same split of the same files. The
checkpoint's record says what that was. This module reads it before the dataset loads
(:func:`resumed_record`, :func:`resumed_model`, :func:`keep_preprocessing`: the options
left out take the run's values, one given with another value is refused) and compares
it with the images once they are loaded (:func:`check_same_preprocessing`,
:func:`check_same_split`). Every refusal is a one-line :class:`~nnfs.checkpoint.CheckpointError`
that names the option to give; docs/cli.md lists what continues and what is refused.
"""

import os

from nnfs.app.cli import console
from nnfs.app.cli.outputs import same_split
from nnfs.app.models import MODEL_TITLES
from nnfs.app.resume import check_extra, records_run_state
from nnfs.checkpoint import CheckpointError, metadata
from nnfs.data import DatasetError, Preprocessing
from nnfs.files import name_key, portable_name
from nnfs.text import listed

__all__ = ["RESUMED_EXTRA", "RESUMED_OPTIONS", "PREPROCESSING_OPTIONS", "SPLIT_OPTIONS", "resumed_record",
           "resumed_model", "keep_preprocessing", "recorded_dataset", "trained_elsewhere", "check_same_preprocessing",
           "kept_normalisation", "check_same_split", "other_classes"]

#: What a resumed run reads from the checkpoint's ``extra``: the model, the split and the
#: options that made it, the preprocessing options it asked for, the run state (:func:`~nnfs.app.resume.check_extra` checks these only).
RESUMED_EXTRA = ("model", "split", "seed", "val_split", "limit", "requested", "skip_corrupt", "run")


def resumed_record(args):
    """The ``--resume`` checkpoint's metadata (None without ``--resume``), the fields of its
    ``extra`` that resuming reads checked (:data:`RESUMED_EXTRA`); only the JSON record is
    read, so the training program (:func:`~nnfs.app.cli.train.run`) can refuse what cannot
    continue before the dataset loads."""
    if not args.resume:
        return None
    meta = metadata(args.resume)
    meta["extra"] = check_extra(args.resume, meta.get("extra"), RESUMED_EXTRA)
    return meta


def resumed_model(args, meta):
    """The ``--model`` name recorded in the resumed checkpoint's metadata ``meta`` (None without
    one, or for an older checkpoint).

    Raises:
        CheckpointError: when ``--model`` differs from the model of the run being resumed.
    """
    if meta is None:
        return None
    saved = meta["extra"].get("model")
    if args.model and saved and args.model != saved:
        raise CheckpointError(
            f"{args.resume} holds a {MODEL_TITLES[saved]} (--model {saved}); it cannot "
            f"continue as --model {args.model}: resume with --model {saved} or leave --model out")
    return saved


#: The options a resumed run takes from its checkpoint instead (they win, as docs/cli.md says).
RESUMED_OPTIONS = ("optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "augment")

#: The options of the preprocessing, as the checkpoint records them (``Preprocessing`` fields).
PREPROCESSING_OPTIONS = {"image_size": "--image_size", "resize": "--resize", "channels": "--channels"}


def keep_preprocessing(args, meta):
    """Resume with the preprocessing of the run being resumed: the options left out ask for
    what that run asked for (into ``args``); one given with another value than the run had is
    refused. Returns the checkpoint's :class:`~nnfs.data.Preprocessing` (None without one),
    for :func:`check_same_preprocessing` once the dataset is loaded.

    Another image size, resize mode or channel count would train on other inputs than the
    run had, and the resumed run would no longer give the numbers of an uninterrupted one.
    Asking for what the run asked for (``extra["requested"]``: None where the data chose)
    rather than for what it got loads the dataset the same way, from the same cache entry.
    A checkpoint without that record (older versions) asks for what the run got.

    Raises:
        CheckpointError: naming the option, the checkpoint and its value.
    """
    if meta is None or meta.get("preprocessing") is None:
        return None  # weights of a net saved without preprocessing: nothing to keep
    try:
        saved = Preprocessing.from_config(meta["preprocessing"])
    except DatasetError as error:
        raise CheckpointError(f"{args.resume}: {error}") from None
    requested = meta["extra"].get("requested") or {}
    for field, option in PREPROCESSING_OPTIONS.items():
        value = getattr(saved, field)
        if field in args.given:
            if getattr(args, field) != value:
                raise CheckpointError(
                    f"{args.resume} was trained with {option} {_shown(value)}; it cannot continue with "
                    f"{option} {_shown(getattr(args, field))}: resume with {option} {_shown(value)} or "
                    f"leave {option} out")
        elif field in requested:
            asked = requested[field]
            asked = tuple(asked) if field == "image_size" and asked is not None else asked
            if asked is not None and asked != value:  # an explicit request is what the run got
                raise CheckpointError(f"{args.resume}: damaged metadata (extra.requested.{field} is "
                                      f"{_shown(asked)}, but the run was trained with {_shown(value)})")
            setattr(args, field, asked)
        else:
            setattr(args, field, value)
    return saved


def recorded_dataset(folder):
    """The dataset folder as a run's record names it (``extra["dataset"]``): absolute, in any locale."""
    return portable_name(os.path.abspath(folder))


def trained_elsewhere(args, extra):
    """The dataset folder the resumed run trained on, as its record ``extra`` names it, when it
    is another folder than ``--dataset``; None when it is the same one, or not recorded."""
    trained_on = extra.get("dataset") if isinstance(extra.get("dataset"), str) else None
    if trained_on is None or name_key(trained_on) == name_key(recorded_dataset(args.dataset)):
        return None
    return trained_on


def check_same_preprocessing(args, saved, data, meta=None):
    """Refuse to resume on images loaded otherwise than the run's (``saved``, from
    :func:`keep_preprocessing`): where the data chose the size or the channels, a changed
    folder can choose others, and another folder surely does (``meta``, the checkpoint's
    record, names the folder the run trained on: then the line says so first).

    Raises:
        CheckpointError: naming the option to give, or the run's own dataset.
    """
    if saved is None:
        return
    trained_on = trained_elsewhere(args, (meta or {}).get("extra") or {})
    for field, option in PREPROCESSING_OPTIONS.items():
        value, loaded = getattr(saved, field), getattr(data, field)
        if loaded != value and trained_on is not None:
            raise CheckpointError(
                f"{args.resume} was trained on {trained_on} with {option} {_shown(value)}, and the images of "
                f"{args.dataset} give {_shown(loaded)}: resume with --dataset {trained_on} (or, for another "
                f"copy of those images, {option} {_shown(value)})")
        if loaded != value:
            raise CheckpointError(
                f"{args.resume} was trained with {option} {_shown(value)}, and the images of "
                f"{args.dataset} now give {_shown(loaded)}: resume with {option} {_shown(value)}")


def kept_normalisation(meta, saved):
    """The preprocessing a resumed run (``meta``, with its run state) keeps: the checkpoint's
    (``saved``), whose mean and std its weights were trained with, not one refitted on the
    images; None for a new run (or weights only), which fits its own. The same files give the
    same statistics; images changed since (the same names, other pixels) would give others,
    and the resumed weights would silently be fed other inputs than they were trained on."""
    if saved is None or not records_run_state(meta.get("optimizer"), meta["extra"]):
        return None
    return saved


def _shown(value):
    """An option's value as the command line spells it: an image size as ``24x24``."""
    return "x".join(map(str, value)) if isinstance(value, tuple) else value


#: The options that decide the split of the images (with the files), as the checkpoint records them.
SPLIT_OPTIONS = ("seed", "val_split", "limit")


def check_same_split(args, extra, split):
    """Refuse to resume a run on other training and validation images than it had.

    Another ``--seed``, ``--val_split`` or ``--limit``, or files added or removed, split the
    images anew: the run would train on images it validated on, and its best accuracy so far
    would belong to another validation set. Checkpoints that record no split are let through.
    ``extra`` is the resumed checkpoint's, as :func:`resumed_record` checked it.

    Raises:
        CheckpointError: naming the checkpoint and what differs: the options the checkpoint
            records, else the files (and, where the run trained on another folder, that
            folder's ``--dataset``), else the options it does not record (older checkpoints
            lack ``val_split`` and ``limit``).
    """
    saved = extra.get("split")
    if saved is None or same_split(saved, split):
        return
    # Compared as name_key writes them: a run under LC_ALL=C recorded its names' bytes as
    # escapes, a run on a Mac its accents decomposed.
    saved, split = ({name: [name_key(path) for path in paths[name]] for name in paths} for paths in (saved, split))
    # The options each run records (older checkpoints lack val_split and limit).
    def shown(value):
        return "none" if value is None else value

    options = [f"--{name} {shown(extra[name])} there, {shown(getattr(args, name))} now"
               for name in SPLIT_OPTIONS if name in extra and extra[name] != getattr(args, name)]
    files = (set(saved["train"]) | set(saved["val"])), (set(split["train"]) | set(split["val"]))
    if options:
        what = "; ".join(options)
    elif files[0] != files[1]:
        added, removed = len(files[1] - files[0]), len(files[0] - files[1])
        what = ", ".join(part for part in (f"{console.count(added, 'file')} added" if added else "",
                                           f"{console.count(removed, 'file')} removed" if removed else "")
                         if part)
    else:  # the same files and the options it records: one it does not record may differ
        unrecorded = [f"--{name}" for name in SPLIT_OPTIONS if name not in extra]
        what = (f"another {' or '.join(unrecorded)}, which it does not record" if unrecorded
                else "the same files and options, split otherwise by the version that trained it")
    # Other files in another folder, with the options the run had: the folder is what to change.
    trained_on = trained_elsewhere(args, extra) if not options and files[0] != files[1] else None
    if trained_on is not None:
        raise CheckpointError(
            f"{args.resume} was trained on the images of {trained_on}, and {args.dataset} splits otherwise "
            f"({what}): resume with --dataset {trained_on}")
    raise CheckpointError(
        f"{args.resume} was trained on another split of the images ({what}): resume with the --dataset, "
        "--limit, --val_split and --seed of that run, with the same files")


def other_classes(checkpoint, trained, found):
    """The warning for a resumed model trained on other classes than the dataset's: what differs,
    a few names of each (a dataset may have thousands), compared as :func:`~nnfs.files.name_key`
    writes them (a Mac writes its accents decomposed)."""
    keys = {name_key(name) for name in found}
    gone = [name for name in trained if name_key(name) not in keys]
    keys = {name_key(name) for name in trained}
    new = [name for name in found if name_key(name) not in keys]
    parts = ([f"the model lacks {listed(new)}"] if new else []) + ([f"the dataset lacks {listed(gone)}"] if gone else [])
    what = "; ".join(parts) or "the same names in another order, so its labels mean other classes"
    return (f"{checkpoint} was trained on {console.count(len(trained), 'class', 'classes')}, this dataset has "
            f"{len(found)} ({what})")
