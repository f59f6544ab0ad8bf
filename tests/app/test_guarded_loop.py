"""train_epoch with a FiniteGuard stops a diverging epoch, naming the first bad step."""

import io

import numpy as np
import pytest

import nnfs
from nnfs.app.guard import FiniteGuard, NonFiniteLossError
from nnfs.app.loop import train_epoch
from nnfs.app.progress import ProgressBar
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net


def batches(n, bad_from=None):
    rng = np.random.default_rng(0)
    out = []
    for step in range(1, n + 1):
        X = rng.standard_normal((4, 3)).astype(np.float32)
        if bad_from is not None and step >= bad_from:
            X[0, 0] = np.nan
        out.append((X, rng.integers(0, 2, 4)))
    return out


def test_the_guard_names_the_first_bad_step_even_between_read_backs(backend):
    nnfs.seed(0)
    net = Net([Linear(3, 2)], CrossEntropyLoss(), backend=backend)
    stream = io.StringIO()
    bar = ProgressBar(8, stream=stream, enabled=True, interval=0)
    with pytest.raises(NonFiniteLossError, match="at step 3") as info:
        train_epoch(net, batches(8, bad_from=3), lr=0.1, guard=FiniteGuard(every=100), progress=bar)
    assert info.value.step == 3 and np.isnan(info.value.value)
    assert isinstance(info.value, FloatingPointError)
    drawn = stream.getvalue()  # the bar was closed, its line blanked: the error line starts clean
    assert drawn.endswith("\r") and not drawn.split("\r")[-2].strip()


def test_a_finite_epoch_passes_the_guard_and_without_one_nothing_is_checked(backend):
    net = Net([Linear(3, 2)], CrossEntropyLoss(), backend=backend)
    guard = FiniteGuard(every=3)
    result = train_epoch(net, batches(5), lr=0.1, guard=guard)
    assert guard.calls == 5 and np.isfinite(result.loss)
    result = train_epoch(net, batches(2, bad_from=2), lr=0.1)  # no guard: the caller chose not to check
    assert np.isnan(result.loss)
