"""Continue a training run from a checkpoint as if it had never stopped.

A checkpoint already holds the weights, the optimizer state and the schedule
(:mod:`nnfs.checkpoint`). :class:`RunState` is the rest: which epoch is done,
the planned length and schedule of the run, the history, the best accuracy so
far and where the loader's shuffling stands. It travels in the checkpoint's
``extra["run"]``; :func:`resume` turns a loaded checkpoint back into a
ready-to-step optimizer, schedule and run state.

The rest of ``extra`` records where the run came from (the model, the dataset, the
split of its files, the split's options); :func:`check_extra` checks the fields each
program reads, in one place for both programs: a file is read from outside, so none of it is
trusted, and the fields a program does not read may be the user's own.
"""

import dataclasses
import ntpath

from nnfs.app.models import MODELS
from nnfs.checkpoint import CheckpointError
from nnfs.checks import integer, number
from nnfs.data import Augmentation, DatasetError
from nnfs.optim import SCHEDULES, make_optimizer, make_schedule, schedule_from_state
from nnfs.text import short_repr

__all__ = ["RunState", "resume", "has_run_state", "check_extra"]


def _empty_history():
    return {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}


@dataclasses.dataclass
class RunState:
    """Where a training run stands after an epoch, JSON-able.

    Attributes:
        epochs: the planned number of epochs in all (schedules are laid out over it).
        schedule: the schedule's name for :func:`~nnfs.optim.make_schedule`.
        warmup_epochs: length of the warm-up at the start of the schedule.
        epoch: epochs done.
        history: per-epoch ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` lists.
        best_val_accuracy: the best validation accuracy so far (-1 before any).
        best_epoch: the epoch that reached it.
        loader: the training loader's ``state_dict()`` (its shuffling), or None.
    """

    epochs: int
    schedule: str = "constant"
    warmup_epochs: int = 0
    epoch: int = 0
    history: dict = dataclasses.field(default_factory=_empty_history)
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    loader: dict = None

    def record(self, trained, validated):
        """Add one epoch's training and validation results (two :class:`~nnfs.app.loop.EpochResult`);
        returns True on a new best."""
        self.epoch += 1
        for key, value in (("train_loss", trained.loss), ("train_acc", trained.accuracy),
                           ("val_loss", validated.loss), ("val_acc", validated.accuracy)):
            self.history[key].append(value)
        if validated.accuracy > self.best_val_accuracy:
            self.best_val_accuracy, self.best_epoch = validated.accuracy, self.epoch
            return True
        return False

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state):
        """Rebuild from :meth:`to_dict` output, every field checked.

        Raises:
            CheckpointError: for anything that is not a run state this program wrote: a
                missing or mistyped field, a history whose length is not the epoch count,
                an epoch beyond the planned total, a shuffling state ahead of the epochs.
        """
        if not isinstance(state, dict):
            raise CheckpointError(f"damaged run state (not a dict: {short_repr(state)})")
        missing = {"epochs", "epoch", "history"} - set(state)
        if missing:
            raise CheckpointError(f"the saved run state lacks {sorted(missing)}")
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            run = cls(**{key: value for key, value in state.items() if key in names})
            run._check()
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"damaged run state: {error}") from None
        return run

    def _check(self):
        """Raise a ValueError naming the first field that is not what a run writes."""
        owner = "RunState"
        self.epochs = integer(owner, "epochs", self.epochs, minimum=1)
        self.epoch = integer(owner, "epoch", self.epoch, minimum=0, maximum=self.epochs)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"{owner}: schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {short_repr(self.schedule)}")
        self.warmup_epochs = integer(owner, "warmup_epochs", self.warmup_epochs, minimum=0)
        if not isinstance(self.history, dict) or set(self.history) != set(_empty_history()):
            raise ValueError(f"{owner}: history must have the keys {sorted(_empty_history())}, "
                             f"got {short_repr(self.history)}")
        for key, values in self.history.items():
            if not isinstance(values, list) or len(values) != self.epoch:
                raise ValueError(f"{owner}: history[{key!r}] must list one value per epoch done "
                                 f"({self.epoch}), got {short_repr(values)}")
            # Finite: a diverged epoch is never saved (the training program stops before).
            self.history[key] = [number(owner, f"history[{key!r}]", v) for v in values]
        self.best_val_accuracy = number(owner, "best_val_accuracy", self.best_val_accuracy, low=-1, high=1)
        self.best_epoch = integer(owner, "best_epoch", self.best_epoch, minimum=0, maximum=self.epoch)
        if self.loader is not None:
            # "augment" is absent from the states of runs saved before augmentation existed.
            if not isinstance(self.loader, dict) or not (
                    {"seed", "passes"} <= set(self.loader) <= {"seed", "passes", "augment"}):
                raise ValueError(f"{owner}: loader must be {{'seed': int, 'passes': int, 'augment': "
                                 f"config or None}}, got {short_repr(self.loader)}")
            integer(owner, "loader['seed']", self.loader["seed"], minimum=0)
            # At most one pass per epoch begun: replaying them must not take forever.
            integer(owner, "loader['passes']", self.loader["passes"], minimum=0, maximum=self.epoch)
            if self.loader.get("augment") is not None:
                try:
                    Augmentation.from_config(self.loader["augment"])
                except DatasetError as error:
                    raise ValueError(f"{owner}: loader['augment']: {error}") from None


def check_extra(path, extra, fields):
    """The ``fields`` of the training program's record in a checkpoint's ``extra`` checked for
    their form; returns ``extra`` (``{}`` for None).

    Each caller names the fields it reads, and only those are checked: ``extra`` is also
    where a user keeps fields of their own (:func:`nnfs.checkpoint.save`), which may share a
    name with one the training program writes (``extra={"model": "my-mlp"}``) without
    making the file unusable to a program that does not read it.

    The fields (each may be absent, as in files of older versions, or null):
    ``model`` (a ``--model`` name), ``dataset`` (the folder trained on), ``split``
    (``{"train": [...], "val": [...]}``, paths relative to that folder with ``/``), ``seed``,
    ``val_split``, ``limit``, ``epoch``, ``val_accuracy``, ``batch_size``, ``requested``
    (the ``--image_size`` and ``--channels`` the run asked for, null where the data chose),
    ``skip_corrupt`` (whether the run left unreadable images out) and ``run`` (a
    :meth:`RunState.to_dict`).

    Raises:
        CheckpointError: ``"<path>: damaged metadata (extra.<field> must be ..., got ...)"``
            for the first of ``fields`` of the wrong form.
    """
    if extra is None:
        return {}
    if not isinstance(extra, dict):  # checkpoint.metadata already refuses this; load() callers too
        raise CheckpointError(f"{path}: damaged metadata (extra must be a dict, got {short_repr(extra)})")
    for field in fields:
        if extra.get(field) is None:
            continue
        if field == "run":
            try:
                RunState.from_dict(extra["run"])
            except CheckpointError as error:
                raise CheckpointError(f"{path}: {error}") from None
            continue
        fits, expected = _EXTRA_FIELDS[field]
        if not fits(extra[field]):
            raise CheckpointError(
                f"{path}: damaged metadata (extra.{field} must be {expected}, got {short_repr(extra[field])})")
    return extra


def _is_split(split):
    """Whether ``split`` has the form the training program writes, every path inside the folder:
    a hostile file must not make ``predict --split`` read (or a CSV name) files elsewhere."""
    if not isinstance(split, dict) or set(split) != {"train", "val"}:
        return False
    return all(isinstance(paths, list) and all(_stays_inside(rel) for rel in paths) for paths in split.values())


def _stays_inside(rel):
    """Whether ``rel`` is a relative path with ``/`` that stays inside the folder it is joined to,
    by POSIX rules and by Windows' too (a checkpoint written on one is read on the other): there a
    backslash separates as well (``..\\..\\secret.png``), and a drive (``C:/``, ``C:x``), a UNC
    prefix (``\\\\server\\share``) or a leading separator anchors the path elsewhere, at the
    start or in any part (the programs join the parts one by one: ``cats/C:x.png``)."""
    if not isinstance(rel, str) or "\0" in rel or rel.startswith(("/", "\\")):
        return False
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return False
    parts = rel.replace("\\", "/").split("/")
    return ".." not in parts and not any(ntpath.splitdrive(part)[0] for part in parts)


def _is_request(requested):
    """Whether ``requested`` is the ``--image_size`` and ``--channels`` a run asked for (None: the data chose)."""
    if not isinstance(requested, dict) or not set(requested) <= {"image_size", "channels"}:
        return False
    size, channels = requested.get("image_size"), requested.get("channels")
    return (size is None or isinstance(size, list) and len(size) == 2 and all(map(_fits(integer, minimum=1), size))) \
        and (channels is None or _fits(integer)(channels) and channels in (1, 3))


def _fits(check, **bounds):
    """Whether a value passes ``check`` of :mod:`nnfs.checks` (``integer``, ``number``) within
    ``bounds``, as a predicate; the message is :func:`check_extra`'s, which names the field."""
    def fits(value):
        try:
            check("extra", "field", value, **bounds)
        except ValueError:  # an ArgumentTypeError (a bool, text) is one too
            return False
        return True
    return fits


#: Each field of ``extra`` that a program reads: ``(whether a value fits, what is expected)``.
_EXTRA_FIELDS = {
    "model": (lambda v: isinstance(v, str) and v in MODELS, f"one of {', '.join(map(repr, MODELS))}"),
    "dataset": (lambda v: isinstance(v, str) and v != "" and "\0" not in v, "a folder path"),
    "split": (_is_split, '{"train": [...], "val": [...]} with paths inside the dataset folder '
                         '(relative, with /, no .., no drive)'),
    "seed": (_fits(integer, minimum=0, maximum=2**32 - 1), "an integer in [0, 4294967295]"),
    # As --val_split takes it (nnfs.app.cli.options.fraction, which parses the command line's text).
    "val_split": (_fits(number, low=0, high=1, low_open=True, high_open=True), "a number strictly between 0 and 1"),
    "limit": (_fits(integer, minimum=1), "a positive integer"),
    "epoch": (_fits(integer, minimum=0), "an integer >= 0"),
    "batch_size": (_fits(integer, minimum=1), "a positive integer"),
    "requested": (_is_request, '{"image_size": null or [height, width], "channels": null, 1 or 3}'),
    "val_accuracy": (_fits(number, low=0, high=1), "a number in [0, 1]"),
    "skip_corrupt": (lambda v: isinstance(v, bool), "true or false"),
}


def has_run_state(checkpoint):
    """True when ``checkpoint`` holds what :func:`resume` needs (not only weights)."""
    return records_run_state(checkpoint.optimizer_state, checkpoint.extra)


def records_run_state(optimizer, extra):
    """The rule of :func:`has_run_state`, for a checkpoint's parts or its metadata's record
    (``meta["optimizer"]``, ``meta["extra"]``: known before the arrays are read)."""
    return optimizer is not None and isinstance(extra, dict) and extra.get("run") is not None


def resume(checkpoint, net, epochs):
    """Rebuild the optimizer, the schedule and the run state saved with ``checkpoint``.

    ``checkpoint`` comes from :func:`nnfs.checkpoint.load_into` on ``net``. The saved
    optimizer (type, hyperparameters, state) and schedule win over whatever a new
    command line asks for, so the run continues exactly. When ``epochs`` differs from
    the planned total, the saved schedule is laid out again over the new total from the
    step it had reached (a cosine then anneals to the new end instead of staying at its
    minimum); the learning rate changes from there on, not before.

    Args:
        checkpoint: a :class:`~nnfs.checkpoint.Checkpoint` saved with an optimizer and
            ``extra["run"]`` (a :meth:`RunState.to_dict`).
        net: the net the checkpoint was loaded into.
        epochs: the number of epochs the continued run should reach in all.

    Returns:
        ``(optimizer, scheduler or None, RunState)``; the caller restores its loader
        from ``run_state.loader``.

    Raises:
        CheckpointError: the checkpoint holds weights only (no optimizer or run state), or
            its run, optimizer or schedule state is damaged, or cannot be laid out over
            ``epochs`` (a warm-up as long as the new total); the message names the file.
    """
    if not has_run_state(checkpoint):
        raise CheckpointError(
            f"{checkpoint.path} holds weights only, no optimizer state or run state to resume")
    try:
        run = RunState.from_dict(checkpoint.extra["run"])
    except CheckpointError as error:
        raise CheckpointError(f"{checkpoint.path}: {error}") from None
    try:
        config = checkpoint.optimizer_state["config"]
        optimizer = make_optimizer(config["type"], net, config["lr"])
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{checkpoint.path}: damaged optimizer state ({_reason(error)})") from None
    scheduler = None
    try:
        if checkpoint.scheduler_state:
            scheduler = schedule_from_state(optimizer, checkpoint.scheduler_state)
        if scheduler is not None and epochs != run.epochs:
            scheduler = _relaid(scheduler, run, optimizer, epochs)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{checkpoint.path}: cannot restore its schedule ({_reason(error)})") from None
    run.epochs = epochs
    return optimizer, scheduler, run


def _reason(error):
    return f"missing {error}" if isinstance(error, KeyError) else str(error)


def _relaid(saved, run, optimizer, epochs):
    """The run's schedule laid out over ``epochs``, at the step ``saved`` had reached."""
    schedule = make_schedule(run.schedule, optimizer, epochs, run.warmup_epochs)
    if schedule is None:  # constant without warm-up: nothing to lay out
        return None
    schedule.base_lr, schedule.last_step = saved.base_lr, saved.last_step
    optimizer.lr = schedule.lr
    return schedule
