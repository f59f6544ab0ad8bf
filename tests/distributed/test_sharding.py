"""Sharding a batch between ranks, and summing what each rank measured."""

import numpy as np
import pytest

from nnfs.checks import ArgumentTypeError
from nnfs.distributed import Communicator, reduce_metrics, shard, shard_range
from tests.distributed.fakes import FakeCommunicator


@pytest.mark.parametrize("n", [0, 1, 5, 8, 31])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_every_item_once_and_balanced(n, size):
    parts = [list(range(n))[shard_range(n, rank, size)] for rank in range(size)]
    assert sum(parts, []) == list(range(n))
    lengths = [len(part) for part in parts]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_shard_takes_this_rank_share_of_an_array():
    X = np.arange(10).reshape(5, 2)
    assert shard(X, Communicator(rank=1, size=2)).tolist() == [[6, 7], [8, 9]]
    assert shard(range(5), Communicator(rank=0, size=2)) == range(0, 3)


def test_shard_range_rejects_bad_ranks():
    with pytest.raises(ValueError, match="rank=2, size=2"):
        shard_range(4, 2, 2)
    with pytest.raises(TypeError, match="rank must be an int"):
        shard_range(4, 0.0, 2)


def test_shard_range_takes_numpy_integers_but_not_bools():
    assert shard_range(np.int64(5), np.int32(1), np.int64(2)) == slice(3, 5)
    part = shard_range(np.uint8(5), np.int64(0), np.int64(2))
    assert part == slice(0, 3) and type(part.start) is int and type(part.stop) is int
    for args in ((True, 0, 2), (4, np.bool_(False), 2), (4, 0, True)):
        with pytest.raises(ArgumentTypeError, match="shard_range: (n|rank|size) must be an int"):
            shard_range(*args)


def test_reduce_metrics_sums_over_ranks(backend):
    comm = FakeCommunicator(size=3)
    totals = reduce_metrics(comm, loss_sum=backend.asarray(1.5), correct=2, count=4.0)
    assert totals == {"loss_sum": 4.5, "correct": 6.0, "count": 12.0}
    assert comm.calls == [("sum_host", 3)]
