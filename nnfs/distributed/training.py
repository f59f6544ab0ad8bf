"""Data-parallel epochs: :mod:`nnfs.training`'s loops, with every global batch split across ranks.

Every rank iterates over the *same* loader (same data, same shuffling seed),
so the global batches agree; each rank keeps its contiguous share of each
batch. The returned loss and accuracy are over all ranks' samples, equal on
every rank, so decisions taken from them (saving the best model) agree too.
"""

import time

from nnfs.distributed.sharding import shard
from nnfs.training import EpochResult, RunningMetrics, forward_batch


class _Sums(RunningMetrics):
    """This rank's running sums (device scalars); :meth:`result` adds up all ranks'."""

    def result(self, comm, start):
        loss, correct, samples = comm.sum_host([self.loss, self.correct, self.samples])
        seconds = time.perf_counter() - start
        if samples == 0:
            return EpochResult(0.0, 0.0, 0, seconds)
        return EpochResult(loss / samples, correct / samples, int(samples), seconds)


def train_epoch(ddp, loader, lr=None, optimizer=None, progress=None):
    """One data-parallel pass over ``loader``: each rank trains on its share of every batch.

    Args:
        ddp: a :class:`~nnfs.distributed.DataParallel`.
        loader: yields the global ``(X, y)`` batches, identical on every rank.
        lr: learning rate of plain SGD (``net.update_weights``), when no ``optimizer`` is given.
        optimizer: an object with ``step()`` that reads the gradients from the net.
        progress: an optional progress bar, typically enabled on rank 0 only; it shows
            that rank's running values (reading the others' would need a collective).

    Returns:
        :class:`~nnfs.training.EpochResult` over the samples of all ranks.
    """
    if optimizer is None and lr is None:
        raise ValueError("train_epoch: give a learning rate lr or an optimizer")
    net = ddp.net
    ddp.train()
    sums = _Sums()
    start = time.perf_counter()
    for step, (X, y) in enumerate(loader, 1):
        X, y = shard(X, ddp.comm), shard(y, ddp.comm)
        if len(y):
            out, loss, target = forward_batch(ddp, X, y)  # ddp(X) remembers the shard size
            ddp.backward()
            sums.add(out, loss, target)
        else:  # a final batch smaller than the number of ranks
            ddp.average_gradients(n_samples=0)
        if optimizer is not None:
            optimizer.step()
        else:
            net.update_weights(lr)
        if progress is not None and progress.due(step):
            mean_loss, accuracy = sums.read()
            progress.update(step, loss=mean_loss, acc=accuracy)
    if progress is not None:
        progress.close()
    return sums.result(ddp.comm, start)


def evaluate(ddp, loader):
    """Loss and accuracy over all of ``loader``, each batch split across ranks, in eval mode.

    :meth:`DataParallel.eval` first averages the BatchNorm running statistics,
    so every rank evaluates the same model.

    Returns:
        :class:`~nnfs.training.EpochResult` over the whole loader. The net is left in eval mode.
    """
    net = ddp.net
    ddp.eval()
    sums = _Sums()
    start = time.perf_counter()
    for X, y in loader:
        X, y = shard(X, ddp.comm), shard(y, ddp.comm)
        if len(y):
            sums.add(*forward_batch(net, X, y))
    return sums.result(ddp.comm, start)


__all__ = ["train_epoch", "evaluate"]
