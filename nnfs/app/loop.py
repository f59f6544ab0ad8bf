"""One epoch of training or evaluation over a loader, with running loss and accuracy.

The same two loops serve one process and data-parallel training: given a
:class:`~nnfs.distributed.DataParallel` instead of a ``Net``, every global batch
of the loader (the same on every rank) is cut into this rank's contiguous shard,
the gradients are averaged across the ranks by ``ddp.backward()``, and the
returned loss and accuracy are summed over all ranks through the communicator,
so decisions taken from them (saving the best model) agree on every rank.

Running sums stay on the net's device and are read back only when the
progress bar redraws and once at the end of the epoch: on a GPU, reading a
value after every batch would make the host wait for the device each time.
"""

import math
import time
from dataclasses import dataclass

from nnfs.app.guard import NonFiniteLossError
from nnfs.backend import to_numpy
from nnfs.checks import number
from nnfs.optim.optimizers import not_the_nets
from nnfs.text import count

__all__ = ["EpochResult", "RunningMetrics", "forward_batch", "train_epoch", "evaluate"]


@dataclass
class EpochResult:
    """Mean loss and accuracy over an epoch, with its duration.

    Attributes:
        loss: mean loss per sample.
        accuracy: fraction of samples classified correctly, in [0, 1].
        samples: number of samples seen (over all ranks).
        seconds: wall-clock time (waiting for the device at the end).
    """

    loss: float
    accuracy: float
    samples: int
    seconds: float

    @property
    def images_per_second(self):
        return self.samples / self.seconds if self.seconds > 0 else float("inf")


class RunningMetrics:
    """Sums of loss and correct predictions, kept as device scalars until read.

    Adding a batch queues two small device operations and no transfer; only
    :meth:`read` and :meth:`result` wait for the device, so a progress bar
    reads every few batches. Given the loss, they first read its check of labels
    that were already on the device (see :mod:`nnfs.losses`), so a label outside
    the classes stops the run there with an error naming the batch.
    """

    def __init__(self, loss_fn=None):
        self._check_labels = getattr(loss_fn, "check_labels", None)
        self.loss = 0.0
        self.correct = 0
        self.samples = 0
        self.start = time.perf_counter()

    def add(self, out, loss, target):
        """Count one batch: logits ``(N, D)``, its mean loss, and device targets that are
        ``(N,)`` class indices or ``(N, D)`` one-hot / probability rows."""
        n = out.shape[0]
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        self.loss = self.loss + loss * n
        self.correct = self.correct + (out.argmax(axis=1) == labels).sum()
        self.samples += n

    def check_labels(self):
        """Raise the loss's ValueError if a batch of device labels had one outside the classes
        since the last check (a device synchronisation; nothing to do for host labels)."""
        if self._check_labels is not None:
            self._check_labels()

    def read(self, check_labels=True):
        """(mean loss, accuracy) of this process's batches as Python floats: a device synchronisation.

        Data parallel, the loops pass ``check_labels=False``: a label error raised here on the
        rank that draws the progress bar would leave the others waiting in the next collective;
        :meth:`result` checks the labels of every rank together instead.
        """
        if check_labels:
            self.check_labels()
        if self.samples == 0:
            return 0.0, 0.0
        return (float(to_numpy(self.loss)) / self.samples,
                float(to_numpy(self.correct)) / self.samples)

    def result(self, comm=None):
        """The :class:`EpochResult` so far; with a communicator, over the samples of every rank
        (a collective: every rank calls it).

        A label outside the classes on any rank raises on every rank: the rank that had it
        raises the loss's error, the others one that points to it, so that no rank is left
        waiting in the next collective for one that stopped.
        """
        if comm is None:
            self.check_labels()
            loss, correct, samples = to_numpy(self.loss), to_numpy(self.correct), self.samples
        else:
            try:
                self.check_labels()
                error = None
            except ValueError as bad_labels:
                error = bad_labels
            loss, correct, samples, failed = comm.sum_host(
                [self.loss, self.correct, self.samples, int(error is not None)])
            if error is not None:
                raise error
            if failed:
                raise ValueError(f"labels outside the classes on {int(failed)} other rank(s); "
                                 "their errors name the batches")
        seconds = time.perf_counter() - self.start
        if samples == 0:  # a mean over nothing: not a score of 0 (the loops refuse this case)
            return EpochResult(math.nan, math.nan, 0, seconds)
        return EpochResult(float(loss) / samples, float(correct) / samples, int(samples), seconds)


def _check_model(owner, net):
    """Refuse what the loops cannot train or score before any batch is drawn."""
    if not hasattr(net, "loss_fn"):
        raise TypeError(f"{owner}: model must be a Net (or a DataParallel around one), got {type(net).__name__}")
    _check_classification(owner, net)


def _check_classification(owner, net):
    # The accuracy is counted against the loss's own validated targets: a classification loss
    # of one's own trains here once it keeps them too (docs/layers.md, "Write your own loss").
    loss = net.loss_fn
    if loss is None:
        raise TypeError(f"{owner}: the net has no loss; give it one (Net(layers, CrossEntropyLoss()))")
    # Looked up without reading it: a property may read the cache, empty before the first batch.
    if not (hasattr(type(loss), "target") or "target" in vars(loss)):
        raise TypeError(f"{owner}: the epoch loop counts accuracy against the class targets a loss keeps as "
                        f"`target` (CrossEntropyLoss does), and {type(net.loss_fn).__name__} keeps none; "
                        "train it with a loop of your own")


def forward_batch(net, X, y):
    """Forward pass and loss of one batch: returns ``(logits, loss, device targets)``.

    ``net`` is a ``Net`` or anything that calls and scores like one (``DataParallel``).

    The labels reach the loss as the loader gave them (host arrays), so the loss
    checks their range there before moving them to the device: on a GPU an
    out-of-range label would otherwise be wrapped around silently by the indexing.
    """
    _check_classification("forward_batch", net)
    out = net(X)
    loss = net.loss(out, y)
    return out, loss, net.loss_fn.target


def _shards(owner, model, loader):
    """The loader's batches, each cut to this rank's share when ``model`` is data parallel
    (by ``model.shard``, which also tells its Dropout where the share sits in the batch)."""
    parallel = getattr(model, "comm", None) is not None
    for index, batch in enumerate(loader):
        # A pair only: unpacked as it came, a triple failed with "too many values to unpack"
        # from in here, and a bare batch of two samples became X and y without a word.
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            got = f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list)) else \
                f"a {type(batch).__name__}"
            raise TypeError(f"{owner}: the loader must yield (X, y) pairs, got {got} as batch {index}")
        X, y = batch
        yield model.shard(X, y) if parallel else (X, y)


def _has_methods(owner, name, value, methods, expected):
    """Refuse ``value`` unless it has every one of ``methods`` (a TypeError naming ``expected``):
    a wrong object failed with an AttributeError after the first batch's forward pass."""
    missing = [method for method in methods if not callable(getattr(value, method, None))]
    if missing:
        raise TypeError(f"{owner}: {name} must be {expected} (with {', '.join(methods)}), "
                        f"got {type(value).__name__}")


def _check_progress(owner, progress):
    if progress is not None:
        _has_methods(owner, "progress", progress, ("due", "update", "close"), "a ProgressBar or None")


def _check_optimizer(net, optimizer):
    """Refuse an optimizer whose parameters are not the net's: it would update another net's
    weights from stale gradients and leave this one as it was, without a word. Duck-typed
    optimizers that do not say what they update are taken at their word."""
    _has_methods("train_epoch", "optimizer", optimizer, ("step",), "an optimizer")
    source = getattr(optimizer, "params", None)
    if source is None:
        return
    problem = not_the_nets(net, source)
    if problem:
        raise ValueError(f"train_epoch: {problem}")


def _check_samples(owner, result, batches):
    """Refuse an epoch over no samples: its loss and accuracy would be means of nothing."""
    if result.samples == 0:
        what = "nothing to evaluate" if owner == "evaluate" else "nothing to train on"
        raise ValueError(f"{owner}: the loader gave no samples ({count(batches, 'batch', 'batches')}): {what}")
    return result


def train_epoch(model, loader, lr=None, optimizer=None, progress=None, guard=None):
    """One pass over ``loader`` in training mode, updating the weights after every batch.

    Args:
        model: a ``Net`` with a classification loss (one that keeps its class targets as
            ``target``, as ``CrossEntropyLoss`` does), or a
            :class:`~nnfs.distributed.DataParallel` around one (then each rank trains on
            its share of every batch, and the result covers all ranks).
        loader: yields ``(X, y)`` batches (host arrays; moved to the net's device here),
            the same on every rank when data parallel.
        lr: learning rate of plain SGD (``net.update_weights``): give either ``lr`` or
            ``optimizer``, not both.
        optimizer: an object with ``step()`` that updates the net from its gradients, at its
            own rate (``optimizer.lr``, which a schedule sets); an nnfs optimizer must hold
            the net's parameters (all of them or some, e.g. to train the last layer only).
        progress: an optional :class:`~nnfs.app.progress.ProgressBar` (``total`` = batches);
            when data parallel, typically enabled on rank 0 only, showing that rank's values.
        guard: an optional :class:`~nnfs.app.guard.FiniteGuard`, given every batch's loss with
            its step (from 1) and checked once more at the end of the epoch: training stops
            with a :class:`~nnfs.app.guard.NonFiniteLossError` naming the first bad step
            instead of carrying on with NaN weights.

    Returns:
        :class:`EpochResult`. The loss is averaged per sample, so the last, smaller
        batch counts in proportion; the weights change during the epoch, so this is
        the running training loss, as PyTorch loops usually report it.

    Raises:
        ValueError: for neither or both of ``lr`` and ``optimizer`` (with both, one rate
            would be ignored), a rate that is not a finite number >= 0, an optimizer of
            another net, or a loader that gave no samples (over all ranks).
        TypeError: for a model without a classification loss, or an optimizer, progress
            bar or guard without the methods the loop calls.
    """
    if optimizer is None and lr is None:
        raise ValueError("train_epoch: give a learning rate lr (plain SGD) or an optimizer")
    if optimizer is not None and lr is not None:  # PyTorch has no such pair: a rate is the optimizer's
        own = f" ({optimizer.lr!r})" if hasattr(optimizer, "lr") else ""
        raise ValueError(f"train_epoch: give lr or an optimizer, not both: the optimizer steps at its own "
                         f"rate{own}, so lr={lr!r} would be ignored")
    net = getattr(model, "net", model)
    comm = getattr(model, "comm", None)
    _check_model("train_epoch", net)
    if optimizer is None:
        lr = number("train_epoch", "lr", lr, low=0)  # before any batch, as an optimizer checks its own
    else:
        _check_optimizer(net, optimizer)
    _check_progress("train_epoch", progress)
    if guard is not None:
        _has_methods("train_epoch", "guard", guard, ("__call__", "check"), "a FiniteGuard or None")
    steps = 0
    model.train()
    running = RunningMetrics(net.loss_fn)
    try:
        try:
            for step, (X, y) in enumerate(_shards("train_epoch", model, loader), 1):
                steps = step
                if len(y):
                    out, loss, target = forward_batch(model, X, y)  # a DataParallel remembers the shard size
                    if guard is not None:
                        guard(loss, step)  # a device-side record; read back every guard.every steps
                    model.backward()
                    running.add(out, loss, target)
                elif comm is not None:  # a global batch smaller than the number of ranks left this one nothing
                    model.average_gradients(n_samples=0)  # it still takes part in the allreduce
                else:
                    continue  # an empty batch: nothing to learn from
                if optimizer is not None:
                    optimizer.step()
                else:
                    net.update_weights(lr)
                if progress is not None and progress.due(step):
                    mean_loss, accuracy = running.read(check_labels=comm is None)
                    progress.update(step, loss=mean_loss, acc=accuracy)
        finally:  # also when stopped (a non-finite loss, Ctrl-C): the next line printed starts clean
            if progress is not None:
                progress.close()
        if guard is not None:
            guard.check()
    except NonFiniteLossError:
        # A label outside the classes on the device makes its batch's loss NaN: the guard sees
        # the NaN first, but the label is what to report.
        try:
            running.check_labels()
        except ValueError as bad_labels:
            raise bad_labels from None
        raise
    return _check_samples("train_epoch", running.result(comm), steps)


def evaluate(model, loader, progress=None):
    """Mean loss and accuracy over ``loader`` in eval mode (no weight updates).

    Given a :class:`~nnfs.distributed.DataParallel`, each batch is split across the
    ranks and the result covers the whole loader; its :meth:`eval` first averages the
    BatchNorm running statistics, so every rank evaluates the same model.

    Args:
        model, loader: as for :func:`train_epoch`.
        progress: an optional :class:`~nnfs.app.progress.ProgressBar` (``total`` = batches),
            read back at its own cadence as in :func:`train_epoch`.

    Returns:
        :class:`EpochResult`. The net is left in eval mode.

    Raises:
        ValueError: for a loader that gave no samples (over all ranks): there is nothing
            to evaluate, and a loss and accuracy of 0 would read as a score.
        TypeError: as for :func:`train_epoch`.
    """
    net = getattr(model, "net", model)
    comm = getattr(model, "comm", None)
    _check_model("evaluate", net)
    _check_progress("evaluate", progress)
    model.eval()
    running = RunningMetrics(net.loss_fn)
    step = 0
    for step, (X, y) in enumerate(_shards("evaluate", model, loader), 1):
        if len(y):
            running.add(*forward_batch(net, X, y))
        if progress is not None and progress.due(step):
            mean_loss, accuracy = running.read(check_labels=comm is None)
            progress.update(step, loss=mean_loss, acc=accuracy)
    if progress is not None:
        progress.close()
    return _check_samples("evaluate", running.result(comm), step)
