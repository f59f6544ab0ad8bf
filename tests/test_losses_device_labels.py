"""Class labels outside the classes are never used silently, wherever they live.

CuPy wraps out-of-range indices around on the device (the strict backend does the same, so the
CPU can see it): without a check, labels [0, 1, 2, 5] with 3 classes train as [0, 1, 2, 2].
Host labels are checked when they arrive; device labels on the device, read back where the
loop reads its running metrics. See nnfs/losses.py.
"""

import numpy as np
import pytest

from nnfs.app.guard import FiniteGuard
from nnfs.app.loop import RunningMetrics, evaluate, train_epoch
from nnfs.backend import to_numpy
from nnfs.backend.strict import no_sync
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss, check_labels
from nnfs.net import Net

LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 0.0, 1.0], [0.5, -0.5, 2.5]])
GOOD, BAD, WRAPPED = np.array([0, 1, 2, 2]), np.array([0, 1, 2, 5]), np.array([0, 1, 2, 5 % 3])


def device_only(backend):
    if not backend.is_device:
        pytest.skip("NumPy labels are host labels: checked when they arrive (see the test below)")


def test_the_device_wraps_out_of_range_labels_so_an_unchecked_loss_would_be_wrong(backend):
    device_only(backend)
    xp, log_p = backend.xp, backend.asarray(LOGITS)
    picked_bad = xp.take_along_axis(log_p, backend.asarray(BAD)[:, None], axis=1)
    picked_wrapped = xp.take_along_axis(log_p, backend.asarray(WRAPPED)[:, None], axis=1)
    np.testing.assert_array_equal(to_numpy(picked_bad), to_numpy(picked_wrapped))


def test_host_labels_outside_the_classes_raise_at_once(backend):
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 5\]"):
        CrossEntropyLoss()(backend.asarray(LOGITS), BAD)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_device_labels_outside_the_classes_give_nan_and_an_error_naming_the_batch(backend, dtype):
    device_only(backend)
    loss = CrossEntropyLoss()
    logits = backend.asarray(LOGITS)
    good = float(loss(logits, backend.asarray(GOOD.astype(dtype))))
    assert np.isfinite(good)
    assert np.isnan(float(loss(logits, backend.asarray(BAD.astype(dtype)))))  # batch 2
    loss.backward()  # the step itself does not fail: the check is read later
    loss(logits, backend.asarray(np.array([7, 0, 0, 0], dtype=dtype)))  # batch 3: also bad, reported later
    with pytest.raises(ValueError, match=r"batch 2 .* label 5 at position 3, outside \[0, 3\)"):
        loss.check_labels()
    loss.check_labels()  # the record was cleared: nothing since
    assert float(loss(logits, backend.asarray(GOOD.astype(dtype)))) == good


def test_local_grad_checks_device_labels_at_once_and_leaves_no_record(backend):
    """An inspection may wait for the device: local_grad gave the gradient of the wrapped label,
    and its record stopped the next check_labels (a training loop's) at a batch no loop scored;
    it also counted among the batches that the messages number."""
    device_only(backend)
    loss, logits = CrossEntropyLoss(), backend.asarray(LOGITS)
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: labels must be in \[0, 3\), got values in "
                                         r"\[0, 5\]$"):
        loss.local_grad(logits, backend.asarray(BAD))
    loss.local_grad(logits, backend.asarray(GOOD))
    loss.check_labels()  # nothing recorded
    loss(logits, backend.asarray(GOOD))
    loss(logits, backend.asarray(BAD))
    loss.local_grad(logits, backend.asarray(GOOD))  # neither counted nor clearing the pending record
    with pytest.raises(ValueError, match=r"batch 2 .* label 5 at position 3"):
        loss.check_labels()


def test_negative_device_labels_are_caught_too(backend):
    # -1 is a valid NumPy index (the last class): without the check it would pass even on the host.
    device_only(backend)
    loss = CrossEntropyLoss()
    assert np.isnan(float(loss(backend.asarray(LOGITS), backend.asarray(np.array([-1, 0, 1, 2])))))
    with pytest.raises(ValueError, match=r"label -1 at position 0"):
        loss.check_labels()


def test_good_device_labels_give_the_same_loss_as_host_labels(backend):
    logits = backend.asarray(LOGITS)
    loss = CrossEntropyLoss()
    assert float(loss(logits, backend.asarray(GOOD))) == float(CrossEntropyLoss()(logits, GOOD))
    loss.check_labels()
    # The check adds no float64 on the way (pitfall 9): a float32 loss stays float32.
    assert loss(backend.asarray(LOGITS, dtype="float32"), backend.asarray(GOOD)).dtype == np.float32


def test_the_device_check_reads_nothing_back_in_the_step(backend):
    device_only(backend)
    if backend.name != "strict":
        pytest.skip("no_sync() watches the strict backend's arrays")
    loss = CrossEntropyLoss()
    with no_sync():
        loss(backend.asarray(LOGITS), backend.asarray(BAD))
        loss.backward()
    with pytest.raises(ValueError, match="batch 1"):
        loss.check_labels()


class DeviceLabelLoader:
    """Batches whose labels are already on the device; one bad batch among them."""

    def __init__(self, backend, bad_batch):
        rng = np.random.default_rng(0)
        self.batches = []
        for index in range(4):
            labels = rng.integers(0, 3, size=5)
            if index == bad_batch:
                labels[2] = 7
            self.batches.append((rng.normal(size=(5, 4)), backend.asarray(labels)))

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


@pytest.mark.parametrize("loop", ["train", "evaluate"])
def test_the_loops_stop_with_the_batch_where_they_read_their_metrics(backend, loop):
    device_only(backend)
    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend=backend)
    loader = DeviceLabelLoader(backend, bad_batch=2)
    with pytest.raises(ValueError, match=r"batch 3 .* label 7 at position 2, outside \[0, 3\)"):
        train_epoch(net, loader, lr=0.1) if loop == "train" else evaluate(net, loader)


@pytest.mark.parametrize("every", [1, 2, 100])
def test_with_a_guard_the_label_is_reported_not_the_nan_it_made(backend, every):
    # The bad batch's loss is NaN, and the guard reads its verdict first: the error must still
    # name the label, which is what the user can fix.
    device_only(backend)
    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend=backend)
    loader = DeviceLabelLoader(backend, bad_batch=2)
    with pytest.raises(ValueError, match=r"batch 3 .* label 7 at position 2, outside \[0, 3\)"):
        train_epoch(net, loader, lr=0.1, guard=FiniteGuard(every=every))


class OneRankFailed:
    """A communicator of two ranks where the other rank reports one bad-label batch (this
    process is rank 0 of a world of 1 for sharding: it keeps every batch whole)."""

    rank, size = 0, 1

    def __init__(self, other_failed):
        self.other_failed = other_failed
        self.calls = 0

    def sum_host(self, values):
        self.calls += 1
        values = [float(to_numpy(value)) for value in values]
        values[-1] += self.other_failed
        return values


@pytest.mark.parametrize("here, other", [(True, 0), (False, 1), (True, 1)])
def test_a_bad_label_on_one_rank_stops_every_rank_after_the_collective(backend, here, other):
    # The rank with the label raises its own error, the others one that points to it, and all
    # of them only after the collective: no rank is left waiting for one that stopped.
    device_only(backend)
    loss = CrossEntropyLoss()
    running = RunningMetrics(loss)
    logits = backend.asarray(LOGITS)
    labels = backend.asarray(BAD if here else GOOD)
    running.add(logits, loss(logits, labels), loss.target)
    comm = OneRankFailed(other)
    message = r"label 5 at position 3" if here else r"labels outside the classes on 1 other rank"
    with pytest.raises(ValueError, match=message):
        running.result(comm)
    assert comm.calls == 1


def test_a_result_with_good_labels_on_every_rank_adds_them_up(backend):
    loss = CrossEntropyLoss()
    running = RunningMetrics(loss)
    logits = backend.asarray(LOGITS)
    running.add(logits, loss(logits, backend.asarray(GOOD)), loss.target)
    result = running.result(OneRankFailed(0))
    assert result.samples == 4 and 0.0 <= result.accuracy <= 1.0


def test_a_whole_dataset_is_checked_once(backend):
    check_labels(backend.asarray(GOOD), 3)
    with pytest.raises(ValueError, match=r"train labels must be in \[0, 3\), got values in \[0, 5\]"):
        check_labels(backend.asarray(BAD), 3, what="train labels")
    check_labels(backend.asarray(np.zeros(0, dtype=np.int64)), 3)


class DrawingBar:
    """A progress bar that wants the running metrics after every batch (rank 0's bar)."""

    def due(self, step):
        return True

    def update(self, step, **values):
        pass

    def close(self):
        pass


class DataParallelStandIn:
    """What the loops use of a DataParallel: its net, its communicator and its cut of a batch."""

    def __init__(self, net, comm):
        self.net, self.comm = net, comm

    def shard(self, X, y):
        return X, y  # rank 0 of a world of 1

    def eval(self):
        self.net.eval()


def test_the_progress_bar_of_one_rank_never_raises_alone(backend):
    # Rank 0 draws the bar; a label error raised while drawing it would leave the other ranks
    # waiting in the next collective. The labels are checked in the epoch's collective instead.
    device_only(backend)
    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend=backend)
    comm = OneRankFailed(0)
    with pytest.raises(ValueError, match=r"batch 3 .* label 7 at position 2"):
        evaluate(DataParallelStandIn(net, comm), DeviceLabelLoader(backend, bad_batch=2), progress=DrawingBar())
    assert comm.calls == 1
