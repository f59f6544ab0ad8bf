"""One epoch of training or evaluation over a loader, with running loss and accuracy.

Running sums stay on the net's device and are read back only when the
progress bar redraws and once at the end of the epoch: on a GPU, reading a
value after every batch would make the host wait for the device each time.
"""

import time
from dataclasses import dataclass

from nnfs.backend import to_numpy


@dataclass
class EpochResult:
    """Mean loss and accuracy over an epoch, with its duration.

    Attributes:
        loss: mean loss per sample.
        accuracy: fraction of samples classified correctly, in [0, 1].
        samples: number of samples seen.
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
    :meth:`read` waits for the device, so a progress bar reads it every few batches.
    """

    def __init__(self):
        self.loss = 0.0
        self.correct = 0
        self.samples = 0

    def add(self, out, loss, target):
        """Count one batch: logits ``(N, D)``, its mean loss, and device targets that are
        ``(N,)`` class indices or ``(N, D)`` one-hot / probability rows."""
        n = out.shape[0]
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        self.loss = self.loss + loss * n
        self.correct = self.correct + (out.argmax(axis=1) == labels).sum()
        self.samples += n

    def read(self):
        """(mean loss, accuracy) as Python floats: a device synchronisation."""
        if self.samples == 0:
            return 0.0, 0.0
        return (float(to_numpy(self.loss)) / self.samples,
                float(to_numpy(self.correct)) / self.samples)


def forward_batch(net, X, y):
    """Forward pass and loss of one batch: returns ``(logits, loss, device targets)``.

    ``net`` is a ``Net`` or anything that calls and scores like one (``DataParallel``).

    The labels reach the loss as the loader gave them (host arrays), so the loss
    checks their range there before moving them to the device: on a GPU an
    out-of-range label would otherwise be wrapped around silently by the indexing.
    """
    out = net(X)
    loss = net.loss(out, y)
    return out, loss, net.loss_fn.target


def train_epoch(net, loader, lr=None, optimizer=None, progress=None):
    """One pass over ``loader`` in training mode, updating the weights after every batch.

    Args:
        net: a ``Net`` with a classification loss.
        loader: yields ``(X, y)`` batches (host arrays; moved to the net's device here).
        lr: learning rate of plain SGD (``net.update_weights``), when no ``optimizer`` is given.
        optimizer: an object with ``step()`` that updates the net from its gradients.
        progress: an optional :class:`~nnfs.progress.ProgressBar` (``total`` = batches).

    Returns:
        :class:`EpochResult`. The loss is averaged per sample, so the last, smaller
        batch counts in proportion; the weights change during the epoch, so this is
        the running training loss, as PyTorch loops usually report it.
    """
    if optimizer is None and lr is None:
        raise ValueError("train_epoch: give a learning rate lr or an optimizer")
    net.train()
    running = RunningMetrics()
    start = time.perf_counter()
    for step, (X, y) in enumerate(loader, 1):
        out, loss, target = forward_batch(net, X, y)
        net.backward()
        if optimizer is not None:
            optimizer.step()
        else:
            net.update_weights(lr)
        running.add(out, loss, target)
        if progress is not None and progress.due(step):
            mean_loss, accuracy = running.read()
            progress.update(step, loss=mean_loss, acc=accuracy)
    mean_loss, accuracy = running.read()
    if progress is not None:
        progress.close()
    return EpochResult(mean_loss, accuracy, running.samples, time.perf_counter() - start)


def evaluate(net, loader):
    """Mean loss and accuracy of ``net`` over ``loader`` in eval mode (no weight updates).

    Returns:
        :class:`EpochResult`. The net is left in eval mode.
    """
    net.eval()
    running = RunningMetrics()
    start = time.perf_counter()
    for X, y in loader:
        running.add(*forward_batch(net, X, y))
    mean_loss, accuracy = running.read()
    return EpochResult(mean_loss, accuracy, running.samples, time.perf_counter() - start)


__all__ = ["EpochResult", "RunningMetrics", "forward_batch", "train_epoch", "evaluate"]
