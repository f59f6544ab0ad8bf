"""Splitting work between ranks, and adding up what each rank measured."""

from nnfs.checks import integer


def shard_range(n, rank, size):
    """The contiguous slice of ``range(n)`` that rank ``rank`` of ``size`` takes.

    The first ``n % size`` ranks get one item more than the others, so the
    shards differ in size by at most one and together cover every item
    exactly once, in order (rank 0 first). A rank may get an empty slice
    when ``n < size``.

    Raises:
        ValueError: for a negative ``n`` or a rank outside ``[0, size)``.
    """
    n, rank, size = (integer("shard_range", name, value) for name, value in
                      (("n", n), ("rank", rank), ("size", size)))
    if n < 0 or size < 1 or not 0 <= rank < size:
        raise ValueError(
            f"shard_range: expected n >= 0 and 0 <= rank < size, got n={n}, rank={rank}, size={size}")
    base, rest = divmod(n, size)
    start = rank * base + min(rank, rest)
    return slice(start, start + base + (rank < rest))


def shard(items, comm):
    """This rank's contiguous share of ``items`` (an array, list or range), see :func:`shard_range`.

    Use it once on a dataset's indices (the validation set split across ranks), or on
    every global batch; to train, cut the batch with :meth:`DataParallel.shard
    <nnfs.distributed.DataParallel.shard>` instead, which uses this and tells the
    forward pass where the share sits in the global batch (Dropout needs it).
    """
    return items[shard_range(len(items), comm.rank, comm.size)]


def reduce_metrics(comm, **values):
    """Sum named numbers over all ranks (one small collective); returns a dict of floats.

    Each value may be a Python number or a 0-d array on any device, e.g.::

        totals = reduce_metrics(world, loss_sum=float(loss) * n, correct=correct, count=n)
        accuracy = totals["correct"] / totals["count"]
    """
    names = list(values)
    return dict(zip(names, comm.sum_host([values[name] for name in names])))
