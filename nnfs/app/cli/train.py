"""The training program: a classifier on a folder of images (one subfolder per class), saved.

``examples/CNN_custom_dataset.py`` runs it. With no arguments it trains on the 5,000
MNIST digits shipped in ``data/digits``:

    python examples/CNN_custom_dataset.py
    python examples/CNN_custom_dataset.py --dataset path/to/images --epochs 20 --image_size 64
    NNFS_BACKEND=cupy python examples/CNN_custom_dataset.py        # on an NVIDIA GPU
    mpiexec -n 2 python examples/CNN_custom_dataset.py             # data parallel, 2 processes

The best model (by validation accuracy) is saved with its class names and
preprocessing; classify new images with ``examples/predict.py``. After training, the
best model's per-class results on the validation split are printed and its confusion
matrix is drawn; every file the run writes is listed by :func:`output_files`.
"""


if __name__ == "__main__":  # python -m nnfs.app.cli.train: armed before NumPy loads, as the commands are
    import sys

    from nnfs.app.cli.process import launch_train

    sys.exit(launch_train())

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import warnings

import nnfs
import nnfs.distributed as dist  # mpi4py is imported only when asked for
import nnfs.parallel
from nnfs.app.cli import console
from nnfs.app.cli.job import joined, said_by_the_parser, stop_job
from nnfs.app.cli.lock import OutputLock, OutputsInUse
from nnfs.app.cli.outputs import (
    aside_name, check_outputs, clashing_outputs, inside, keep_aside, metadata_or_none, output_files, put_back,
    same_file, same_run)
from nnfs.app.cli.options import OptionError, UsageError
from nnfs.app.cli.process import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Interrupted, stop_on_signals
from nnfs.app.cli.report import ReportNotWritten, best_model_file, report_best_model, report_finished_run
from nnfs.app.cli.train_options import apply_recipe, build_parser, keep_resumed_files, options_given, parse_args
from nnfs.app.cli.resumed import (
    RESUMED_OPTIONS, SPLIT_OPTIONS, check_same_preprocessing, check_same_split, keep_preprocessing,
    kept_normalisation, other_classes, recorded_dataset, resumed_model, resumed_record)
from nnfs.app.guard import FiniteGuard, NonFiniteLossError, first_non_finite
from nnfs.app.inference import MAX_INPUT_VALUES
from nnfs.app.loop import evaluate, train_epoch
from nnfs.app.metrics import write_history_csv
from nnfs.app.models import MODEL_TITLES, build_model, default_model, model_parameters
from nnfs.app.plot import plot_history
from nnfs.app.progress import ProgressBar
from nnfs.app.resume import RunState, has_run_state, records_run_state, resume
from nnfs.backend import ENV_DTYPE, allocator, default_backend, default_dtype
from nnfs.backend.archive import format_size
from nnfs.checkpoint import MAX_META_BYTES, CheckpointError, load_into, save
from nnfs.data import (
    DataLoader, DatasetError, ImageFolder, ImageSizeError, Preprocessing, UnusableImage, augmentation_for,
    available_memory, stratified_split, training_bytes)
from nnfs.data.memory import is_budget
from nnfs.files import name_key, portable_name
from nnfs.layers.batchnorm import BatchNorm
from nnfs.layers.composite import layer_tree
from nnfs.optim import make_optimizer, make_schedule
from nnfs.text import listed, shorten

# The program's entry points; its parser comes from train_options (as predict's, each program
# module offers build_parser).
__all__ = ["main", "run", "build_parser", "parse_args", "apply_recipe", "RunProgress", "Diverged"]

# Steps between read-backs of the finite-loss guard: one device synchronisation in that many
# steps, and a diverged run stops at most that many steps after its first NaN.
GUARD_EVERY = 25
#: How the lines name the files of a run that an earlier run's may be kept aside from.
ROLE_TITLES = {"checkpoint": "model", "last": "latest state"}
NUMERIC_WARNINGS = r"(overflow|invalid value|divide by zero|underflow) encountered"


# Both models need images of at least 4x4 (the reference CNN's two 2x2 poolings).
MIN_IMAGE_SIDE = 4


def planned_training(args, sizing, n_classes, saved_model=None):
    """``(parameter count, optimizer arrays per parameter)`` of the model and optimizer this
    run will build for images of ``sizing`` (a :class:`~nnfs.data.Sizing`, whose ``kind``
    picks the default model; ``saved_model``, the resumed run's, wins over it), known before
    the dataset loads or the model is built."""
    model = choose_model(args, sizing, saved_model)
    planned = apply_recipe(argparse.Namespace(**vars(args)), model)  # a copy: prepare_training applies it
    # Arrays the optimizer keeps per parameter: SGD's momentum buffer (none without momentum),
    # Adam's two moments.
    slots = {"sgd": 1 if planned.momentum else 0}.get(planned.optimizer, 2)
    return model_parameters(model, sizing.channels, sizing.image_size, n_classes), slots


def validation_batch_size(args, data, batch_size, saved_model=None, world=None):
    """Images per validation batch: as many as a prediction takes at once
    (:meth:`~nnfs.net.Net.inference_batch`: 256 small images, fewer large ones, whose
    activations grow with their pixels) or a training batch if that is more, but no more
    than the memory left beside the images, the model and a training step's activations
    holds (at least one image). The memory plan counts the training step only, so that a
    smaller --batch_size is always a way to make a run fit. Data-parallel ranks all take
    rank 0's figure (each batch is cut across them by the same sizes).
    """
    size = max(batch_size, nnfs.net.Net.inference_batch((data.channels, *data.image_size)))
    available = available_memory()
    if available is not None:
        parameters, slots = planned_training(args, data.sizing, len(data.class_names), saved_model)

        def planned(batch):
            return sum(training_bytes(parameters, data.image_size, data.channels, batch,
                                      default_dtype().itemsize, slots).values())

        # The machine's figure is read now, with the images already in memory; a limit set
        # with NNFS_MEMORY_LIMIT, or a rank's share of its machine, is the whole budget,
        # images included.
        images = data.images.nbytes if is_budget() else 0
        room = available - images - planned(batch_size)
        size = max(1, min(size, room // (planned(1) - planned(0))))
    if world is not None and world.size > 1:
        size = int(world.sum_host([size if world.is_root else 0])[0])
    return size


def per_rank(batch_size, ranks):
    """How a global batch is cut across the ranks, for the model line: ``16 per rank``, or
    ``7 or 8 per rank`` where the shares differ (``0 or 1``: some ranks get none), as
    :func:`~nnfs.distributed.shard_range` cuts it."""
    fewer, more = batch_size // ranks, -(-batch_size // ranks)
    return f"{more} per rank" if fewer == more else f"{fewer} or {more} per rank"


def load_dataset(args, say, warn_, progress, saved_model=None):
    """The dataset of ``--dataset`` as the data options ask, or a one-line DatasetError.

    The memory the images and the model will need is checked before anything is
    decoded (``reserve``; ``saved_model``: the model of the run being resumed), and the
    chosen size is reported when the user did not choose it.
    """
    def reserve(sizing, count, n_classes):
        parameters, optimizer_slots = planned_training(args, sizing, n_classes, saved_model)
        # A training step; validation takes what is left (validation_batch_size).
        return training_bytes(parameters, sizing.image_size, sizing.channels, min(args.batch_size, count),
                              default_dtype().itemsize, optimizer_slots)

    if "dataset" not in args.given and not os.path.isdir(args.dataset):
        # Installed from a wheel (pip install .), nnfs has no data/digits beside it.
        raise DatasetError(f"the default dataset is the digits in data/digits of a repository checkout, and "
                           f"this installation has none ({args.dataset} is missing); pass --dataset FOLDER")
    cache = None if args.cache.strip().lower() == "none" else args.cache
    if cache is not None and inside(cache, args.dataset):  # the next scan would take it for a class
        raise DatasetError(f"the --cache folder {cache} is inside the dataset folder {args.dataset}; "
                           "keep it elsewhere")
    start = time.perf_counter()
    try:
        data = ImageFolder(args.dataset, image_size=args.image_size, channels=args.channels,
                           resize=args.resize, on_error="skip" if args.skip_corrupt else "raise",
                           limit=args.limit, warn=warn_, cache=cache, workers=args.workers,
                           progress=progress, min_size=MIN_IMAGE_SIDE, max_values=MAX_INPUT_VALUES,
                           reserve=reserve)
    except ImageSizeError as error:
        raise DatasetError(error.with_option("--image_size")) from None
    except UnusableImage as error:  # one file: the run can go on without it, if the user says so
        raise DatasetError(f"{error} (--skip_corrupt leaves such files out, with a warning)") from None
    seconds = time.perf_counter() - start
    how = "read from the cache" if data.from_cache else "decoded"
    say(f"{len(data)} images {how} in {seconds:.1f} s")
    if data.sizing.chosen:
        # Images of other sizes are resized to it: how (--resize) matters for them as for photos.
        options = "--image_size" + (" and --resize" if data.kind == "photos" or data.sizing.varied else "")
        say(f"image size {data.sizing.describe()}; change it with {options}")
    return data


def earlier_model(args, outputs, state):
    """The files at ``--save`` that belong to another run, which this run will replace (as it
    should: the user named them): ``(warning, {role: path})``, or ``(None, {})``.

    The line comes before the first epoch, with what that model scored, and where it will be
    kept: just before this run writes over one of them, it is kept aside under a free name
    beside it (:func:`~nnfs.app.cli.outputs.keep_aside`), so that no run loses another's
    model or latest state. ``state`` says when the model is replaced (a resumed run's epochs
    must beat the best it resumes with); the latest state beside it goes at the first epoch.
    """
    resumed = metadata_or_none(args.resume) if args.resume else None
    path, last = outputs["checkpoint"], outputs["last"]

    def theirs(file):  # an nnfs checkpoint of another run than the one resumed
        if args.resume and same_file(file, args.resume):
            return None
        meta = metadata_or_none(file)
        return None if meta is None or (resumed is not None and same_run(resumed, meta)) else meta

    model, latest = theirs(path), theirs(last)
    kept = {role: outputs[role] for role, meta in (("checkpoint", model), ("last", latest)) if meta is not None}
    if model is None and latest is None:
        return None, kept
    if model is None:
        return (f"{last} holds the latest state of an earlier run; this run's first epoch replaces it "
                f"(kept as {aside_name(last)}) and the files beside it (give --save another path to keep "
                "them)"), kept
    extra = model.get("extra")
    scored = ""
    if isinstance(extra, dict) and isinstance(extra.get("val_accuracy"), (int, float)) \
            and isinstance(extra.get("epoch"), int):
        scored = f" (val accuracy {100 * extra['val_accuracy']:.2f}% at epoch {extra['epoch']})"
    when = ("this run's best epoch replaces it" if state.best_epoch == 0 else
            f"an epoch of this run that beats its {100 * state.best_val_accuracy:.2f}% replaces it")
    also = (f", and its first epoch {last}, that run's latest state (kept as {aside_name(last)})"
            if latest is not None else "")
    return f"{path} holds the model of an earlier run{scored}; {when} (kept as {aside_name(path)}){also}", kept


class RunProgress:
    """What a run has done so far, for the lines that report how it ended.

    Attributes:
        args: the parsed options (None until parsed).
        epochs: the planned total; epoch: the epoch in progress (None before training).
        written: ``{role: epoch}`` of every output written by this run.
    """

    def __init__(self):
        self.args, self.epochs, self.epoch, self.written = None, None, None, {}
        self.writer = True  # False on the ranks of a data-parallel run other than rank 0

    def kept(self):
        """Which files this run wrote, for a run that stops now."""
        if not self.writer:  # only rank 0 knows: it writes them
            return "rank 0 writes this run's files; those of the epochs it finished are kept"
        if not self.written:
            return "this run wrote no file"
        files = output_files(self.args)
        held = ", ".join(f"{files[role]} (epoch {epoch})" for role, epoch in self.written.items())
        return f"this run wrote {held}"

    def interrupted(self, stop):
        where = "before training started" if self.epoch is None else f"in epoch {self.epoch}/{self.epochs}"
        return f"interrupted ({stop.name}) {where}; {self.kept()}"


class Diverged(RuntimeError):
    """Training stopped: the loss or the validation loss became NaN or infinite."""

    def __init__(self, progress, where, value, optimizer):
        super().__init__(f"training diverged in epoch {progress.epoch}: {where} became {value}; "
                         f"nothing of this epoch was saved ({progress.kept()}); "
                         f"{divergence_advice(progress.args, optimizer)}")


def divergence_advice(args, optimizer):
    """What to lower after a divergence: the learning rate, and the weight decay where there is one.

    A weight decay of 5e4 (for 5e-4) scales each weight by about ``1 - lr * weight_decay`` per
    step, which blows them up whatever the rate: naming only ``--lr`` sent the user the wrong way.
    """
    lr, decay = optimizer.lr, getattr(optimizer, "weight_decay", 0)
    if args.resume:  # the saved optimizer, learning rate included, wins over --lr
        if decay:
            return (f"the learning rate was {lr:g} and the weight decay {decay:g}, kept from {args.resume}: "
                    "start a new run with a lower --lr or --weight_decay")
        return f"the learning rate was {lr:g}, kept from {args.resume}: start a new run with a lower --lr"
    if decay:
        return f"try a lower --lr (it was {lr:g}) or --weight_decay (it was {decay:g})"
    return f"try a lower --lr (it was {lr:g})"


def quiet(*args, **kwargs):
    """What ranks other than 0 do instead of printing."""


def choose_model(args, data, saved=None):
    """The ``--model`` name of this run: the flag, else the resumed checkpoint's (``saved``, from
    :func:`~nnfs.app.cli.resumed.resumed_model`), else the default for the kind of data
    (:func:`~nnfs.app.models.default_model`)."""
    # Folders without a kind (small images, or an ImageFolder that does not tell) keep the reference CNN.
    return args.model or saved or default_model(getattr(data, "kind", "small"))


def split_files(data, train_idx, val_idx):
    """Which files trained the model and which were held out, relative to the dataset root
    (with ``/``, UTF-8 whatever the locale), for the checkpoint: ``predict --split val`` scores
    exactly those."""
    def relative(indices):  # recorded as every locale reads them (portable_name)
        return [portable_name(os.path.relpath(data.paths[i], data.root).replace(os.sep, "/")) for i in indices]

    return {"train": relative(train_idx), "val": relative(val_idx)}


def check_split_fits(args, split):
    """Refuse, before epoch 1, a dataset whose list of files would not fit in a checkpoint's
    record (:data:`~nnfs.checkpoint.MAX_META_BYTES`): every save would be refused, the first
    one after an epoch of training. The split is measured as the checkpoint writes it (JSON,
    non-ASCII escaped); the rest of the record (configs, history) keeps a MiB.

    Raises:
        DatasetError: naming the dataset, the size and the limit.
    """
    size = len(json.dumps(split))
    if size > MAX_META_BYTES - (1 << 20):
        images = len(split["train"]) + len(split["val"])
        raise DatasetError(
            f"--dataset {args.dataset}: the names of its {images:,} images take {format_size(size)} in a "
            f"checkpoint's record, which may hold {format_size(MAX_META_BYTES)} in all; train on fewer "
            f"images (--limit) or on files with shorter names")


def check_same_data(world, args, data, split):
    """Refuse a data-parallel run whose ranks read different images (another folder or other
    files on one machine): each would train on its own data, silently where the counts agree,
    or fail inside MPI where they do not. One small collective, before training.

    Raises:
        DatasetError: on every rank, naming the dataset folder.
    """
    if dist.differ_between_ranks(world, [[split, data.class_names, list(data.image_size), data.channels]])[0]:
        raise DatasetError(f"the {world.size} ranks did not read the same images from {args.dataset} (another "
                           "folder, other files or other options on one machine): give every rank the same "
                           "dataset and options")


class RanksDiffer(RuntimeError):
    """The ranks of a data-parallel run were given different options or environments (an
    ``mpiexec -n 1 ... : -n 1 ...`` line, another environment on one machine)."""


def same_training_fields(args, training):
    """What every rank of a data-parallel run must agree on beyond its images, by the option
    (or variable) that sets it: ``{name: JSON-able value}``, the values those of the run that
    is about to train (a resumed run's optimizer, schedule, augmentation and state come from
    its checkpoint, whatever its options say)."""
    optimizer, state, loader = training.optimizer, training.state, training.train.state_dict()
    options = {"lr": "--lr", "momentum": "--momentum", "weight_decay": "--weight_decay"}
    # The same names in the same order on every rank, whatever it was given: one collective of
    # one length.
    fields = {"--epochs": args.epochs, "--batch_size": training.batch_size, "--model": training.model,
              "--optimizer": [type(optimizer).__name__], "--lr": None, "--momentum": None, "--weight_decay": None}
    for key, value in optimizer.get_config().items():
        if key in options:
            fields[options[key]] = value
        else:  # its other settings (Adam's betas) come with the optimizer
            fields["--optimizer"].append([key, value])
    fields.update({"--schedule": state.schedule, "--warmup_epochs": state.warmup_epochs,
                   "--seed": loader["seed"], "--augment": loader["augment"],
                   ENV_DTYPE: training.net.dtype.name})
    # Where the run stands: a rank resuming another checkpoint, or none, would train from elsewhere.
    fields["--resume"] = [{key: value for key, value in state.to_dict().items()
                           if key not in ("epochs", "schedule", "warmup_epochs", "loader")}, loader["passes"]]
    return fields


def check_same_training(world, args, training):
    """Refuse a data-parallel run whose ranks would train differently: another ``--epochs``
    leaves one rank waiting for the others forever, another ``--batch_size`` or ``NNFS_DTYPE``
    fails inside MPI, another ``--lr`` or optimizer moves the replicas apart without a word.
    One small collective, before the first one that depends on them (the broadcast of the
    parameters), on every rank.

    Raises:
        RanksDiffer: on every rank, naming what differs.
    """
    fields = same_training_fields(args, training)
    differ = [name for name, differs in zip(fields, dist.differ_between_ranks(world, list(fields.values())))
              if differs]
    if differ:
        raise RanksDiffer(f"the {world.size} ranks were not given the same {', '.join(differ)} (another option "
                          "or environment on one rank or machine): give every rank the same options and environment")


def run(args, world=None, progress=None):
    """Train and save; with ``world`` (an MPI communicator) as one of its data-parallel ranks.

    ``args`` is a Namespace of the options (from :func:`parse_args`, or from
    ``build_parser().parse_args()``); the recipe's defaults are filled into it. ``progress``
    (a :class:`RunProgress`) is kept up to date with the epoch and the files written.
    """
    progress = progress if progress is not None else RunProgress()
    progress.args = args
    args.given = options_given(args)  # any parsed Namespace will do, not only parse_args'
    keep_resumed_files(args)
    outputs = output_files(args)
    clash = clashing_outputs(args)  # main() has asked already; run() is also called on its own
    if clash:
        raise OptionError(clash)
    root = world is None or world.is_root
    if root:
        check_outputs(args)  # likewise
    # The rank that writes holds the files of this --save against a second run, from before the
    # first write to the end (nnfs.app.cli.lock).
    with OutputLock(args.save) if root else contextlib.nullcontext() as lock:
        if lock is not None and lock.unsupported:
            console.warn(f"cannot lock {lock.path} ({lock.unsupported}): a second run writing --save "
                         f"{args.save} at the same time would not be refused")
        _train(args, world, progress, outputs, lock)


def _train(args, world, progress, outputs, lock):
    """:func:`run` once its outputs are checked and held (``lock``: the :class:`OutputLock` on
    the rank that writes, None on the others): load, build, train, save, report."""
    root = lock is not None
    say, warn_ = (console.say, console.warn) if root else (quiet, quiet)
    # What cannot continue the run (another --model, other preprocessing, a damaged record) is
    # refused before the dataset loads.
    resumed_meta = resumed_settings(args, say)
    saved_model = resumed_model(args, resumed_meta)
    saved_preprocessing = keep_preprocessing(args, resumed_meta)
    data = load_dataset(args, say, warn_, progress=root, saved_model=saved_model)
    check_same_preprocessing(args, saved_preprocessing, data, resumed_meta)
    training = prepare_training(args, world, data, resumed_meta, saved_model, saved_preprocessing, warn_)
    if args.resume:
        continue_from_checkpoint(args, training, resumed_meta, say, warn_)
    if world is not None and world.size > 1:
        check_same_training(world, args, training)
    if args.resume and training.state.epoch >= args.epochs:
        if root:
            lock.keep()
        report_finished_run(args, training.net, training.val, data.class_names, outputs, training.state,
                            training.model, training.split, say, root)
        return
    earlier, replaced = earlier_model(args, outputs, training.state)
    if earlier:
        warn_(earlier)
    # Every rank builds the net from the same seed; DataParallel copies rank 0's anyway.
    ddp = dist.DataParallel(training.net, world) if world is not None else None
    announce(args, world, training, say)
    train_epochs(args, training, ddp, progress, outputs, lock, replaced, say)

    state = training.state
    best_file = best_model_file(args, outputs, state, training.model, training.split, progress.written) if root else None
    if best_file is not None:
        lock.keep()
        report_best_model(args, training.net, training.val, data.class_names, outputs, best_file, say, outputs["last"])
        progress.written["confusion"] = progress.epoch
    say(f"best val accuracy {100 * state.best_val_accuracy:.2f}% (epoch {state.best_epoch}); "
        + _saved(progress, outputs))


def resumed_settings(args, say):
    """The ``--resume`` checkpoint's record (:func:`~nnfs.app.cli.resumed.resumed_record`; None
    for a new run), with the flag it records taken over: a run started with ``--skip_corrupt``
    left its unreadable images out, its split has none of them, so the resumed run must leave
    them out too (without the flag it stopped at the first one). A run's batch size continues
    too where ``--batch_size`` is left out (the default of 32 gave a run of 16 other steps
    than an uninterrupted one); given, it applies from the next epoch on. So does its
    planned ``--epochs`` (the recipe's default stopped a run of 50 epochs at 10), and the
    options that split its images (``--seed``, ``--val_split``, ``--limit``: any other split
    is refused). A ``batch_size`` in the record of another form than this program writes is a
    field of the user's own (:func:`nnfs.checkpoint.save` takes anything as ``extra``), and
    leaves the default."""
    meta = resumed_record(args)
    if meta is not None and meta["extra"].get("skip_corrupt") and not args.skip_corrupt:
        args.skip_corrupt = True
        say(f"--skip_corrupt, as the resumed run {args.resume} had")
    if meta is None:
        return None
    extra = meta["extra"]
    # The split options it records (checked by resumed_record): left out, the run's, since any
    # other split is refused anyway (a run of --limit 100 resumed without it was).
    for name in SPLIT_OPTIONS:
        if name not in args.given and extra.get(name) is not None:
            setattr(args, name, extra[name])
    if not records_run_state(meta.get("optimizer"), extra):  # weights only: a new run
        return meta
    recorded = extra.get("batch_size")
    if "batch_size" not in args.given and type(recorded) is int and recorded > 0:
        args.batch_size = recorded
    if "epochs" not in args.given and extra.get("run") is not None:
        args.epochs = extra["run"]["epochs"]  # the run's plan, not the recipe's
    return meta


@dataclasses.dataclass
class Training:
    """What a run trains, with what, and on which images: made by :func:`prepare_training`,
    taken over from the checkpoint by :func:`continue_from_checkpoint`, trained by
    :func:`train_epochs`.

    Attributes:
        data: the :class:`~nnfs.data.ImageFolder`.
        model: the ``--model`` name; net, optimizer, scheduler (None for a constant rate).
        state: the :class:`~nnfs.app.resume.RunState` (epoch, best so far, history).
        train, val: the two :class:`~nnfs.data.DataLoader`; batch_size: the training batch.
        preprocessing: the normalisation the net is fed by (the checkpoint's, for a resumed
            run); fitted: the one fitted on these training images.
        augment: the augmentation of the training images, or None.
        split: the files of each split, as the checkpoint records them (:func:`split_files`).
        class_names: as the split's names, readable in any locale.
        requested: what this run asked for (None where the data chose), for a resumed run to
            ask the same.
        ranks: the data-parallel ranks it trains on (1: one process).
    """

    data: object
    model: str
    net: object
    optimizer: object
    scheduler: object
    state: RunState
    train: DataLoader
    val: DataLoader
    batch_size: int
    preprocessing: Preprocessing
    fitted: Preprocessing
    augment: object
    split: dict
    class_names: list
    requested: dict
    ranks: int = 1


def prepare_training(args, world, data, resumed_meta, saved_model, saved_preprocessing, warn_):
    """The split, the loaders, the net, its optimizer and schedule of a run on ``data``, as the
    options ask (the recipe of the model fills what they leave out): a :class:`Training`.

    Raises:
        DatasetError: for a split whose names would not fit a checkpoint, or ranks that read
            different images.
        OptionError: for a given option that does not fit the recipe (:func:`apply_recipe`).
    """
    train_idx, val_idx = stratified_split(data.labels, args.val_split, seed=args.seed)
    batch_size = args.batch_size
    if batch_size > len(train_idx):
        warn_(f"--batch_size {batch_size} is larger than the {console.count(len(train_idx), 'training image')}; "
              f"using {len(train_idx)}")
        batch_size = len(train_idx)
    fitted = Preprocessing.fit(data.images, train_idx, data.image_size, data.channels, data.resize)
    preprocessing = kept_normalisation(resumed_meta, saved_preprocessing) or fitted
    augment = augmentation_for(args.augment, data.kind)
    train = DataLoader(data.images, data.labels, train_idx, batch_size, preprocessing, shuffle=True, seed=args.seed,
                       augment=augment)
    val = DataLoader(data.images, data.labels, val_idx,
                     validation_batch_size(args, data, batch_size, saved_model, world), preprocessing)
    model = choose_model(args, data, saved_model)
    apply_recipe(args, model)
    nnfs.seed(args.seed)
    net = build_model(model, data.channels, data.image_size, len(data.class_names))
    extra_args = {"momentum": args.momentum} if args.optimizer == "sgd" else {}
    optimizer = make_optimizer(args.optimizer, net, args.lr, weight_decay=args.weight_decay, **extra_args)
    scheduler = make_schedule(args.schedule, optimizer, args.epochs, args.warmup_epochs)
    split = split_files(data, train_idx, val_idx)
    check_split_fits(args, split)
    if world is not None and world.size > 1:
        check_same_data(world, args, data, split)
    return Training(
        data=data, model=model, net=net, optimizer=optimizer, scheduler=scheduler,
        state=RunState(epochs=args.epochs, schedule=args.schedule, warmup_epochs=args.warmup_epochs),
        train=train, val=val, batch_size=batch_size, preprocessing=preprocessing, fitted=fitted,
        augment=augment, split=split,
        class_names=[portable_name(name) for name in data.class_names],  # as the split's names: any locale
        requested={"image_size": args.image_size and list(args.image_size), "channels": args.channels},
        ranks=1 if world is None else world.size)


def continue_from_checkpoint(args, training, resumed_meta, say, warn_):
    """Load the ``--resume`` checkpoint into ``training``: its weights, and, where it holds a
    run's state, its optimizer, schedule, shuffling, augmentation and history, which win over
    the options (a warning names those given in vain).

    Raises:
        CheckpointError: for another split of the images, or damaged state (refused, never
            half used).
    """
    net, data = training.net, training.data
    trained_on = resumed_meta.get("class_names")
    if isinstance(trained_on, list) and len(trained_on) != len(training.class_names):
        # Said before loading, which would call it "a different architecture" (the last layer's size).
        raise CheckpointError(f"{other_classes(args.resume, trained_on, training.class_names)}: its last layer has "
                              "one output per class, so it cannot continue on another number of classes; start "
                              "a new run, or resume on the images it was trained on")
    resumed = load_into(args.resume, net)
    net.train()
    check_same_split(args, resumed_meta["extra"], training.split)  # refused: no warning about the classes first
    if resumed.class_names and [name_key(name) for name in resumed.class_names] != \
            [name_key(name) for name in training.class_names]:
        warn_(other_classes(args.resume, resumed.class_names, data.class_names))
    fitted, kept = training.fitted, training.preprocessing
    if kept is not fitted and (fitted.mean, fitted.std) != (kept.mean, kept.std):
        warn_(f"the training images of {args.dataset} are not those {args.resume} was trained on (their "
              "mean and std differ: files changed since); the run goes on normalising them as it did")
    if not has_run_state(resumed):
        warn_(f"{args.resume} holds weights only, no optimizer state or run state: "
              "training starts at epoch 1 from those weights")
        return
    # Continue exactly: the saved optimizer, schedule, shuffling and history win over flags.
    training.optimizer, training.scheduler, training.state = resume(resumed, net, args.epochs)
    if training.state.loader is not None:
        training.train.load_state_dict(training.state.loader)  # its augmentation too: part of the exact resume
        training.augment = training.train.augment
    other_ranks = resumed_meta["extra"].get("ranks")
    if type(other_ranks) is int and other_ranks > 0 and other_ranks != training.ranks and \
            any(isinstance(layer, BatchNorm) for _, layer in layer_tree(net.layers)):
        # The global batch is the same; its cut into the ranks' shares is not.
        trained_on = console.count(other_ranks, "rank")
        warn_(f"{args.resume} was trained on {trained_on} and resumes on {training.ranks}: each rank's BatchNorm "
              "normalises its own share of the global batch, so the numbers differ from an uninterrupted run's "
              f"(resume on {trained_on} to continue exactly)")
    saved_dtype = resumed_meta.get("dtype")
    if isinstance(saved_dtype, str) and saved_dtype != net.dtype.name:
        # The weights are cast on loading (load_into): the run goes on, but rounded otherwise.
        warn_(f"{args.resume} was trained in {saved_dtype} and resumes in {net.dtype.name} ({ENV_DTYPE}): the "
              f"numbers differ from an uninterrupted run's (resume with {ENV_DTYPE}={saved_dtype} to continue "
              "exactly)")
    overridden = [f"--{name} {getattr(args, name)}" for name in RESUMED_OPTIONS if name in args.given]
    if overridden:
        used = ", ".join(training.augment.operations) if training.augment is not None else "none"
        schedule = f", {described(training.scheduler)}" if training.scheduler else ""
        warn_(f"{' '.join(overridden)} not used: {args.resume} continues with its saved optimizer, "
              f"schedule and augmentation ({described(training.optimizer)}{schedule}; augmentation {used}); "
              "start a new run to change them")
    say(f"resuming {args.resume} after epoch {training.state.epoch} "
        f"(best val accuracy so far {100 * training.state.best_val_accuracy:.2f}%)")


def announce(args, world, training, say):
    """The lines before the first epoch: the augmentation, the dataset and the model."""
    data, net, augment = training.data, training.net, training.augment
    if augment is not None:  # after a resume: what the saved run does, which is what runs
        how = ("as the resumed run did" if args.resume and training.state.loader is not None
               else "the default for " + data.kind if args.augment == "auto" else "as asked")
        say(f"augmentation of the training images: {', '.join(augment.operations)} ({how}; "
            f"--augment none turns it off)")
    height, width = data.image_size
    names = listed(data.class_names, 6, quote=lambda name: shorten(name, 24))
    say(f"dataset {os.path.normpath(args.dataset)}: {len(data)} images, {len(data.class_names)} classes "
        f"({names}), {data.channels} channel(s), {height}x{width}; "
        f"{len(training.train.indices)} for training, {len(training.val.indices)} for validation")
    n_params = sum(p.size for p in net.parameters())
    ranks = "" if world is None else (
        f" ({per_rank(training.batch_size, world.size)} on {world.size} rank{'s' * (world.size > 1)}, "
        f"{world.transport} transport)")
    schedule = f", {described(training.scheduler)}" if training.scheduler is not None else ""
    threads = "" if net.backend.is_device else f" on {nnfs.parallel.get_num_threads()} CPU thread(s)"
    say(f"model: {MODEL_TITLES[training.model]} (--model {training.model}), {n_params:,} parameters, "
        f"backend {net.backend.name}{threads}, {net.dtype.name}; "
        f"{described(training.optimizer)}{schedule}, batch {training.batch_size}{ranks}")


def train_epochs(args, training, ddp, progress, outputs, lock, replaced, say):
    """Train from the epoch after ``training.state``'s to ``--epochs``, saving after each
    (:func:`save_epoch`, on the rank that writes); ``ddp``: the
    :class:`~nnfs.distributed.DataParallel` wrapper of a data-parallel run, else None.

    Raises:
        Diverged: when the loss, the validation loss, a running statistic or an optimizer
            moment is NaN or infinite; nothing of that epoch is saved.
    """
    net, optimizer, state = training.net, training.optimizer, training.state
    root = lock is not None
    progress.epochs = args.epochs
    for epoch in range(state.epoch + 1, args.epochs + 1):
        progress.epoch = epoch
        bar = ProgressBar(len(training.train), label=f"epoch {epoch}/{args.epochs}", enabled=None if root else False)
        # Data parallel: every global batch split across the ranks, metrics summed over them.
        try:
            fitted = train_epoch(ddp or net, training.train, optimizer=optimizer, progress=bar,
                                 guard=FiniteGuard(every=GUARD_EVERY))
            validated = evaluate(ddp or net, training.val, progress=ProgressBar(
                len(training.val), label="validation", enabled=None if root else False))
        except NonFiniteLossError as error:
            raise Diverged(progress, f"the loss of step {error.step}", error.value, optimizer) from None
        if not math.isfinite(validated.loss):  # the last updates of the epoch made the weights NaN
            raise Diverged(progress, "the validation loss", validated.loss, optimizer)
        # A finite loss can hide an overflowed running variance, or an overflowed Adam moment.
        broken = first_non_finite(net, optimizer)
        if broken is not None:
            raise Diverged(progress, *broken, optimizer)
        if training.scheduler is not None:
            training.scheduler.step()
        improved = state.record(fitted, validated)  # the same on every rank: metrics are reduced over all
        state.loader = training.train.state_dict()
        if root:  # the latest state always, the best model when it improved
            # Still this run's --save: a folder deleted during the run took its lock file along.
            lock.keep()
            save_epoch(args, training, epoch, validated.accuracy, improved, progress, outputs, replaced, say)
        say(f"epoch {epoch:>2}/{args.epochs}  train loss {fitted.loss:.4f} acc {100 * fitted.accuracy:.2f}%  "
            f"val loss {validated.loss:.4f} acc {100 * validated.accuracy:.2f}%  "
            f"{fitted.seconds + validated.seconds:.1f} s  {fitted.images_per_second:.0f} img/s"
            f"{'  saved' if improved else ''}")


def save_epoch(args, training, epoch, val_accuracy, improved, progress, outputs, replaced, say):
    """Write an epoch's files: the best model when it ``improved``, the curves, the metrics CSV,
    and the latest state last. ``replaced``: ``{role: path}`` of an earlier run's files
    (:func:`earlier_model`), each kept aside just before this run's first write over it."""
    state = training.state
    details = {"epoch": epoch, "val_accuracy": val_accuracy, "run": state.to_dict(),
               "dataset": recorded_dataset(args.dataset), "batch_size": training.batch_size,
               "seed": args.seed, "val_split": args.val_split, "limit": args.limit, "model": training.model,
               "split": training.split, "requested": training.requested, "skip_corrupt": args.skip_corrupt,
               "ranks": training.ranks}

    def save_as(role):
        kept = keep_aside(outputs[role]) if role in replaced else None
        try:
            save(outputs[role], training.net, class_names=training.class_names, preprocessing=training.preprocessing,
                 optimizer=training.optimizer, scheduler=training.scheduler, extra=details)
        except BaseException:  # a full disk, Ctrl-C: the earlier file is where it was
            if kept is not None:
                put_back(kept, outputs[role])
            raise
        progress.written[role] = epoch
        if replaced.pop(role, None) is not None and kept is not None:
            say(f"the earlier run's {ROLE_TITLES[role]} {outputs[role]} is kept as {kept}")

    if improved:
        save_as("checkpoint")
    dataset_name = os.path.basename(os.path.normpath(args.dataset))
    plot_history(state.history, outputs["curves"], title=f"{MODEL_TITLES[training.model]} on {dataset_name}")
    progress.written["curves"] = epoch
    write_history_csv(state.history, outputs["metrics"])
    progress.written["metrics"] = epoch
    # The latest state goes last: it is what --resume continues after, so a run stopped
    # before it (killed, a full disk) has that epoch done again, and every file of it
    # rewritten; a run stopped after it has written them all.
    save_as("last")


def described(part):
    """An optimizer or schedule as the console lines show it: ``Adam(lr=0.00025, betas=(0.9,
    0.999), ...)``, numbers in 4 significant digits (the exact repr of a rate a schedule has
    moved, 0.0002500000000000001, says nothing more); its ``repr`` stays exact."""
    if part is None:
        return ""
    items = part.get_config()
    return f"{type(part).__name__}({', '.join(f'{key}={_brief(value)}' for key, value in items.items())})"


def _brief(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        inside = ", ".join(_brief(item) for item in value)
        return f"({inside})" if isinstance(value, tuple) else f"[{inside}]"
    return repr(value)


def _saved(progress, outputs):
    """The end of the final line: only the files this run wrote."""
    if "checkpoint" in progress.written:
        parts = [f"model saved to {outputs['checkpoint']}"]
    else:
        parts = [f"no epoch of this run beat it, so {outputs['checkpoint']} was not written"]
    if "last" in progress.written:
        parts.append(f"latest state to {outputs['last']}")
    text = ", ".join(parts)
    reports = [f"{what} in {outputs[role]}" for role, what in
               (("curves", "curves"), ("metrics", "metrics"), ("confusion", "confusion matrix"))
               if role in progress.written]
    return text + (f"; {', '.join(reports)}" if reports else "")


def main(argv=None):
    """The training program; returns its exit status (0, 1 for an error, 2 for a bad option,
    130 / 143 / 129 when stopped by SIGINT / SIGTERM / SIGHUP). One line on stderr for every failure."""
    with stop_on_signals():
        console.safe_streams()
        progress = RunProgress()
        world = None
        try:
            args = parse_args(argv)
            progress.args = args
            clash = clashing_outputs(args)
            if clash:
                return stop_job(world, EXIT_USAGE, clash)
            try:
                default_backend()  # a bad NNFS_BACKEND, or cupy without a GPU, is reported in one line
                default_dtype()  # likewise a bad NNFS_DTYPE
                available_memory()  # likewise a bad NNFS_MEMORY_LIMIT, read once the dataset is sized
                allocator.enabled_by_environment()  # likewise a bad NNFS_KEEP_FREED_MEMORY
                # likewise a bad NNFS_NUM_THREADS, unless --threads overrides it
                threads = args.threads or nnfs.parallel.get_num_threads()
                surplus = surplus_threads(args, threads)
                if surplus:
                    console.warn(surplus)
                if args.distributed or dist.launched_with_mpiexec():
                    world = dist.init()  # before the net is built: it picks this rank's GPU
                    progress.writer = world.is_root
            except (RuntimeError, ValueError) as error:
                return stop_job(world, EXIT_ERROR, str(error))
            if world is None or world.is_root:  # the rank that writes; before the dataset loads
                check_outputs(args)
            with warnings.catch_warnings():
                # A diverging run makes NumPy warn (overflow in matmul, ...) in two raw lines per
                # warning; the guard reports it in one line of its own instead.
                warnings.filterwarnings("ignore", NUMERIC_WARNINGS, RuntimeWarning)
                with nnfs.parallel.using_threads(threads):
                    run(args, world, progress)
            return EXIT_OK
        except UsageError as usage:  # a bad option, said by the parser (rank 0 under mpiexec)
            world = joined(world)
            if world is None:
                raise  # argparse's way out, as for any program
            return stop_job(world, EXIT_USAGE, usage.message, line=said_by_the_parser)
        except Interrupted as stop:
            # A signal sent to one rank alone (kill PID) leaves the others waiting in the next
            # collective forever: stop_job ends them; through mpiexec every rank gets it.
            return stop_job(world, stop.exit_status, progress.interrupted(stop), line=console.notice)
        except OptionError as error:  # a clash with a default the data or the checkpoint settled
            return stop_job(world, EXIT_USAGE, f"{error} (see --help)")
        except BrokenPipeError:  # stdout closed early (a pipe into head): stop quietly
            console.silence_stdout()
            return EXIT_ERROR
        except (DatasetError, CheckpointError, Diverged, RanksDiffer, ReportNotWritten, OutputsInUse, OSError,
                MemoryError) as error:
            if isinstance(error, MemoryError):
                message = "out of memory; try a smaller --batch_size or --image_size"
            elif isinstance(error, OSError):  # what reaches here comes from writing the outputs
                message = f"cannot write {console.os_error_message(error)}"
            else:
                message = str(error)
            return stop_job(world, EXIT_ERROR, message)


def surplus_threads(args, threads):
    """The warning for more CPU threads than the cores this process may use, or None: the run
    goes on with them (the user may know better), but the extra threads only wait for a core.
    On a GPU the threads are not used, and nothing is said."""
    cores = nnfs.parallel.usable_cores()
    if threads <= cores or default_backend().is_device:
        return None
    source = "--threads" if args.threads else nnfs.parallel.ENVIRONMENT_VARIABLE
    ranks = nnfs.parallel.local_ranks()
    share = (f" (its share of the {nnfs.parallel.available_cores()} cores of this machine among its {ranks} MPI ranks)"
             if ranks > 1 else "")
    return (f"{source} {threads} is more than the {console.count(cores, 'CPU core')} this process may use{share}; "
            f"training on {threads} threads anyway, which wait for each other (--threads {cores} uses every core)")
