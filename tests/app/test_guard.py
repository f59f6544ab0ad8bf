"""The non-finite loss guard: check_finite and FiniteGuard."""

import numpy as np
import pytest

import nnfs
from nnfs.app.guard import FiniteGuard, check_finite
from nnfs.layers import Linear
from nnfs.losses import MeanSquareLoss
from nnfs.net import Net


def test_check_finite_returns_the_value_and_names_the_bad_step(backend):
    assert check_finite(backend.asarray(np.array(0.25)), step=3) == 0.25
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(FloatingPointError, match="at step 17"):
            check_finite(backend.asarray(np.array(bad)), step=17)


def test_check_finite_stops_a_diverging_net():
    nnfs.seed(0)
    net = Net([Linear(3, 1)], MeanSquareLoss(), dtype="float32")
    X = np.ones((4, 3), dtype=np.float32)
    X[2, 1] = np.nan  # one bad input value poisons the loss
    with pytest.raises(FloatingPointError, match="nan at step 5"):
        check_finite(net.loss(net(X), np.zeros((4, 1))), step=5)


def test_guard_reads_back_every_k_calls_and_names_the_first_bad_step(backend):
    guard = FiniteGuard(every=5)
    losses = [1.0, 0.5, np.nan, np.inf, 2.0]
    for step, value in enumerate(losses[:-1]):
        guard(backend.asarray(np.array(value)), step)  # no read-back yet: no error
    with pytest.raises(FloatingPointError, match="nan at step 2"):
        guard(backend.asarray(np.array(losses[-1])), 4)


def test_guard_check_reads_back_now_and_passes_finite_losses(backend):
    guard = FiniteGuard(every=100)
    for step in range(3):
        guard(backend.asarray(np.array(1.0 / (step + 1))), step)
    guard.check()  # all finite: nothing raised
    guard(backend.asarray(np.array(-np.inf)), 3)
    with pytest.raises(FloatingPointError, match="-inf at step 3"):
        guard.check()


def test_guard_every_one_checks_each_step():
    guard = FiniteGuard()
    guard(np.float32(1.0), 0)
    with pytest.raises(FloatingPointError, match="step 1"):
        guard(np.float32(np.inf), 1)


@pytest.mark.parametrize("every", [0, -2, 1.5, True])
def test_guard_rejects_bad_every(every):
    with pytest.raises(ValueError, match="every"):
        FiniteGuard(every)


def test_every_may_be_a_numpy_integer_but_not_a_bool(backend):
    guard = FiniteGuard(np.int64(2))
    assert guard.every == 2 and type(guard.every) is int
    guard(backend.asarray(np.array(np.nan)), 0)
    with pytest.raises(FloatingPointError, match="nan at step 0"):
        guard(backend.asarray(np.array(1.0)), 1)
    with pytest.raises(ValueError, match="FiniteGuard: every must be an int, got (np.)?True"):
        FiniteGuard(np.bool_(True))


def test_first_non_finite_names_the_layer_and_the_array(backend):
    from nnfs.app.guard import first_non_finite
    from nnfs.layers import BatchNorm1D, Linear
    from nnfs.net import Net

    net = Net([Linear(3, 4), BatchNorm1D(4), Linear(4, 2)], backend=backend)
    assert first_non_finite(net) is None
    net.layers[1].buffers["running_var"][2] = float("inf")  # overflowed, the loss still finite
    assert first_non_finite(net) == ("layer 1 (BatchNorm1D) running_var", "inf")
    net.layers[2].params["weight"][0, 1] = float("nan")
    assert first_non_finite(net) == ("layer 1 (BatchNorm1D) running_var", "inf")  # the first in layer order
    net.layers[0].params["bias"][0] = float("nan")
    assert first_non_finite(net) == ("layer 0 (Linear) bias", "nan")


def test_first_non_finite_names_an_optimizer_state_after_the_net(backend):
    from nnfs.app.guard import first_non_finite
    from nnfs.optim import Adam

    net = Net([Linear(3, 2)], MeanSquareLoss(), backend=backend)
    optimizer = Adam(net, lr=0.1)
    net.loss(net(np.ones((4, 3), np.float32)), np.zeros((4, 2), np.float32))
    net.backward()
    optimizer.step()
    assert first_non_finite(net, optimizer) is None
    optimizer.state["0.weight"]["exp_avg_sq"][1, 2] = float("inf")  # a squared gradient of 2e19
    assert first_non_finite(net, optimizer) == ("optimizer state 0.weight.exp_avg_sq", "inf")
    net.layers[0].params["bias"][0] = float("nan")
    assert first_non_finite(net, optimizer) == ("layer 0 (Linear) bias", "nan")  # the net's arrays first
