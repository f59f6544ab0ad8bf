"""Continue a training run from a checkpoint as if it had never stopped.

A checkpoint already holds the weights, the optimizer state and the schedule
(:mod:`nnfs.checkpoint`). :class:`RunState` is the rest: which epoch is done,
the planned length and schedule of the run, the history, the best accuracy so
far and where the loader's shuffling stands. It travels in the checkpoint's
``extra["run"]``; :func:`resume` turns a loaded checkpoint back into a
ready-to-step optimizer, schedule and run state.
"""

import dataclasses

from nnfs.checkpoint import CheckpointError
from nnfs.optim import make_optimizer, make_schedule, schedule_from_state

__all__ = ["RunState", "resume"]


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

    def record(self, fit, check):
        """Add one epoch's training and validation results; returns True on a new best."""
        self.epoch += 1
        for key, value in (("train_loss", fit.loss), ("train_acc", fit.accuracy),
                           ("val_loss", check.loss), ("val_acc", check.accuracy)):
            self.history[key].append(value)
        if check.accuracy > self.best_val_accuracy:
            self.best_val_accuracy, self.best_epoch = check.accuracy, self.epoch
            return True
        return False

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state):
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"epochs", "epoch", "history"} - set(state)
        if missing:
            raise CheckpointError(f"the saved run state lacks {sorted(missing)}")
        return cls(**{key: value for key, value in state.items() if key in names})


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
        CheckpointError: the checkpoint holds weights only (no optimizer or run state).
        ValueError: the new total leaves no room for the saved warm-up.
    """
    state = (checkpoint.extra or {}).get("run")
    if checkpoint.optimizer_state is None or state is None:
        raise CheckpointError(
            f"{checkpoint.path} holds weights only, no optimizer state or run state to resume")
    run = RunState.from_dict(state)
    config = checkpoint.optimizer_state["config"]
    optimizer = make_optimizer(config["type"], net, config["lr"]).load_state_dict(checkpoint.optimizer_state)
    scheduler = None
    if checkpoint.scheduler_state:
        scheduler = schedule_from_state(optimizer, checkpoint.scheduler_state)
        if epochs != run.epochs:
            scheduler = _relaid(scheduler, run, optimizer, epochs)
    run.epochs = epochs
    return optimizer, scheduler, run


def _relaid(saved, run, optimizer, epochs):
    """The run's schedule laid out over ``epochs``, at the step ``saved`` had reached."""
    schedule = make_schedule(run.schedule, optimizer, epochs, run.warmup_epochs)
    if schedule is None:  # constant without warm-up: nothing to lay out
        return None
    schedule.base_lr, schedule.last_step = saved.base_lr, saved.last_step
    optimizer.lr = schedule.lr
    return schedule
