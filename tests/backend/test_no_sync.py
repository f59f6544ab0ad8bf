"""A whole training step never reads a device value on the host (no GPU synchronisation).

On a GPU, ``float(loss)``, ``bool(x)``, ``x.item()`` and every copy to the host wait for all the
queued work; one of them per batch costs a large part of the step. The strict backend's
``no_sync()`` turns every such read of its arrays into an error, so these tests prove, on a CPU,
that forward, loss, backward, gradient clipping, the optimizer step, the running metrics, the
finiteness guard and the data-parallel gradient averaging queue work and never wait for it.
"""

import numpy as np
import pytest

from tests.nets import every_layer_cnn, image_batch
from nnfs.activations import ReLU
from nnfs.app.guard import FiniteGuard
from nnfs.app.loop import RunningMetrics, forward_batch
from nnfs.backend import get_backend, to_numpy
from nnfs.backend.strict import HostSyncError, no_sync
from nnfs.distributed import Communicator, DataParallel
from nnfs.layers import (
    AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Linear)
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, clip_grad_norm

STRICT = get_backend("strict")


# -- the guard refuses every host read (else the step tests below would prove nothing) ------------

@pytest.mark.parametrize("read", [
    float, int, bool, complex, repr, str, lambda d: f"{d:.3f}", lambda d: d.item(), lambda d: d.tolist(),
    lambda d: d.get(), lambda d: to_numpy(d), lambda d: STRICT.xp.asnumpy(d), lambda d: d.tobytes(),
], ids=["float", "int", "bool", "complex", "repr", "str", "format", "item", "tolist", "get",
        "to_numpy", "asnumpy", "tobytes"])
def test_no_sync_refuses_every_host_read(read):
    value = STRICT.asarray(np.array(1.5))
    with no_sync():
        with pytest.raises(HostSyncError, match="synchronisation"):
            read(value)
    read(value)  # allowed (and a synchronisation on a GPU) outside the block


# What CuPy synchronises on besides the host reads: an output whose size depends on the values
# (cupy_api.SYNCHRONIZING; a boolean mask is counted on the host, to get and to set).
@pytest.mark.parametrize("operation", [
    lambda d: d[d > 1.0], lambda d: d.__setitem__(d > 1.0, 0.0), lambda d: d[[True, False, True]],
    lambda d: STRICT.xp.nonzero(d), lambda d: d.nonzero(), lambda d: STRICT.xp.where(d > 1.0),
    lambda d: STRICT.xp.argwhere(d), lambda d: STRICT.xp.flatnonzero(d), lambda d: STRICT.xp.unique(d),
    lambda d: d.compress(d > 1.0), lambda d: STRICT.xp.extract(d > 1.0, d),
    lambda d: STRICT.xp.bincount(STRICT.xp.arange(3)), lambda d: np.nonzero(d),
], ids=["mask-get", "mask-set", "mask-list", "nonzero", "ndarray.nonzero", "where-condition-alone",
        "argwhere", "flatnonzero", "unique", "compress", "extract", "bincount", "numpy-nonzero"])
def test_no_sync_refuses_what_cupy_synchronises_on(operation):
    value = STRICT.asarray(np.array([0.5, 1.5, 2.5]))
    with no_sync():
        with pytest.raises(HostSyncError, match="synchronisation"):
            operation(value)
    operation(value)  # allowed outside the block
    with no_sync():  # what does not depend on the values stays free: integer indices, where(c, x, y)
        value[STRICT.asarray(np.array([2, 0]))]
        STRICT.xp.where(value > 1.0, value, 0.0)
        STRICT.xp.count_nonzero(value)


def test_a_device_array_is_never_a_python_index_even_outside_no_sync():
    value = STRICT.asarray(np.array(1))
    with pytest.raises(TypeError, match="not a Python index"):
        [10, 20][value]
    with pytest.raises(TypeError):
        range(value)


def test_no_sync_nests_and_is_left_cleanly_after_an_error():
    value = STRICT.asarray(np.array(2.0))
    with pytest.raises(HostSyncError):
        with no_sync():
            with no_sync():
                pass
            float(value)
    assert float(value) == 2.0


# -- whole training steps ------------------------------------------------------------------------

def every_layer_net(loss):
    """The layers every_layer_cnn leaves out: Dropout, AvgPool2D, GlobalAvgPool2D, BatchNorm1D."""
    layers = [Conv2D(2, 4, 3, padding=1), BatchNorm2D(4), ReLU(), AvgPool2D(2), Dropout(0.3),
              Conv2D(4, 6, 3, padding=1), GlobalAvgPool2D(), Flatten(), Linear(6, 5), BatchNorm1D(5),
              ReLU(), Linear(5, 3)]
    return Net(layers, loss, backend="strict")


OPTIMIZERS = {
    "update_weights": None,
    "sgd-momentum-nesterov": lambda net: SGD(net, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda net: Adam(net, lr=1e-3, weight_decay=1e-3),
    "adamw": lambda net: AdamW(net, lr=1e-3),
}


@pytest.mark.parametrize("build", [every_layer_cnn, every_layer_net], ids=["every-layer-cnn", "more-layers"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS), ids=list(OPTIMIZERS))
@pytest.mark.parametrize("labels", ["host", "device"])
def test_a_training_step_never_synchronises(rng, build, optimizer, labels):
    net = build(loss=CrossEntropyLoss()) if build is every_layer_net else build(backend="strict")
    step = OPTIMIZERS[optimizer](net) if OPTIMIZERS[optimizer] else None
    running, guard = RunningMetrics(net.loss_fn), FiniteGuard(every=1000)
    X, y = image_batch(rng, n=6)
    X = X[:, :, :8, :8] if build is every_layer_net else X
    if labels == "device":
        y = STRICT.asarray(y)
    for _ in range(3):  # later steps run on state (moments, running statistics) the first made
        with no_sync():
            out, loss, target = forward_batch(net, X, y)
            net.backward()
            clip_grad_norm(net, 1.0)
            if step is None:
                net.update_weights(0.05)
            else:
                step.step()
            running.add(out, loss, target)
            guard(loss, step=1)
    # Outside the block the host may read, and what was queued holds real numbers.
    mean_loss, accuracy = running.read()
    assert np.isfinite(mean_loss) and 0 <= accuracy <= 1
    guard.check()


def test_an_eval_pass_and_a_mean_square_step_never_synchronise(rng):
    net = every_layer_cnn(loss=MeanSquareLoss(), backend="strict")
    X, _ = image_batch(rng)
    target = STRICT.asarray(rng.normal(size=(4, 3)), dtype="float32")
    with no_sync():
        net.loss(net(X), target)
        net.backward(input_grad=True)
        net.update_weights(0.01)
        net.eval()
        net(X)


class DeviceOnlyCommunicator(Communicator):
    """Two ranks holding the same gradients, summed on the device (as NCCL does)."""

    transport = "device"

    def __init__(self):
        super().__init__(rank=0, size=2)

    def allreduce_sum(self, buffer):
        buffer *= 2

    def broadcast(self, buffer, root=0):
        pass

    def sum_host(self, values):  # DataParallel's check of the replicas, before any step
        return [2.0 * value for value in values]


def test_data_parallel_gradient_averaging_never_synchronises(rng):
    net = every_layer_cnn(backend="strict")
    ddp = DataParallel(net, DeviceOnlyCommunicator())
    X, y = image_batch(rng)
    with no_sync():
        ddp.loss(ddp(X), y)
        ddp.backward()
    # Both "ranks" held the same gradients: their weighted average is those gradients.
    reference = every_layer_cnn(backend="strict")
    reference.loss(reference(X), y)
    reference.backward()
    for (name, _, grad), (_, _, expected) in zip(net.named_parameters(), reference.named_parameters()):
        np.testing.assert_allclose(to_numpy(grad), to_numpy(expected), rtol=1e-6, err_msg=name)


def test_a_data_parallel_step_with_dropout_never_synchronises(rng):
    """Placing the share in the global batch, and moving the streams on for an empty share."""
    net = every_layer_net(CrossEntropyLoss())
    ddp = DataParallel(net, DeviceOnlyCommunicator())
    X, y = image_batch(rng, n=6)
    with no_sync():
        X_share, y_share = ddp.shard(X[:, :, :8, :8], y)
        ddp.loss(ddp(X_share), y_share)
        ddp.backward()
        ddp.shard(X[:1], y[:1])  # rank 0 of 2 gets the one sample; as if it were the other rank:
        ddp.average_gradients(n_samples=0)
    assert net.rng_state()["4"]["calls"] == 2


def test_a_synchronisation_planted_in_a_layer_is_caught(rng, monkeypatch):
    # The step test above would see a host read inside any layer: plant one and watch it fail.
    net = every_layer_cnn(backend="strict")
    forward = ReLU.forward
    monkeypatch.setattr(ReLU, "forward", lambda self, X: forward(self, X) if float(X.max()) else X)
    X, y = image_batch(rng)
    with no_sync(), pytest.raises(HostSyncError, match="float"):
        net.loss(net(X), y)


def test_ufunc_at_with_a_boolean_mask_synchronises():
    """CuPy counts the mask's True values on the host for ufunc.at as for indexing
    (_scatter_op_mask_single calls _prepare_mask_indexing_single)."""
    value = STRICT.asarray(np.array([0.5, 1.5, 2.5]))
    with no_sync():
        STRICT.xp.add.at(value, STRICT.asarray(np.array([0, 0])), 1.0)  # integer indices: free
        with pytest.raises(HostSyncError, match="boolean mask"):
            STRICT.xp.add.at(value, value > 1.0, 1.0)


@pytest.mark.parametrize("operation", [
    lambda d: d.repeat(STRICT.asarray(np.array([1, 2, 1]))), lambda d: d.repeat([1, 2, 1]),
    lambda d: STRICT.xp.repeat(d, STRICT.asarray(np.array(2))),
    lambda d: STRICT.xp.average(d, weights=d),
], ids=["ndarray.repeat-device-repeats", "ndarray.repeat-list", "repeat-0-d-repeats", "average-weights"])
def test_no_sync_refuses_what_cupy_synchronises_on_for_some_arguments(operation):
    """cupy_api.SYNCHRONIZING_WHEN: repeat reads its repeats back unless they are an int, average
    checks its weights' sum for zeros on the host."""
    value = STRICT.asarray(np.array([0.5, 1.5, 2.5]))
    with no_sync():
        with pytest.raises(HostSyncError, match="synchronisation"):
            operation(value)
        value.repeat(2)  # an int: free
        STRICT.xp.repeat(value, 2, axis=0)
        STRICT.xp.average(value)
    operation(value)  # allowed outside the block
